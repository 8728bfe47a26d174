package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestIndexAdoptsEarlierBuild upgrades a board indexed by an earlier build
// (a key a job in the pulljobs_boards bucket): the first run on this build
// must keep what pulljobs wrote, so a run with update_content that changes
// nothing replaces no job, and the earlier index is removed, the bucket
// with it once no board is left in it.
func TestIndexAdoptsEarlierBuild(t *testing.T) {
	offers := synthetic(40, 23)
	e := newEnv(t, offers)
	p := e.pipeline(testSettings)
	e.workers(p, e.hrc)
	update := spec(func(s *RunSpec) { s.UpdateContent = true })
	r := e.run(p, update, nil)
	checkEvents(t, r.Events, Events{ReadSuccess: 40, Created: 40})

	// Play the earlier build: what the index knows of the board, in a
	// bucket of a key a job, beside a deleted key, an entry this build
	// cannot read and another board; and no index stream entries.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	x := boardIndex{l: p.l}
	st, err := x.refresh(ctx, board, "R0", e.hrc) // the run's writes merged
	if err != nil {
		t.Fatal(err)
	}
	kv, err := p.l.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "pulljobs_boards"})
	if err != nil {
		t.Fatal(err)
	}
	put := func(key string, v []byte) {
		t.Helper()
		if _, err := kv.Put(ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	err = x.entries(ctx, board, st.snapshot, func(e boardEntry) (bool, error) {
		e.Run, e.Action = "R0", "created"
		b, _ := json.Marshal(e)
		put(board+".r."+token(e.Ref), b)
		n++
		return true, nil
	})
	if err != nil || n != 40 {
		t.Fatalf("earlier index: %d entries, %v; want 40", n, err)
	}
	put(board+".r.GONE", []byte(`{"ref":"GONE","state":"live"}`))
	if err := kv.Delete(ctx, board+".r.GONE"); err != nil {
		t.Fatal(err)
	}
	put(board+".r.BAD", []byte(`{not json`))
	const other = "1111111111111111111111111111111111111111"
	put(other+".r.X1", []byte(`{"ref":"X1","state":"live"}`))
	if err := p.l.index.Purge(ctx, jetstream.WithPurgeSubject(IndexSubjectPrefix+board+".>")); err != nil {
		t.Fatal(err)
	}

	before := e.callSnapshot()
	r = e.run(p, update, nil)
	checkEvents(t, r.Events, Events{ReadSuccess: 40, Unchanged: 40})
	if got := e.perOfferCalls(before); len(got) != 0 {
		t.Errorf("first run after the upgrade: calls %v, want none but the listing", got)
	}
	legacy, err := p.l.js.Stream(ctx, legacyIndexStream)
	if err != nil {
		t.Fatal(err)
	}
	si, err := legacy.Info(ctx, jetstream.WithSubjectFilter(legacyIndexSubject+">"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := si.State.Subjects[legacyIndexSubject+other+".r.X1"]; !ok || len(si.State.Subjects) != 1 {
		t.Errorf("earlier index after the upgrade of one board: %v, want the other board's entry only", si.State.Subjects)
	}

	// The last board upgraded, the bucket goes.
	x.dropLegacy(ctx, other)
	if _, err := p.l.js.Stream(ctx, legacyIndexStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("earlier index once empty: %v, want it deleted", err)
	}
}
