package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/pulljobs/pulljobs/pkg/boardindex"
	"github.com/pulljobs/pulljobs/pkg/fairshare"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/store"
)

// Sync ends a run in three steps: gather the facts (the seal, the records,
// the board as the index knows it), decide what to do (decideSync, a pure
// function of the facts: the guards of the run semantics), and carry the
// plan out (archive). Only the process that holds the run's final key
// syncs; if it dies, another takes over where it was: the index's marks say
// which jobs this run archived already.

// syncFacts is what sync decides from.
type syncFacts struct {
	spec RunSpec
	seal rs.Seal
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
	guard   rs.Guard
	refused string
	// wouldArchive is what a dry run would archive.
	wouldArchive int
}

// decideSync applies the guards of the run semantics, in order.
func decideSync(f syncFacts) syncPlan {
	s := f.spec
	switch {
	case !s.Sync:
		return syncPlan{guard: rs.GuardDisabled, refused: "sync disabled (target_parameters.sync is false)"}
	case f.leaseLost:
		return syncPlan{guard: rs.GuardLeaseLost, refused: "the board was taken by another run"}
	case f.seal.ReadFailure:
		return syncPlan{guard: rs.GuardRead, refused: "the fetch failed, so the run does not know every live offer: " + f.seal.ReadError}
	case f.seal.Truncated:
		return syncPlan{guard: rs.GuardTruncated, refused: fmt.Sprintf("the fetch was truncated by the API's result cap, so the run does not know every live offer (%d offers unreachable)", f.seal.Unreached)}
	case f.onBoard == 0:
		return syncPlan{guard: rs.GuardNoJob, refused: "no job of this run is on the board (nothing written or skipped)"}
	case f.boardErr != nil:
		return syncPlan{guard: rs.GuardUnreadable, refused: "could not list the board: " + f.boardErr.Error()}
	}
	live := f.live + f.planned
	if share := float64(f.doomed) / float64(max(live, 1)); share > s.SyncMaxShare && !s.ForceSync {
		return syncPlan{guard: rs.GuardMaxShare, refused: fmt.Sprintf("it would archive %d of the board's %d live jobs (%.0f%%), more than the %.0f%% allowed (target_parameters.sync_max_share); run again with force_sync to confirm",
			f.doomed, live, 100*share, 100*s.SyncMaxShare)}
	}
	if s.DryRun {
		return syncPlan{wouldArchive: f.doomed}
	}
	return syncPlan{archive: f.doomed > 0}
}

// syncer runs sync for the runs whose final key this process won.
type syncer struct {
	ledger    *ledger
	board     Board
	heartbeat *heartbeat
	events    *events
	logger    *slog.Logger
}

// tailTimeout bounds writing the report and releasing the board.
const tailTimeout = 10 * time.Second

// run syncs run as owner, the holder of its final key.
func (s *syncer) run(ctx context.Context, run, owner string) {
	spec, err := s.ledger.spec(ctx, run)
	if err != nil {
		s.logger.Error("sync", "run", run, "err", err)
		return
	}
	ctx, sp := tracer.Start(fairshare.WithFlow(runContext(ctx, spec), spec.ID, spec.weight()), "pulljobs.sync")
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
	// worker. The board's record goes first: the report ends the run.
	tail, cancelTail := context.WithTimeout(context.WithoutCancel(ctx), tailTimeout)
	defer cancelTail()
	if err := s.ledger.recordBoard(tail, r, s.liveAfter(tail, spec, r)); err != nil {
		s.logger.Warn("record the board's status", "run", run, "board", spec.BoardKey, "err", err)
	}
	if _, err := store.Create(tail, s.ledger.runs, rs.ReportKey(run), r); err != nil {
		s.logger.Error("write report", "run", run, "err", err)
		return
	}
	if err := s.ledger.release(tail, spec.BoardKey, run); err != nil {
		s.logger.Warn("release board", "run", run, "err", err)
	}
	s.dropMarks(tail, spec, run)
	s.events.send(run, Event{Type: EventDone, Done: r.Events.ReadSuccess, Expected: r.Events.ReadSuccess, Message: string(r.Status)})
	s.finished(tail, r)
	sp.SetAttributes(attribute.String("pulljobs.status", string(r.Status)))
}

// liveAfter counts the board's live jobs after run r, as the board index
// knows them: those the run's listing saw, with what it created,
// unarchived and archived; nil when the listing failed or r planned only.
func (s *syncer) liveAfter(ctx context.Context, spec RunSpec, r rs.Report) *int {
	var st indexState
	if _, found, err := store.Get(ctx, s.ledger.runs, rs.IndexKey(spec.ID), &st); err != nil || !found || st.Status != indexReady || r.DryRun {
		return nil
	}
	live := max(0, st.Live+r.Events.Created+r.Events.Unarchived-r.Sync.Archived)
	return &live
}

// finished logs the end of a run and counts it.
func (s *syncer) finished(ctx context.Context, r rs.Report) {
	log := s.logger.Info
	if r.Sync.Guard != "" && r.Sync.Guard != rs.GuardDisabled {
		s.logger.Warn("sync refused", "run", r.RunID, "guard", r.Sync.Guard, "reason", r.Sync.RefusedReason)
	}
	if r.Status != rs.StatusSuccess {
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
		store.KeepClaim(ctx, cancel, s.ledger.runs, rs.FinalKey(spec.ID), owner, s.ledger.settings.LeaseTTL, func(f *final) { f.Heartbeat = time.Now().UTC() })
	})
	tick := time.NewTicker(s.ledger.settings.LeaseTTL / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := s.ledger.renew(ctx, spec.BoardKey, spec.ID); errors.Is(err, ErrLeaseLost) {
			cancel(ErrLeaseLost)
			return
		}
	}
}

// sync gathers the facts, decides and archives, and returns the report.
// It fails only when the run's records cannot be read or sync was taken
// over.
func (s *syncer) sync(ctx context.Context, spec RunSpec) (rs.Report, error) {
	seal, ok, err := s.ledger.seal(ctx, spec.ID)
	if err != nil {
		return rs.Report{}, err
	}
	if !ok {
		return rs.Report{}, fmt.Errorf("run %s has no seal", spec.ID)
	}
	r := newReport(spec, seal)
	f := syncFacts{spec: spec, seal: seal, leaseLost: s.heartbeat.isLost(spec.ID)}
	kept, err := s.readRecords(ctx, spec.ID, seal.Expected, &r, &f)
	if err != nil {
		return rs.Report{}, err
	}
	f.planned = r.Events.Created + r.Events.Unarchived
	var snap boardindex.Snapshot
	if spec.Sync {
		// Even a refused sync says what it would archive: the status says
		// whether the board drifts.
		if snap, f.live, f.doomed, f.boardErr = s.measure(ctx, spec, kept); f.boardErr != nil && ctx.Err() != nil {
			return rs.Report{}, context.Cause(ctx)
		}
	}
	plan := decideSync(f)
	r.Sync = rs.SyncReport{Guard: plan.guard, RefusedReason: plan.refused, Performed: plan.guard == "" && !spec.DryRun}
	if !r.Sync.Performed {
		r.Sync.WouldArchive = f.doomed
	}
	if plan.archive {
		if err := s.archive(ctx, spec, snap, kept, &r); err != nil {
			return rs.Report{}, err
		}
	}
	r.Finish(time.Now())
	return r, nil
}

// readRecords counts the run's records into r and f, and returns the
// references the run keeps on the board.
func (s *syncer) readRecords(ctx context.Context, run string, expected int, r *rs.Report, f *syncFacts) (*keptSet, error) {
	kept := &keptSet{}
	err := s.ledger.readRecords(ctx, run, expected, func(rec rs.Record) error {
		r.Events.Add(rec)
		if rec.Rate > 0 || rec.Throttled > 0 {
			if r.HrFlow == nil {
				r.HrFlow = &rs.HrFlowCalls{}
			}
			r.HrFlow.Add(rec)
		}
		if rec.KeepsJob() {
			kept.Add(rec.Offer)
		}
		if rec.OnBoard() {
			f.onBoard++
		}
		if rec.State == rs.Failed && len(r.Failures) < rs.MaxReportedFailures {
			r.Failures = append(r.Failures, rs.ItemFailure{Offer: rec.Offer, Failure: rec.Failure, Reason: rec.Reason})
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
func (s *syncer) measure(ctx context.Context, spec RunSpec, kept *keptSet) (snap boardindex.Snapshot, live, doomed int, err error) {
	var st indexState
	if _, found, err := store.Get(ctx, s.ledger.runs, rs.IndexKey(spec.ID), &st); err != nil || !found {
		if err == nil {
			err = fmt.Errorf("run %s has no index state", spec.ID)
		}
		return snap, 0, 0, err
	}
	if st.Status != indexReady {
		if st.Listing, err = s.ledger.index.Refresh(ctx, spec.BoardKey, s.board); err != nil {
			return snap, 0, 0, err
		}
	}
	snap = st.Snapshot
	err = s.ledger.index.Entries(ctx, spec.BoardKey, snap, func(e boardindex.Entry) (bool, error) {
		if e.State == boardindex.Live {
			live++
			if !kept.Has(e.Ref) {
				doomed++
			}
		}
		return true, nil
	})
	return snap, live, doomed, err
}

// newReport starts the report of a sealed run.
func newReport(spec RunSpec, seal rs.Seal) rs.Report {
	r := rs.Report{RunID: spec.ID, BoardKey: spec.BoardKey, StartedAt: spec.CreatedAt, DryRun: spec.DryRun, Truncated: seal.Truncated,
		Trigger: spec.trigger(), Profile: spec.Profile,
		Fetch: &rs.FetchSummary{Total: seal.Total, Unreached: seal.Unreached, Duplicates: seal.Duplicates, Windows: seal.Windows,
			Requests: seal.Requests, Error: seal.ReadError, ReplayOf: spec.ReplayOf}}
	r.Events.ReadSuccess = seal.ReadSuccess
	if seal.ReadFailure {
		r.Events.ReadFailure = 1
	}
	return r
}
