package pipeline

import (
	"context"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/natsembed/natstest"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/store"

	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// perOfferCalls returns the HrFlow calls made since before, by route,
// leaving out the board's listing.
func (e *env) perOfferCalls(before map[string]int64) map[string]int64 {
	out := map[string]int64{}
	st := e.hr.Stats()
	for _, route := range st.Routes() {
		if route == "GET /storing/jobs" {
			continue
		}
		if n := st.Total(route) - before[route]; n > 0 {
			out[route] = n
		}
	}
	return out
}

func (e *env) callSnapshot() map[string]int64 {
	out := map[string]int64{}
	st := e.hr.Stats()
	for _, route := range st.Routes() {
		out[route] = st.Total(route)
	}
	return out
}

// withField returns the offer with field set to v, or without it when v
// is nil: the offer changed upstream.
func withField(t testing.TB, o francetravail.Offer, field string, v any) francetravail.Offer {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(o, &m); err != nil {
		t.Fatal(err)
	}
	if v == nil {
		delete(m, field)
	} else {
		m[field] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBoardIndex follows a board over runs and checks what each costs in
// HrFlow calls: a first run one create per offer; a run that changes
// nothing no call per offer, with or without update_content; a run after
// some offers changed one replace per changed offer, counted as updated;
// and jobs edited by hand on the board are restored by the next run.
func TestBoardIndex(t *testing.T) {
	offers := synthetic(60, 21)
	e := newEnv(t, offers)
	p := e.pipeline(testSettings)
	e.workers(p, e.hrc)
	update := spec(func(s *RunSpec) { s.UpdateContent = true })

	before := e.callSnapshot()
	r := e.run(p, update, nil)
	checkEvents(t, r.Events, rs.Events{ReadSuccess: 60, Created: 60})
	if got := e.perOfferCalls(before); !maps.Equal(got, map[string]int64{"POST /job/indexing": 60}) {
		t.Errorf("first run: calls %v, want one create per offer", got)
	}

	for _, s := range []RunSpec{update, spec()} {
		before = e.callSnapshot()
		r = e.run(p, s, nil)
		want := rs.Events{ReadSuccess: 60, Unchanged: 60}
		if !s.UpdateContent {
			want = rs.Events{ReadSuccess: 60, Skipped: 60}
		}
		checkEvents(t, r.Events, want)
		if got := e.perOfferCalls(before); len(got) != 0 {
			t.Errorf("unchanged re-run (update_content %v): calls %v, want none but the listing", s.UpdateContent, got)
		}
	}

	// Five offers change upstream.
	changed := slices.Clone(offers)
	for i := range 5 {
		changed[i] = withField(t, offers[i], "description", "Nouvelle description "+strings.Repeat("x", i))
	}
	corpus, _ := francetravailtest.Offers(changed)
	e.ft.SetCorpus(corpus)
	before = e.callSnapshot()
	r = e.run(p, update, nil)
	checkEvents(t, r.Events, rs.Events{ReadSuccess: 60, Updated: 5, Unchanged: 55})
	if got := e.perOfferCalls(before); !maps.Equal(got, map[string]int64{"PUT /job/indexing": 5}) {
		t.Errorf("after 5 offers changed: calls %v, want 5 replaces", got)
	}

	// Three jobs are edited by hand on the board.
	ctx := context.Background()
	edited := ids(t, changed)[10:13]
	for _, ref := range edited {
		job, err := e.hrc.GetJob(ctx, board, ref)
		if err != nil {
			t.Fatal(err)
		}
		job["name"] = "Edited by hand"
		delete(job, "updated_at") // the board stamps its own
		if _, err := e.hrc.EditJob(ctx, board, job); err != nil {
			t.Fatal(err)
		}
	}
	r = e.run(p, update, nil)
	checkEvents(t, r.Events, rs.Events{ReadSuccess: 60, Updated: 3, Unchanged: 57})
	for _, ref := range edited {
		job, err := e.hrc.GetJob(ctx, board, ref)
		if err != nil {
			t.Fatal(err)
		}
		if job["name"] == "Edited by hand" {
			t.Errorf("job %s: still edited by hand after a run with update_content", ref)
		}
	}
	if got := e.creations(); got != 60 {
		t.Errorf("creations = %d, want 60", got)
	}
}

// TestPushWithoutTrustingTheIndex plays the pusher against an index that
// is out of date: a create refused because someone wrote the reference
// after the listing falls back on reading then writing; a job whose create
// happened before a crash lost its record counts as created, once.
func TestPushWithoutTrustingTheIndex(t *testing.T) {
	offers := synthetic(3, 22)
	e := newEnv(t, nil)
	p := e.pipeline(testSettings)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := NewRunID(time.Now())
	sp := spec(func(s *RunSpec) { s.ID, s.UpdateContent = run, true })
	info := &runInfo{spec: sp, index: indexState{Status: indexReady}}
	s := &pusher{ledger: p.ledger, index: p.ledger.index, board: e.hrc}
	item := func(o francetravail.Offer, delivery int) *Item {
		job, err := format.PoleEmploi(o)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := hrflow.AppendJSON(nil, job)
		return &Item{Run: run, Offer: job.Reference(), Data: b, Delivery: delivery}
	}

	// Someone created the first job after the listing, with content of
	// their own: the index has no entry.
	job0, _ := format.PoleEmploi(offers[0])
	job0["name"] = "Someone else's"
	if _, err := e.hr.SeedJob(board, job0, false); err != nil {
		t.Fatal(err)
	}
	o := s.push(ctx, info, item(offers[0], 1))
	if o.Record == nil || o.Record.Action != rs.Updated {
		t.Errorf("refused create: outcome %+v, want the job read, then replaced (updated)", o)
	}

	// A duplicate of the third item (a first delivery) finds the job an
	// earlier copy of it created, its record and index entry lost with a
	// NATS server killed: it holds what this run sends, so it counts as
	// created, and nothing is written again. Its offer has no
	// dateActualisation: the board stamped the updated_at it left null.
	offers[2] = withField(t, offers[2], "dateActualisation", nil)
	job2, _ := format.PoleEmploi(offers[2])
	if job2["updated_at"] != nil {
		t.Fatalf("job without dateActualisation: updated_at %v, want null", job2["updated_at"])
	}
	if _, err := e.hrc.CreateJob(ctx, board, job2); err != nil {
		t.Fatal(err)
	}
	before := e.callSnapshot()
	o = s.push(ctx, info, item(offers[2], 1))
	if o.Record == nil || o.Record.Action != rs.Created {
		t.Errorf("duplicate of a created item: outcome %+v (record %+v), want created", o, o.Record)
	}
	if got := e.perOfferCalls(before); !maps.Equal(got, map[string]int64{"POST /job/indexing": 1, "GET /job/indexing": 1}) {
		t.Errorf("duplicate of a created item: calls %v, want the refused create and one read", got)
	}

	// A first delivery created the second job, then crashed before its
	// record: the index does not know it.
	it := item(offers[1], 2)
	job1, _ := format.PoleEmploi(offers[1])
	if _, err := e.hrc.CreateJob(ctx, board, job1); err != nil {
		t.Fatal(err)
	}
	creations := e.creations()
	o = s.push(ctx, info, it)
	if o.Record == nil || o.Record.Action != rs.Created {
		t.Errorf("redelivered after a crash: outcome %+v (record %+v), want created", o, o.Record)
	}
	if got := e.creations(); got != creations {
		t.Errorf("creations %d → %d: the job was created twice", creations, got)
	}
	// Its redelivery again, the record lost once more: counted once more
	// as created, at the cost of the refused create and a read (the run's
	// snapshot predates its writes), and still not created twice.
	before = e.callSnapshot()
	o = s.push(ctx, info, it)
	if o.Record == nil || o.Record.Action != rs.Created {
		t.Errorf("second redelivery: outcome %+v, want created", o)
	}
	if got := e.perOfferCalls(before); !maps.Equal(got, map[string]int64{"POST /job/indexing": 1, "GET /job/indexing": 1}) {
		t.Errorf("second redelivery: calls %v, want the refused create and one read", got)
	}
	if got := e.creations(); got != creations {
		t.Errorf("creations %d → %d: the job was created twice", creations, got)
	}
}

// TestOversizedOffers runs offers too large for NATS: one that compresses
// under the limit flows like any other; one that does not fails its item
// (publish_failure, on the dead-letter stream), and the run goes on, ends
// and syncs.
func TestOversizedOffers(t *testing.T) {
	offers := synthetic(30, 23)
	e := newEnv(t, nil)
	for _, o := range synthetic(40, 24)[35:] { // 5 stale jobs
		job, _ := format.PoleEmploi(o)
		if _, err := e.hr.SeedJob(board, job, false); err != nil {
			t.Fatal(err)
		}
	}
	big := withField(t, offers[0], "description", strings.Repeat("Poste de soudeur, travail en équipe. ", 34_000)) // 1.2 MiB, compressible
	noise := make([]byte, 3<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[rng.IntN(62)]
	}
	huge := withField(t, offers[1], "description", string(noise)) // 3 MiB that no compression brings under 1 MiB
	all := append([]francetravail.Offer{big, huge}, offers[2:]...)
	p := e.pipeline(testSettings)
	e.workers(p, e.hrc)
	r := e.run(p, spec(), &fakeSearch{offers: all})
	checkEvents(t, r.Events, rs.Events{ReadSuccess: 30, Created: 29, PublishFailure: 1, Archived: 5})
	if r.Status != rs.StatusSuccessWithFailures || !r.Sync.Performed {
		t.Errorf("report: %s, sync %+v; want success_with_failures, synced", r.Status, r.Sync)
	}
	id := ids(t, all[1:2])[0]
	if len(r.Failures) != 1 || r.Failures[0].Offer != id || !strings.Contains(r.Failures[0].Reason, "max_payload") {
		t.Errorf("failures = %+v, want offer %s named, too large for max_payload", r.Failures, id)
	}
	if got := dlqCount(t, p, r.RunID); got != 1 {
		t.Errorf("dead letters = %d, want 1", got)
	}
	bigJob, err := e.hrc.GetJob(context.Background(), board, ids(t, all[:1])[0])
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := bigJob["summary"].(string); len(got) < 1<<20 {
		t.Errorf("the 1.2 MiB offer's job holds a summary of %d bytes", len(got))
	}
}

// TestFetcherJoinsItsRun starts the same configuration again while its
// sealed run is in flight: it joins that run, searches nothing, and waits
// for the same report.
func TestFetcherJoinsItsRun(t *testing.T) {
	offers := synthetic(50, 25)
	e := newEnv(t, offers)
	p := e.pipeline(testSettings)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first, err := p.Fetch(ctx, spec(), e.ftc, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	searches := e.ft.Stats().Total("GET /offres/search")
	var joined bool
	again, err := p.Fetch(ctx, spec(), e.ftc, FetchOptions{OnStarted: func(_ string, resumed bool) { joined = resumed }})
	if err != nil || again != first || !joined {
		t.Fatalf("second fetch: run %s (joined %v), %v; want run %s joined", again, joined, err, first)
	}
	if got := e.ft.Stats().Total("GET /offres/search"); got != searches {
		t.Errorf("the second fetch searched %d times, want none: its run was sealed", got-searches)
	}
	e.workers(p, e.hrc)
	r, err := p.Wait(ctx, again, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, r.Events, rs.Events{ReadSuccess: 50, Created: 50})
	// Once the run ended, the same configuration starts a new run.
	if next := e.run(p, spec(), nil); next.RunID == first {
		t.Errorf("a fetch after the run ended joined it; want a new run")
	}
}

// TestSyncTakeoverCounts plays a sync taken over from a process that died
// while archiving: the jobs it archived count, a call it may have made is
// checked on the board rather than made again, and the rest is archived.
func TestSyncTakeoverCounts(t *testing.T) {
	offers := synthetic(20, 26)
	stale := synthetic(36, 27)[20:] // 16 stale jobs
	e := newEnv(t, offers)
	for _, o := range stale {
		job, _ := format.PoleEmploi(o)
		if _, err := e.hr.SeedJob(board, job, false); err != nil {
			t.Fatal(err)
		}
	}
	p := e.pipeline(testSettings)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The run went as far as its sync, as if its workers had pushed it.
	run, err := p.Fetch(ctx, spec(), e.ftc, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range offers {
		job, _ := format.PoleEmploi(o)
		if _, err := e.hr.SeedJob(board, job, false); err != nil {
			t.Fatal(err)
		}
		if err := p.ledger.record(ctx, run, rs.Record{Offer: job.Reference(), State: rs.Written, Action: rs.Created, Stage: rs.PusherStage}); err != nil {
			t.Fatal(err)
		}
	}
	listing, err := p.ledger.index.Refresh(ctx, board, e.hrc)
	if err != nil {
		t.Fatal(err)
	}
	st := indexState{Status: indexReady, Listing: listing}
	if err := store.Put(ctx, p.ledger.runs, rs.IndexKey(run), st); err != nil {
		t.Fatal(err)
	}
	// The dead owner archived 4 jobs, and was archiving 2 more: one call
	// reached the board, the other did not.
	staleRefs := ids(t, stale)
	sy := &syncer{ledger: p.ledger}
	for i, ref := range staleRefs[:6] {
		entry, ok, err := p.ledger.index.Lookup(ctx, board, st.Snapshot, ref)
		if err != nil || !ok {
			t.Fatalf("index entry of %s: %v %v", ref, ok, err)
		}
		if err := sy.mark(ctx, spec(func(s *RunSpec) { s.ID = run }), entry, actionArchiving); err != nil {
			t.Fatal(err)
		}
		if i < 5 {
			if err := e.hrc.SetArchivedKey(ctx, board, entry.Key, true); err != nil {
				t.Fatal(err)
			}
		}
		if i < 4 {
			if err := sy.mark(ctx, spec(func(s *RunSpec) { s.ID = run }), entry, actionArchived); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := store.Put(ctx, p.ledger.runs, rs.FinalKey(run), final{Owner: "dead-process", Heartbeat: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	archiveCalls := e.hr.Stats().Count("PATCH /job/indexing/archive", 200)
	e.workers(p, e.hrc)
	r, err := p.Wait(ctx, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Sync.Performed || r.Sync.Archived != 16 || r.Events.Archived != 16 {
		t.Errorf("sync %+v, archived %d; want the 16 stale jobs counted", r.Sync, r.Events.Archived)
	}
	if got := e.hr.Stats().Count("PATCH /job/indexing/archive", 200) - archiveCalls; got != 11 {
		t.Errorf("archive calls after the takeover = %d, want 11 (16 less the 5 the dead owner made)", got)
	}
	_, archived := e.boardState()
	if !slices.Equal(archived, staleRefs) {
		t.Errorf("archived %v, want the stale jobs", archived)
	}
}

// TestDuplicateRecordsWaitForEveryItem gives one item two records (as a
// redelivery after a crash does) while another has none yet: the run must
// wait for that one, not end on the count of records.
func TestDuplicateRecordsWaitForEveryItem(t *testing.T) {
	offers := synthetic(3, 28)
	e := newEnv(t, offers)
	p := e.pipeline(testSettings)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A pusher (with its tracker) but no formatter yet: only the records
	// below end items.
	pushers, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.RunPusher(pushers, e.hrc) }()
	defer func() { stop(); <-done }()
	run, err := p.Fetch(ctx, spec(), e.ftc, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	refs := ids(t, offers)
	created := rs.Record{State: rs.Written, Action: rs.Created, Stage: rs.PusherStage}
	for _, ref := range []string{refs[0], refs[0], refs[1]} {
		rec := created
		rec.Offer = ref
		if err := p.ledger.record(ctx, run, rec); err != nil {
			t.Fatal(err)
		}
	}
	// The tracker gets to counting records once the run's index is built:
	// then it finds 3 records for 3 items, and must read them, not end.
	natstest.Eventually(t, 20*time.Second, "the run's board index", func() bool {
		var st indexState
		_, _, err := store.Get(ctx, p.ledger.runs, rs.IndexKey(run), &st)
		return err == nil && st.done()
	})
	time.Sleep(10 * completionPoll)
	if _, ok, err := p.Report(ctx, run); err != nil || ok {
		t.Fatalf("report with an item still open: ok %v, %v", ok, err)
	}
	// Now the formatter: the last item must still be worked on, not
	// dropped as an item of a finished run.
	formatters, stopFormatter := context.WithCancel(ctx)
	fdone := make(chan error, 1)
	go func() { fdone <- p.RunFormatter(formatters) }()
	defer func() { stopFormatter(); <-fdone }()
	r, err := p.Wait(ctx, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, r.Events, rs.Events{ReadSuccess: 3, Created: 3})
}
