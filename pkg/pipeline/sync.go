package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// Sync ends a run in three steps: gather the facts (the seal, the records,
// the board as the index knows it), decide what to do (decideSync, a pure
// function of the facts: the guards of the run semantics), and carry the
// plan out (archive). Only the process that holds the run's final key
// syncs; if it dies, another takes over where it was: the index's marks say
// which jobs this run archived already.

// Guards that refuse a sync, as the report names them.
const (
	GuardDisabled   = "disabled"         // target_parameters.sync is false
	GuardLeaseLost  = "lease_lost"       // a later run took the board
	GuardRead       = "read_failure"     // the fetch failed
	GuardTruncated  = "truncated"        // the API's cap hid offers
	GuardUnreadable = "board_unreadable" // the board could not be listed
	GuardNoJob      = "no_job_on_board"  // no job of the run is on the board
	GuardMaxShare   = "max_share"        // too large a share of the board
)

// syncFacts is what sync decides from.
type syncFacts struct {
	spec RunSpec
	seal Seal
	// onBoard counts the items whose job is on the board after the run.
	onBoard int
	// planned counts the run's creations and unarchivings (planned, in a dry
	// run): jobs live after the run that the index does not show live.
	planned int
	// live counts the board's live jobs in the index; doomed, those the run
	// does not keep. boardErr says why the board could not be read.
	live, doomed int
	boardErr     error
	leaseLost    bool
}

// syncPlan is what sync does.
type syncPlan struct {
	// archive: archive the doomed jobs.
	archive bool
	// guard and refused name the guard that refused the sync, and why.
	guard, refused string
	// wouldArchive is what a dry run would archive.
	wouldArchive int
}

// decideSync applies the guards of the run semantics, in order.
func decideSync(f syncFacts) syncPlan {
	s := f.spec
	switch {
	case !s.Sync:
		return syncPlan{guard: GuardDisabled, refused: "sync disabled (target_parameters.sync is false)"}
	case f.leaseLost:
		return syncPlan{guard: GuardLeaseLost, refused: "the board was taken by another run"}
	case f.seal.ReadFailure:
		return syncPlan{guard: GuardRead, refused: "the fetch failed, so the run does not know every live offer: " + f.seal.ReadError}
	case f.seal.Truncated:
		return syncPlan{guard: GuardTruncated, refused: fmt.Sprintf("the fetch was truncated by the API's result cap, so the run does not know every live offer (%d offers unreachable)", f.seal.Unreached)}
	case f.onBoard == 0:
		return syncPlan{guard: GuardNoJob, refused: "no job of this run is on the board (nothing written or skipped)"}
	case f.boardErr != nil:
		return syncPlan{guard: GuardUnreadable, refused: "could not list the board: " + f.boardErr.Error()}
	}
	live := f.live + f.planned
	if share := float64(f.doomed) / float64(max(live, 1)); share > s.SyncMaxShare && !s.ForceSync {
		return syncPlan{guard: GuardMaxShare, refused: fmt.Sprintf("it would archive %d of the board's %d live jobs (%.0f%%), more than the %.0f%% allowed (target_parameters.sync_max_share); run again with force_sync to confirm",
			f.doomed, live, 100*share, 100*s.SyncMaxShare)}
	}
	if s.DryRun {
		return syncPlan{wouldArchive: f.doomed}
	}
	return syncPlan{archive: f.doomed > 0}
}

// syncer runs sync for the runs whose final key this process won.
type syncer struct {
	l      *ledger
	index  boardIndex
	board  Board
	hb     *heartbeat
	events *events
	logger *slog.Logger
}

// tailTimeout bounds writing the report and releasing the board.
const tailTimeout = 10 * time.Second

// run syncs run as owner, the holder of its final key.
func (s *syncer) run(ctx context.Context, run, owner string) {
	spec, err := s.l.spec(ctx, run)
	if err != nil {
		s.logger.Error("sync", "run", run, "err", err)
		return
	}
	ctx, sp := tracer.Start(runContext(ctx, spec), "pulljobs.sync")
	sp.SetAttributes(runAttr.String(run))
	defer sp.End()
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel, below
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wg.Go(func() { s.keepAlive(ctx, cancel, spec, owner) })

	r, err := s.sync(ctx, spec)
	if err != nil {
		// The final key's heartbeat stops with us: another process takes over.
		s.logger.Error("sync interrupted; another process will take over", "run", run, "err", err)
		return
	}
	// The run is over: its last steps must not be cut short by a stopping
	// worker.
	tail, cancelTail := context.WithTimeout(context.WithoutCancel(ctx), tailTimeout)
	defer cancelTail()
	if _, err := createJSON(tail, s.l.runs, reportKey(run), r); err != nil {
		s.logger.Error("write report", "run", run, "err", err)
		return
	}
	if err := s.l.release(tail, spec.BoardKey, run); err != nil {
		s.logger.Warn("release board", "run", run, "err", err)
	}
	s.events.send(run, Event{Type: EventDone, Done: r.Events.ReadSuccess, Expected: r.Events.ReadSuccess, Message: r.Status})
	s.finished(tail, r)
	sp.SetAttributes(attribute.String("pulljobs.status", r.Status))
}

// finished logs the end of a run and counts it.
func (s *syncer) finished(ctx context.Context, r Report) {
	log := s.logger.Info
	if r.Sync.Guard != "" && r.Sync.Guard != GuardDisabled {
		s.logger.Warn("sync refused", "run", r.RunID, "guard", r.Sync.Guard, "reason", r.Sync.RefusedReason)
	}
	if r.Status != StatusSuccess {
		log = s.logger.Warn
	}
	e := r.Events
	log("run finished", "run", r.RunID, "status", r.Status, "reason", r.Reason,
		"created", e.Created, "updated", e.Updated, "unarchived", e.Unarchived, "unchanged", e.Unchanged,
		"skipped", e.Skipped, "archived", r.Sync.Archived, "sync_guard", r.Sync.Guard)
	countRun(ctx, r)
}

// keepAlive refreshes the run's final key and board lease while sync runs,
// and cancels sync when either was taken by someone else.
func (s *syncer) keepAlive(ctx context.Context, cancel context.CancelCauseFunc, spec RunSpec, owner string) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		keepClaim(ctx, cancel, s.l.runs, finalKey(spec.ID), owner, s.l.settings.LeaseTTL, func(f *final) { f.Heartbeat = time.Now().UTC() })
	})
	tick := time.NewTicker(s.l.settings.LeaseTTL / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := s.l.renew(ctx, spec.BoardKey, spec.ID); errors.Is(err, ErrLeaseLost) {
			cancel(ErrLeaseLost)
			return
		}
	}
}

// sync gathers the facts, decides and archives, and returns the report.
// It fails only when the run's records cannot be read or sync was taken
// over.
func (s *syncer) sync(ctx context.Context, spec RunSpec) (Report, error) {
	seal, ok, err := s.l.seal(ctx, spec.ID)
	if err != nil {
		return Report{}, err
	}
	if !ok {
		return Report{}, fmt.Errorf("run %s has no seal", spec.ID)
	}
	r := newReport(spec, seal)
	f := syncFacts{spec: spec, seal: seal, leaseLost: s.hb.isLost(spec.ID)}
	kept, err := s.readRecords(ctx, spec.ID, seal.Expected, &r, &f)
	if err != nil {
		return Report{}, err
	}
	f.planned = r.Events.Created + r.Events.Unarchived
	var snap snapshot
	if spec.Sync {
		// Even a refused sync says what it would archive: the status says
		// whether the board drifts.
		if snap, f.live, f.doomed, f.boardErr = s.measure(ctx, spec, kept); f.boardErr != nil && ctx.Err() != nil {
			return Report{}, context.Cause(ctx)
		}
	}
	plan := decideSync(f)
	r.Sync = SyncReport{Guard: plan.guard, RefusedReason: plan.refused, Performed: plan.guard == "" && !spec.DryRun}
	if !r.Sync.Performed {
		r.Sync.WouldArchive = f.doomed
	}
	if plan.archive {
		if err := s.archive(ctx, spec, snap, kept, &r); err != nil {
			return Report{}, err
		}
	}
	r.finish(time.Now())
	return r, nil
}

// readRecords counts the run's records into r and f, and returns the
// references the run keeps on the board.
func (s *syncer) readRecords(ctx context.Context, run string, expected int, r *Report, f *syncFacts) (*keptSet, error) {
	kept := &keptSet{}
	err := s.l.readRecords(ctx, run, expected, func(rec Record) error {
		r.Events.add(rec)
		if rec.keepsJob() {
			kept.Add(rec.Offer)
		}
		if rec.onBoard() {
			f.onBoard++
		}
		if rec.State == Failed && len(r.Failures) < maxReportedFailures {
			r.Failures = append(r.Failures, ItemFailure{Offer: rec.Offer, Failure: rec.Failure, Reason: rec.Reason})
		}
		return nil
	})
	return kept, err
}

// keptSet holds the references a run keeps on the board, about 8 bytes
// each (francetravail.IDSet).
type keptSet = francetravail.IDSet

// measure counts the board's live jobs, and those of them the run does not
// keep, from the run's snapshot of the board index, which it builds again
// if the run's listing failed; it returns the snapshot it read. The
// snapshot is the board before the run's writes and sync: a sync taken
// over decides as the first did.
func (s *syncer) measure(ctx context.Context, spec RunSpec, kept *keptSet) (snap snapshot, live, doomed int, err error) {
	var st indexState
	if _, err := getJSON(ctx, s.l.runs, indexKey(spec.ID), &st); err != nil {
		return snap, 0, 0, fmt.Errorf("read the board index state: %w", err)
	}
	if st.Status != indexReady {
		if st, err = s.index.refresh(ctx, spec.BoardKey, spec.ID, s.board); err != nil {
			return snap, 0, 0, err
		}
	}
	snap = st.snapshot
	err = s.index.entries(ctx, spec.BoardKey, snap, func(e boardEntry) (bool, error) {
		if e.State == boardLive {
			live++
			if !kept.Has(e.Ref) {
				doomed++
			}
		}
		return true, nil
	})
	return snap, live, doomed, err
}

// archiveTally counts what archive did, from its goroutines.
type archiveTally struct {
	mu       sync.Mutex
	archived int
	failed   int
	failures []ItemFailure
}

func (t *archiveTally) done() {
	t.mu.Lock()
	t.archived++
	t.mu.Unlock()
}

func (t *archiveTally) fail(e boardEntry, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed++
	if len(t.failures) < maxReportedFailures {
		t.failures = append(t.failures, ItemFailure{Offer: e.Ref, Failure: "archive_failure", Reason: err.Error()})
	}
}

// archive archives the live jobs of snapshot snap that the run does not
// keep, and counts those it archived before a takeover. It stops early,
// with the context's cause, when sync is taken over or the board lease is
// lost.
func (s *syncer) archive(ctx context.Context, spec RunSpec, snap snapshot, kept *keptSet, r *Report) error {
	marks, err := s.index.marks(ctx, spec.BoardKey, spec.ID)
	if err != nil {
		return err
	}
	var t archiveTally
	for _, action := range marks {
		if action == actionArchived {
			t.done() // by this run, before a takeover
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.l.settings.Concurrency)
	err = s.index.entries(ctx, spec.BoardKey, snap, func(e boardEntry) (bool, error) {
		mark := marks[e.id()]
		if mark == actionArchived || e.State != boardLive || kept.Has(e.Ref) {
			return true, nil
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.hb.touch(spec.BoardKey, spec.ID)
			if err := s.archiveOne(ctx, spec, e, mark == actionArchiving); err != nil {
				if ctx.Err() == nil {
					t.fail(e, err)
				}
				return
			}
			t.done()
		})
		return ctx.Err() == nil, nil
	})
	wg.Wait()
	if ctx.Err() != nil {
		if errors.Is(context.Cause(ctx), ErrLeaseLost) {
			// Stop touching the board, and say so: the archives made stay.
			r.Sync.Guard, r.Sync.RefusedReason = GuardLeaseLost, "the board was taken by another run while archiving"
			err = nil
		} else {
			return context.Cause(ctx)
		}
	}
	if err != nil {
		return err
	}
	r.Sync.Performed = r.Sync.Guard == ""
	r.Sync.Archived, r.Events.Archived = t.archived, t.archived
	r.Events.ArchiveFailure += t.failed
	r.Failures = append(r.Failures, t.failures[:min(len(t.failures), maxReportedFailures-len(r.Failures))]...)
	return nil
}

// archiveOne archives one job, its intent and its end marked in the index
// around the call. An intent left by a predecessor that died (intent) is
// checked on the board first: the call is not made twice.
func (s *syncer) archiveOne(ctx context.Context, spec RunSpec, e boardEntry, intent bool) error {
	if intent {
		job, err := s.board.GetJobByKey(ctx, spec.BoardKey, e.Key)
		switch {
		case errors.Is(err, hrflow.ErrNotFound):
			return s.index.mark(ctx, spec, e, actionArchived)
		case err != nil:
			return err
		case job.Archived():
			return s.index.mark(ctx, spec, e, actionArchived)
		}
	}
	if err := s.index.mark(ctx, spec, e, actionArchiving); err != nil {
		return err
	}
	if err := s.board.SetArchivedKey(ctx, spec.BoardKey, e.Key, true); err != nil {
		return err
	}
	return s.index.mark(ctx, spec, e, actionArchived)
}
