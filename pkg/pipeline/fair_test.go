package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/natsembed/natstest"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
)

// otherBoard is a second board of the emulator's account.
const otherBoard = "1111111111111111111111111111111111111111"

// slowPushes makes every HrFlow call take d: the pushers are the slow
// stage, as under a quota.
func (e *env) slowPushes(d time.Duration) {
	e.t.Helper()
	if err := e.hr.Faults().Set(emulator.Config{Latency: emulator.Duration(d)}); err != nil {
		e.t.Fatal(err)
	}
}

// startRun fetches a run of spec s from src and returns its id; the run
// goes on.
func (e *env) startRun(ctx context.Context, p *Pipeline, s RunSpec, src Searcher) string {
	e.t.Helper()
	id, err := p.Fetch(ctx, s, src, FetchOptions{})
	if err != nil {
		e.t.Fatalf("fetch: %v", err)
	}
	return id
}

// done counts the items of run that reached their final state.
func done(t *testing.T, p *Pipeline, run string) int {
	t.Helper()
	n, err := p.ledger.countRecords(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSmallRunBesideABigOne starts a small run on one board while a big
// run on another holds the (slow) pushers: the small run must end while
// the big one still has most of its items to do, where publish order
// would have kept it behind all of them; both end exact. While the small
// run waits, its status says why: the other run's items, its share.
func TestSmallRunBesideABigOne(t *testing.T) {
	const big, small = 1500, 40
	offers := synthetic(big+small, 51)
	e := newEnv(t, nil)
	e.hr.AddBoard(otherBoard)
	s := testSettings
	s.Concurrency = 4
	p := e.pipeline(s)
	e.slowPushes(5 * time.Millisecond)
	e.workers(p, e.hrc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	bigRun := e.startRun(ctx, p, spec(), &fakeSearch{offers: offers[:big]})
	natstest.Eventually(t, 30*time.Second, "the big run under way", func() bool { return done(t, p, bigRun) > 50 })
	smallRun := e.startRun(ctx, p, spec(func(s *RunSpec) { s.BoardKey = otherBoard }), &fakeSearch{offers: offers[big:]})

	st, err := rs.GetRun(ctx, p.js, smallRun, 0)
	if err != nil {
		t.Fatal(err)
	}
	if q := st.Queue; st.Progress != nil && (q == nil || q.Runs != 1 || q.Ahead == 0 || q.Share != 0.5) {
		t.Errorf("the small run's queue %+v, want 1 other run with items ahead and a share of 0.5", q)
	}
	r, err := p.Wait(ctx, smallRun, nil)
	if err != nil {
		t.Fatal(err)
	}
	if left := big - done(t, p, bigRun); left < big/2 {
		t.Errorf("the small run ended with %d of the big run's %d items left, want more than half: it waited behind the big run", left, big)
	}
	checkEvents(t, r.Events, rs.Events{ReadSuccess: small, Created: small})
	e.slowPushes(0)
	r, err = p.Wait(ctx, bigRun, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, r.Events, rs.Events{ReadSuccess: big, Created: big})
}

// TestWeights runs two runs of the same size at once, of weights 3 and 1:
// while both have items waiting, the first must be served about three
// times as fast.
func TestWeights(t *testing.T) {
	const n = 600
	offers := synthetic(2*n, 53)
	e := newEnv(t, nil)
	e.hr.AddBoard(otherBoard)
	s := testSettings
	s.Concurrency = 4
	p := e.pipeline(s)
	e.slowPushes(5 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	heavy := e.startRun(ctx, p, spec(func(s *RunSpec) { s.Weight = 3 }), &fakeSearch{offers: offers[:n]})
	light := e.startRun(ctx, p, spec(func(s *RunSpec) { s.BoardKey = otherBoard }), &fakeSearch{offers: offers[n:]})
	e.workers(p, e.hrc)
	natstest.Eventually(t, time.Minute, "half the heavy run", func() bool { return done(t, p, heavy) >= n/2 })
	h, l := done(t, p, heavy), done(t, p, light)
	if ratio := float64(h) / float64(max(l, 1)); ratio < 2 || ratio > 4.5 {
		t.Errorf("done %d of the run of weight 3 for %d of the run of weight 1 (%.1f ×), want about 3 ×", h, l, ratio)
	}
	for _, run := range []string{heavy, light} {
		r, err := p.Wait(ctx, run, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkEvents(t, r.Events, rs.Events{ReadSuccess: n, Created: n})
	}
}

// TestBoardsInSight checks what the boards' status says after runs: the
// last run, its successful sync, and the live jobs as the index knows
// them; a dry run changes neither the sync nor the count.
func TestBoardsInSight(t *testing.T) {
	offers := synthetic(30, 55)
	e := newEnv(t, nil)
	p := e.pipeline(testSettings)
	e.workers(p, e.hrc)
	first := e.run(p, spec(), &fakeSearch{offers: offers})
	// Half the offers are gone: sync archives them.
	second := e.run(p, spec(func(s *RunSpec) { s.ForceSync = true }), &fakeSearch{offers: offers[:15]})
	third := e.run(p, spec(func(s *RunSpec) { s.DryRun = true }), &fakeSearch{offers: offers[:5]})
	ctx := context.Background()
	boards, err := rs.ListBoards(ctx, p.js)
	if err != nil {
		t.Fatal(err)
	}
	if len(boards) != 1 {
		t.Fatalf("boards %+v, want one", boards)
	}
	b := boards[0]
	if b.BoardKey != board || b.LastRun != third.RunID || b.LastStatus != third.Status {
		t.Errorf("board %+v, want the dry run %s as its last run", b, third.RunID)
	}
	if b.LastSyncRun != second.RunID || b.LastSyncAt == nil || !b.LastSyncAt.Equal(second.FinishedAt) || b.SyncAgeSeconds == nil {
		t.Errorf("last successful sync %v by %s, want %v by %s (the dry run does not count)", b.LastSyncAt, b.LastSyncRun, second.FinishedAt, second.RunID)
	}
	if b.LiveJobs == nil || *b.LiveJobs != 15 {
		t.Errorf("live jobs %v, want 15 after the second run", b.LiveJobs)
	}
	if got := fmt.Sprint(first.Sync.Performed, second.Sync.Archived); got != "true 15" {
		t.Errorf("syncs: %s, want the first performed and 15 archived by the second", got)
	}
	if b.Stale(time.Now()) || !b.Stale(b.LastSyncAt.Add(rs.MaxSyncAge+time.Minute)) {
		t.Error("a board synced just now reads as stale, or one synced over a day ago does not")
	}
}
