package boardindex

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/pulljobs/pulljobs/pkg/declare"
	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/natsembed/natstest"
	"github.com/pulljobs/pulljobs/pkg/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// net/http keeps idle keep-alive connections of httptest servers.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

const board = hrflowtest.DefaultBoardKey

// env is a JetStream server with the index stream, and an HrFlow emulator
// with its client.
type env struct {
	t      *testing.T
	js     jetstream.JetStream
	stream jetstream.Stream
	hr     *hrflowtest.Emulator
	hrc    *hrflow.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, js: natstest.JetStream(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if e.stream, err = declare.Stream(ctx, e.js, StreamConfig(1)); err != nil {
		t.Fatal(err)
	}
	if e.hr, err = hrflowtest.New(hrflowtest.Config{}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.hr)
	t.Cleanup(srv.Close)
	e.hrc, err = hrflow.NewClient(hrflow.Config{APISecret: hrflowtest.DefaultAPISecret, APIUser: hrflowtest.DefaultAPIUser, BaseURL: hrflowtest.BaseURL(srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.hrc.CloseIdleConnections)
	return e
}

// index returns an index on e's stream, without a cache, with small shards
// and passes so that a small board makes many of them.
func (e *env) index() *Index {
	x := New(e.js, e.stream)
	x.shardEntries, x.passEntries = 2, 4
	return x
}

func synthetic(n int, seed uint64) []francetravail.Offer {
	return francetravailtest.SyntheticOffers(n, seed, francetravailtest.SyntheticOptions{Departements: []string{"74"}})
}

// TestShardCache checks that a pusher's lookups read each snapshot shard
// once: a shard gone from the stream still answers from the cache, and
// the cache stays within its bound.
func TestShardCache(t *testing.T) {
	const jobs = 40
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	keys := map[string]string{} // reference → key
	for _, o := range synthetic(jobs, 31) {
		job, _ := format.PoleEmploi(o)
		seeded, err := e.hr.SeedJob(board, job, false)
		if err != nil {
			t.Fatal(err)
		}
		keys[job.Reference()] = seeded.Key()
	}
	x := e.index()
	st, err := x.Refresh(ctx, board, e.hrc)
	if err != nil {
		t.Fatal(err)
	}
	cached := x.Cached()
	lookAll := func(name string, x *Index, want int) {
		t.Helper()
		found := 0
		for ref, key := range keys {
			got, ok, err := x.Lookup(ctx, board, st.Snapshot, ref)
			if err != nil {
				t.Fatalf("%s: lookup(%s): %v", name, ref, err)
			}
			if ok {
				found++
				if got.Key != key {
					t.Errorf("%s: lookup(%s) key %s, want %s", name, ref, got.Key, key)
				}
			}
		}
		if _, ok, err := x.Lookup(ctx, board, st.Snapshot, "GONE000"); err != nil || ok {
			t.Errorf("%s: lookup of a job not on the board: %v, %v; want none", name, ok, err)
		}
		if found != want {
			t.Errorf("%s: found %d jobs, want %d", name, found, want)
		}
	}
	lookAll("first lookups", cached, jobs)
	if err := store.Purge(ctx, x.stream, Subject(board, "snap."+st.Gen+".>"), 0); err != nil {
		t.Fatal(err)
	}
	lookAll("without a cache, once the snapshot is gone", e.index(), 0)
	lookAll("from the cache, once the snapshot is gone", cached, jobs)

	var c shardCache
	for i := range shardCacheSize + 10 {
		c.put(strconv.Itoa(i), []byte("[]"))
	}
	if got := len(c.shards); got != shardCacheSize {
		t.Errorf("cache of %d shards after %d puts, want %d", got, shardCacheSize+10, shardCacheSize)
	}
}

// TestIndexRefresh builds snapshots of a board in many shards and passes,
// then in few, and checks each holds every job of the board once, as the
// listing saw it, with what pulljobs wrote; that the journal is merged
// once; that a job gone from the board leaves the index; and that a
// refresh leaves nothing behind but the head and its snapshot.
func TestIndexRefresh(t *testing.T) {
	const jobs, written = 300, 50
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	want := map[string]Entry{} // by reference
	for i, o := range synthetic(jobs, 29) {
		job, _ := format.PoleEmploi(o)
		seeded, err := e.hr.SeedJob(board, job, i%7 == 0)
		if err != nil {
			t.Fatal(err)
		}
		state := Live
		if i%7 == 0 {
			state = Archived
		}
		want[job.Reference()] = Entry{Ref: job.Reference(), Key: seeded.Key(), State: state}
	}
	// What pulljobs wrote to some jobs, and to one no longer on the board.
	x := e.index()
	refs := slices.Sorted(maps.Keys(want))
	for _, ref := range append(refs[:written:written], "GONE000") {
		w := Entry{Ref: ref, Key: want[ref].Key, State: Live, Hash: "h-" + ref, WroteAt: "w", Run: "R0", Action: "created"}
		if err := x.Log(ctx, board, w); err != nil {
			t.Fatal(err)
		}
		if ref != "GONE000" {
			e := want[ref]
			e.Hash, e.WroteAt = w.Hash, w.WroteAt
			want[ref] = e
		}
	}
	check := func(name string, st Listing) {
		t.Helper()
		got := map[string]Entry{}
		err := x.Entries(ctx, board, st.Snapshot, func(e Entry) (bool, error) {
			if _, dup := got[e.Ref]; dup {
				t.Errorf("%s: entry %s twice", name, e.Ref)
			}
			e.UpdatedAt = ""
			got[e.Ref] = e
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: %d entries, want %d; first differences: %v", name, len(got), len(want), firstDiff(got, want))
		}
		for _, ref := range []string{refs[0], refs[written], refs[jobs-1]} {
			if e, ok, err := x.Lookup(ctx, board, st.Snapshot, ref); err != nil || !ok || e.Key != want[ref].Key {
				t.Errorf("%s: lookup(%s) = %+v, %v, %v; want key %s", name, ref, e, ok, err, want[ref].Key)
			}
		}
		if _, ok, err := x.Lookup(ctx, board, st.Snapshot, "GONE000"); err != nil || ok {
			t.Errorf("%s: lookup of a job gone from the board: %v, %v; want none", name, ok, err)
		}
		if st.Live+st.Archived != jobs {
			t.Errorf("%s: listing saw %d live and %d archived, want %d in all", name, st.Live, st.Archived, jobs)
		}
		left, err := x.stream.Info(ctx, jetstream.WithSubjectFilter(SubjectPrefix+board+".>"))
		if err != nil {
			t.Fatal(err)
		}
		for subject, n := range left.State.Subjects {
			rest := strings.TrimPrefix(subject, SubjectPrefix+board+".")
			if !(rest == "head" && n == 1) && !strings.HasPrefix(rest, "snap."+st.Gen+".") {
				t.Errorf("%s: left %d messages on %s", name, n, subject)
			}
		}
	}
	for _, c := range []struct {
		name                      string
		shardEntries, passEntries int
	}{
		{"16 passes, 256 shards", 2, 4},
		{"one pass, from shards narrower", 0, 0},
		{"one pass, 8 shards", 64, 0},
		{"16 passes, from shards wider", 2, 4},
	} {
		x.shardEntries, x.passEntries = c.shardEntries, c.passEntries
		st, err := x.Refresh(ctx, board, e.hrc)
		if err != nil {
			t.Fatal(err)
		}
		check(c.name, st)
	}
}

// firstDiff names a few keys where got and want differ.
func firstDiff(got, want map[string]Entry) []string {
	var out []string
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			out = append(out, fmt.Sprintf("%s: got %+v, want %+v", k, g, w))
		}
		if len(out) == 3 {
			break
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && len(out) < 5 {
			out = append(out, "unexpected "+k)
		}
	}
	return out
}

// TestFindInShard checks a lookup's decoding of a shard: the entry of the
// reference asked for, whole, wherever it stands in the shard and whatever
// its reference holds; none when absent; an error naming a shard that is
// not one.
func TestFindInShard(t *testing.T) {
	entries := []Entry{
		{Ref: "A1", Key: "k1", State: Live, UpdatedAt: "t1", Hash: "h1", WroteAt: "t1"},
		{Ref: `quo"te\é`, Key: "k2", State: Archived},
		{Key: "k3", State: Live}, // made by hand: no reference
		{Ref: "Z9", Key: "k4", State: Live, Run: "R", Action: "created"},
	}
	shard, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		shard string
		ref   string
		want  Entry
		ok    bool
		err   bool
	}{
		{string(shard), "A1", entries[0], true, false},
		{string(shard), `quo"te\é`, entries[1], true, false},
		{string(shard), "Z9", entries[3], true, false},
		{string(shard), "B2", Entry{}, false, false},
		{"[]", "A1", Entry{}, false, false},
		{`{"ref":"A1"}`, "A1", Entry{}, false, true},
		{`[{"ref":"A1"`, "A1", Entry{}, false, true},
	} {
		got, ok, err := findInShard([]byte(c.shard), c.ref)
		if got != c.want || ok != c.ok || (err != nil) != c.err {
			t.Errorf("findInShard(%.30q, %q) = %+v, %v, %v; want %+v, %v, error %v", c.shard, c.ref, got, ok, err, c.want, c.ok, c.err)
		}
	}
}
