package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/boardindex"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/store"
)

// Sync's marks say what sync did to each job it archived, so that a sync
// taken over after a crash counts the archives made and checks the board
// before archiving a job twice. They are board index entries on
// pulljobs.index.<board>.marks.<run>, in the index stream beside the
// board's index, whose refresh leaves them alone: the run's sync removes
// them once its report is written, and any run's sync removes those an
// abandoned run left on its board.

// Actions of sync's marks (boardindex.Entry.Action).
const (
	actionArchiving = "archiving" // the call is in flight
	actionArchived  = "archived"
)

// marksSubject is where sync marks what run did to board's jobs.
func marksSubject(board, run string) string { return boardindex.Subject(board, "marks."+run) }

// mark records what sync did to the job of e, as spec's run.
func (s *syncer) mark(ctx context.Context, spec RunSpec, e boardindex.Entry, action string) error {
	e.Run, e.Action = spec.ID, action
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := store.Retry(ctx, func(ctx context.Context) error {
		_, err := s.ledger.js.Publish(ctx, marksSubject(spec.BoardKey, spec.ID), data)
		return err
	}); err != nil {
		return fmt.Errorf("mark an archive in the board index: %w", err)
	}
	return nil
}

// marks returns what sync did, as run, to each job it touched: the last
// mark of each (entry id → action). It first removes the marks other runs
// left on the board: the board is run's now, and theirs are over.
func (s *syncer) marks(ctx context.Context, board, run string) (map[string]string, error) {
	s.dropOthersMarks(ctx, board, run)
	done := map[string]string{}
	err := store.ReadStream(ctx, s.ledger.indexStream, []string{marksSubject(board, run)}, false, func(m jetstream.Msg) error {
		var e boardindex.Entry
		if err := json.Unmarshal(m.Data(), &e); err != nil {
			return fmt.Errorf("board index mark: %w", err)
		}
		done[e.ID()] = e.Action
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the sync marks of run %s: %w", run, err)
	}
	return done, nil
}

// dropMarks removes run's marks once its report is written. Best effort:
// the next sync of the board removes what is left.
func (s *syncer) dropMarks(ctx context.Context, spec RunSpec, run string) {
	_ = store.Purge(ctx, s.ledger.indexStream, marksSubject(spec.BoardKey, run), 0)
}

// dropOthersMarks removes the marks of runs other than run on board.
// Best effort.
func (s *syncer) dropOthersMarks(ctx context.Context, board, run string) {
	prefix := marksSubject(board, "")
	si, err := s.ledger.indexStream.Info(ctx, jetstream.WithSubjectFilter(prefix+"*"))
	if err != nil {
		return
	}
	for subject := range si.State.Subjects {
		if strings.TrimPrefix(subject, prefix) != run {
			_ = store.Purge(ctx, s.ledger.indexStream, subject, 0)
		}
	}
}

// archiveTally counts what archive did, from its goroutines.
type archiveTally struct {
	mu       sync.Mutex
	archived int
	failed   int
	failures []rs.ItemFailure
}

func (t *archiveTally) done() {
	t.mu.Lock()
	t.archived++
	t.mu.Unlock()
}

func (t *archiveTally) fail(e boardindex.Entry, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed++
	if len(t.failures) < rs.MaxReportedFailures {
		t.failures = append(t.failures, rs.ItemFailure{Offer: e.Ref, Failure: rs.ArchiveFailure, Reason: err.Error()})
	}
}

// archive archives the live jobs of snapshot snap that the run does not
// keep, and counts those it archived before a takeover. It stops early,
// with the context's cause, when sync is taken over or the board lease is
// lost.
func (s *syncer) archive(ctx context.Context, spec RunSpec, snap boardindex.Snapshot, kept *keptSet, r *rs.Report) error {
	marks, err := s.marks(ctx, spec.BoardKey, spec.ID)
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
	sem := make(chan struct{}, s.ledger.settings.Concurrency)
	err = s.ledger.index.Entries(ctx, spec.BoardKey, snap, func(e boardindex.Entry) (bool, error) {
		mark := marks[e.ID()]
		if mark == actionArchived || e.State != boardindex.Live || kept.Has(e.Ref) {
			return true, nil
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.heartbeat.touch(spec.BoardKey, spec.ID)
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
			r.Sync.Guard, r.Sync.RefusedReason = rs.GuardLeaseLost, "the board was taken by another run while archiving"
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
	r.Failures = append(r.Failures, t.failures[:min(len(t.failures), rs.MaxReportedFailures-len(r.Failures))]...)
	return nil
}

// archiveOne archives one job, its intent and its end marked in the index
// around the call. An intent left by a predecessor that died (intent) is
// checked on the board first: the call is not made twice.
func (s *syncer) archiveOne(ctx context.Context, spec RunSpec, e boardindex.Entry, intent bool) error {
	if intent {
		job, err := s.board.GetJobByKey(ctx, spec.BoardKey, e.Key)
		switch {
		case errors.Is(err, hrflow.ErrNotFound):
			return s.mark(ctx, spec, e, actionArchived)
		case err != nil:
			return err
		case job.Archived():
			return s.mark(ctx, spec, e, actionArchived)
		}
	}
	if err := s.mark(ctx, spec, e, actionArchiving); err != nil {
		return err
	}
	if err := s.board.SetArchivedKey(ctx, spec.BoardKey, e.Key, true); err != nil {
		return err
	}
	return s.mark(ctx, spec, e, actionArchived)
}
