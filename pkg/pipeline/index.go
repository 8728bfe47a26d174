package pipeline

import (
	"context"
	"sync"
	"time"

	"github.com/pulljobs/pulljobs/pkg/boardindex"
	"github.com/pulljobs/pulljobs/pkg/fairshare"
	"github.com/pulljobs/pulljobs/pkg/retry"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/store"
)

// A run's board index: one process (whoever claims <run>.index) refreshes
// the board's index from a listing while the fetcher fetches, and says in
// <run>.index when it is ready, which snapshot the run's pushers read, or
// that the listing failed (the pushers then read each job before writing
// it, and sync lists the board again).

// indexStatus says whether a run's board index can be read.
type indexStatus string

// Statuses of a run's index.
const (
	indexBuilding indexStatus = "building"
	indexReady    indexStatus = "ready"
	indexFailed   indexStatus = "failed" // the listing failed
)

// indexState is a run's index as stored in <run>.index: who builds it,
// and whether it is ready.
type indexState struct {
	// Owner names the process building it; Heartbeat is its last sign of
	// life (UTC). A stale heartbeat lets another process build it again.
	Owner     string      `json:"owner"`
	Heartbeat time.Time   `json:"heartbeat"`
	Status    indexStatus `json:"status"`
	// Error says why the listing failed.
	Error string `json:"error,omitempty"`
	// Listing names the snapshot the run reads (built by its listing when
	// ready, the one before when the listing failed), and what the listing
	// saw.
	boardindex.Listing
}

// done reports whether the pushers may go on: the index is ready, or could
// not be built.
func (s indexState) done() bool { return s.Status == indexReady || s.Status == indexFailed }

// indexPoll is the pause between two reads of a run's index state while
// it is being built.
const indexPoll = 100 * time.Millisecond

// awaitIndex returns the run's index state once it is ready or failed.
// Of the goroutines waiting at once, one reads the state and the others
// wait for it.
func (r *runInfo) awaitIndex(ctx context.Context, l *ledger) (indexState, error) {
	for {
		r.mu.Lock()
		if r.index.done() {
			st := r.index
			r.mu.Unlock()
			return st, nil
		}
		if wait := r.polling; wait != nil {
			r.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return indexState{}, ctx.Err()
			}
		}
		done := make(chan struct{})
		r.polling = done
		r.mu.Unlock()

		var st indexState
		_, _, err := store.Get(ctx, l.runs, rs.IndexKey(r.spec.ID), &st)
		if err == nil && !st.done() {
			err = retry.Sleep(ctx, indexPoll)
		}
		r.mu.Lock()
		if st.done() {
			r.index = st
		}
		r.polling = nil
		close(done)
		r.mu.Unlock()
		if err != nil {
			return indexState{}, err
		}
	}
}

// ensureIndex returns once the run's board index is ready or failed,
// building it if no live process is.
func (tr *tracker) ensureIndex(ctx context.Context, spec RunSpec) error {
	ttl := tr.ledger.settings.LeaseTTL
	for {
		owner := tr.holder + "/" + randomHex()
		won, cur, err := store.Claim(ctx, tr.ledger.runs, rs.IndexKey(spec.ID), indexState{Owner: owner, Heartbeat: time.Now().UTC(), Status: indexBuilding}, ttl)
		switch {
		case err != nil:
			return err
		case won:
			return tr.buildIndex(ctx, spec, owner)
		case cur.done():
			return nil
		}
		if over, err := tr.over(ctx, spec.ID); err != nil || over {
			return err
		}
		if err := retry.Sleep(ctx, indexPoll); err != nil {
			return err
		}
	}
}

// buildIndex refreshes the board index for run as owner of its claim, and
// says in <run>.index whether it is ready or failed.
func (tr *tracker) buildIndex(ctx context.Context, spec RunSpec, owner string) error {
	ttl := tr.ledger.settings.LeaseTTL
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel, below
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wg.Go(func() {
		store.KeepClaim(ctx, cancel, tr.ledger.runs, rs.IndexKey(spec.ID), owner, ttl, func(s *indexState) { s.Heartbeat = time.Now().UTC() })
	})
	start := time.Now()
	listing, err := tr.ledger.index.Refresh(fairshare.WithFlow(ctx, spec.ID, spec.weight()), spec.BoardKey, tr.lister)
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	st := indexState{Listing: listing}
	st.Owner, st.Heartbeat, st.Status = owner, time.Now().UTC(), indexReady
	if err != nil {
		st.Status, st.Error = indexFailed, err.Error()
		tr.logger.Error("board index: the listing failed; the pushers read each job before writing it", "run", spec.ID, "board", spec.BoardKey, "err", err)
	} else {
		tr.logger.Info("board index ready", "run", spec.ID, "board", spec.BoardKey, "live", st.Live, "archived", st.Archived, "took", time.Since(start).Round(time.Millisecond).String())
	}
	var held indexState
	rev, _, gerr := store.Get(ctx, tr.ledger.runs, rs.IndexKey(spec.ID), &held)
	if gerr != nil {
		return gerr
	}
	if held.Owner != owner {
		return nil // taken over (or gone): the new owner says when it is ready
	}
	return store.Update(ctx, tr.ledger.runs, rs.IndexKey(spec.ID), st, rev)
}
