package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"go.opentelemetry.io/otel/attribute"
)

// syncStage ends a run: it applies the guards of the run semantics, archives
// the board's jobs that the run did not keep, and writes the report. Only
// the process that won the run's final key runs it.
type syncStage struct {
	p     *Pipeline
	board Board
}

// tailTimeout bounds writing the report and releasing the board.
const tailTimeout = 10 * time.Second

// Reasons a sync is refused. Each guard keeps a board safe from a run that
// saw less than the whole truth.
const (
	refusedDisabled  = "sync disabled (target_parameters.sync is false)"
	refusedRead      = "the fetch failed, so the run does not know every live offer"
	refusedTruncated = "the fetch was truncated by the API's result cap, so the run does not know every live offer"
	refusedNoJob     = "no job of this run is on the board (nothing written or skipped)"
	refusedLease     = "the board was taken by another run"
)

// run syncs run as owner, the holder of its final key.
func (s *syncStage) run(ctx context.Context, run, owner string) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, sp := tracer.Start(ctx, "pulljobs.sync")
	sp.SetAttributes(runAttr.String(run))
	defer sp.End()

	spec, err := s.p.t.spec(ctx, run)
	if err != nil {
		s.p.logger.Error("sync", "run", run, "err", err)
		return
	}
	lost := &atomic.Bool{}
	wg.Go(func() { s.keepAlive(ctx, cancel, spec.BoardKey, run, owner, lost) })

	r, err := s.sync(ctx, spec, lost)
	if err != nil {
		// The final key's heartbeat stops with us: another process takes over.
		s.p.logger.Error("sync interrupted; another process will take over", "run", run, "err", err)
		return
	}
	// The run is over: its last steps must not be cut short by a stopping
	// worker.
	tail, cancelTail := context.WithTimeout(context.WithoutCancel(ctx), tailTimeout)
	defer cancelTail()
	if _, err := createJSON(tail, s.p.t.runs, reportKey(run), r); err != nil {
		s.p.logger.Error("write report", "run", run, "err", err)
		return
	}
	if err := s.p.t.release(tail, spec.BoardKey, run); err != nil {
		s.p.logger.Warn("release board", "run", run, "err", err)
	}
	s.p.event(run, Event{Type: EventDone, Done: r.Events.ReadSuccess, Expected: r.Events.ReadSuccess, Message: r.Status})
	s.p.logger.Info("run finished", "run", run, "status", r.Status, "reason", r.Reason,
		"created", r.Events.Created, "updated", r.Events.Updated, "unarchived", r.Events.Unarchived,
		"skipped", r.Events.Skipped, "archived", r.Sync.Archived, "sync_refused", r.Sync.RefusedReason)
	sp.SetAttributes(attribute.String("pulljobs.status", r.Status))
}

// keepAlive refreshes the run's final key and board lease while sync runs,
// and cancels sync when either was taken by someone else.
func (s *syncStage) keepAlive(ctx context.Context, cancel context.CancelFunc, board, run, owner string, lost *atomic.Bool) {
	t := s.p.t
	tick := time.NewTicker(t.settings.LeaseTTL / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var f final
		rev, err := getJSON(ctx, t.runs, finalKey(run), &f)
		if err == nil && f.Owner != owner {
			s.p.logger.Error("another process took over this sync", "run", run, "owner", f.Owner)
			cancel()
			return
		}
		if err == nil {
			f.Heartbeat = time.Now().UTC()
			err = updateJSON(ctx, t.runs, finalKey(run), f, rev)
		}
		if err != nil && ctx.Err() == nil {
			s.p.logger.Warn("sync heartbeat", "run", run, "err", err)
		}
		if err := t.renew(ctx, board, run); errors.Is(err, ErrLeaseLost) {
			lost.Store(true)
		}
	}
}

// sync computes the report of a complete run, archiving what the guards
// allow. It fails only when the run's records cannot be read.
func (s *syncStage) sync(ctx context.Context, spec RunSpec, lost *atomic.Bool) (Report, error) {
	t := s.p.t
	run := spec.ID
	seal, ok, err := t.seal(ctx, run)
	if err != nil {
		return Report{}, err
	}
	if !ok {
		return Report{}, fmt.Errorf("run %s has no seal", run)
	}
	records, err := s.records(ctx, run, seal.Expected)
	if err != nil {
		return Report{}, err
	}
	r := Report{RunID: run, BoardKey: spec.BoardKey, StartedAt: spec.CreatedAt, DryRun: spec.DryRun, Truncated: seal.Truncated,
		Fetch: &FetchSummary{Total: seal.Total, Unreached: seal.Unreached, Windows: seal.Windows, Requests: seal.Requests, Error: seal.ReadError, ReplayOf: spec.ReplayOf}}
	r.Events.ReadSuccess = seal.ReadSuccess
	if seal.ReadFailure {
		r.Events.ReadFailure = 1
	}
	keep := make(map[string]bool, len(records))
	onBoard := 0
	for _, rec := range records {
		r.Events.add(rec)
		if rec.keepsJob() {
			keep[rec.Offer] = true
		}
		if rec.onBoard() {
			onBoard++
		}
		if rec.State == Failed && len(r.Failures) < maxReportedFailures {
			r.Failures = append(r.Failures, ItemFailure{Offer: rec.Offer, Failure: rec.Failure, Reason: rec.Reason})
		}
	}
	switch {
	case !spec.Sync:
		r.Sync.RefusedReason = refusedDisabled
	case seal.ReadFailure:
		r.Sync.RefusedReason = refusedRead + ": " + seal.ReadError
	case seal.Truncated:
		r.Sync.RefusedReason = fmt.Sprintf("%s (%d offers unreachable)", refusedTruncated, seal.Unreached)
	case onBoard == 0:
		r.Sync.RefusedReason = refusedNoJob
	case lost.Load():
		r.Sync.RefusedReason = refusedLease
	default:
		if err := s.archive(ctx, spec, keep, &r, lost); err != nil {
			return Report{}, err
		}
	}
	r.finish(time.Now())
	return r, nil
}

// records reads every final record of run, waiting for late ones until
// there are expected of them.
func (s *syncStage) records(ctx context.Context, run string, expected int) ([]Record, error) {
	w, err := watch(ctx, s.p.t.items, run+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read records of run %s: %w", run, err)
	}
	defer w.Stop()
	byKey := map[string]Record{}
	initial := true
	for initial || len(byKey) < expected {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("read records of run %s: watcher closed", run)
			}
			if e == nil {
				initial = false
				continue
			}
			var rec Record
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				return nil, fmt.Errorf("record %s: %w", e.Key(), err)
			}
			byKey[e.Key()] = rec
		}
	}
	out := make([]Record, 0, len(byKey))
	for _, rec := range byKey {
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Offer < out[j].Offer })
	return out, nil
}

// archive archives the live jobs of the board that the run does not keep,
// unless that would be too large a share of the board.
func (s *syncStage) archive(ctx context.Context, spec RunSpec, keep map[string]bool, r *Report, lost *atomic.Bool) error {
	var live int
	var doomed []hrflow.JobRef
	for job, err := range s.board.Jobs(ctx, spec.BoardKey, hrflow.ListOptions{Concurrency: s.p.t.settings.Concurrency}) {
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.Sync.RefusedReason = "could not list the board: " + err.Error()
			r.Events.ArchiveFailure++
			return nil
		}
		if job.ArchivedAt != "" {
			continue
		}
		live++
		if !keep[job.Reference] {
			doomed = append(doomed, job)
		}
	}
	if spec.DryRun {
		// Nothing was written: count the board as the run would have left it.
		live += r.Events.Created + r.Events.Unarchived
	}
	already, err := s.archivedMarks(ctx, spec.ID)
	if err != nil {
		return err
	}
	if share := float64(len(doomed)) / float64(max(live, 1)); share > spec.SyncMaxShare && !spec.ForceSync {
		r.Sync.RefusedReason = fmt.Sprintf("it would archive %d of the board's %d live jobs (%.0f%%), more than the %.0f%% allowed (target_parameters.sync_max_share); run again with force_sync to confirm",
			len(doomed), live, 100*share, 100*spec.SyncMaxShare)
		return nil
	}
	if spec.DryRun {
		r.Sync.WouldArchive = len(doomed)
		return nil
	}
	if lost.Load() {
		r.Sync.RefusedReason = refusedLease
		return nil
	}
	r.Sync.Performed = true
	var failed atomic.Int64
	var mu sync.Mutex
	sem := make(chan struct{}, s.p.t.settings.Concurrency)
	var wg sync.WaitGroup
	for _, job := range doomed {
		if lost.Load() || ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.p.hb.touch(spec.BoardKey, spec.ID)
			if err := s.board.SetArchivedKey(ctx, spec.BoardKey, job.Key, true); err != nil {
				if ctx.Err() == nil {
					failed.Add(1)
					mu.Lock()
					if len(r.Failures) < maxReportedFailures {
						r.Failures = append(r.Failures, ItemFailure{Offer: job.Reference, Failure: "archive_failure", Reason: err.Error()})
					}
					mu.Unlock()
				}
				return
			}
			if _, err := createJSON(ctx, s.p.t.items, archivedKey(spec.ID, job.Key), job); err != nil {
				s.p.logger.Warn("record archived job", "run", spec.ID, "key", job.Key, "err", err)
			}
			mu.Lock()
			already[job.Key] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	r.Events.ArchiveFailure += int(failed.Load())
	r.Events.Archived = len(already)
	r.Sync.Archived = len(already)
	if lost.Load() {
		r.Sync.RefusedReason = refusedLease + " while archiving"
	}
	return nil
}

// archivedMarks returns the keys of the jobs this run archived so far: a
// sync taken over from a dead process counts what its predecessor did.
func (s *syncStage) archivedMarks(ctx context.Context, run string) (map[string]bool, error) {
	w, err := watch(ctx, s.p.t.items, run+".archived.*", jetstream.MetaOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read archived marks of run %s: %w", run, err)
	}
	defer w.Stop()
	marks := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("read archived marks of run %s: watcher closed", run)
			}
			if e == nil {
				return marks, nil
			}
			key, err := untoken(e.Key()[strings.LastIndexByte(e.Key(), '.')+1:])
			if err != nil {
				return nil, err
			}
			marks[key] = true
		}
	}
}
