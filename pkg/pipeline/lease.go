package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/retry"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/store"
)

// Lease is a board's lease, stored under the board's key in the leases
// bucket.
type Lease = rs.Lease

// BusyError reports a board held by a live run of another configuration.
type BusyError struct {
	Board   string
	Lease   Lease
	TTL     time.Duration
	Waited  time.Duration
	Elapsed time.Duration // since the holder's last sign of life
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("board %s is busy with run %s of another configuration (last sign of life %s ago; it is considered dead after %s without one); try again later, or wait for it with --wait-board",
		e.Board, e.Lease.Run, e.Elapsed.Round(time.Second), e.TTL)
}

// ErrBoardBusy is matched by the *BusyError of a board held by another run.
var ErrBoardBusy = errors.New("board busy")

// Is makes errors.Is(err, ErrBoardBusy) true for a *BusyError.
func (e *BusyError) Is(target error) bool { return target == ErrBoardBusy }

// ExitCode makes a command that met a busy board exit with
// cli.ExitBoardBusy: a scheduler tries again later.
func (e *BusyError) ExitCode() int { return cli.ExitBoardBusy }

// ErrLeaseLost reports a run whose board was taken by a later run after it
// looked dead: it must not touch the board any more.
var ErrLeaseLost = errors.New("lease on the board lost to another run")

// acquireOptions tunes acquire.
type acquireOptions struct {
	holder string
	// wait is how long to wait for a busy board before giving up.
	wait time.Duration
	// assumeStale treats any other holder as dead: true when the caller owns
	// the only server (embedded, not listening), so nobody else can be alive.
	assumeStale bool
	logger      *slog.Logger
}

// acquire takes the board for spec's run. When the board is held by an
// unfinished run with the same spec, it joins that run, whether its
// processes are alive (a fetcher started again while its run goes on) or
// look dead (a crash): the returned id is the one to use (spec.ID
// otherwise), and resumed is true. A live holder with another spec makes
// the board busy: acquire waits up to o.wait, then returns a *BusyError. A
// dead holder with another spec is abandoned: it will never sync.
func (t *ledger) acquire(ctx context.Context, spec RunSpec, o acquireOptions) (run string, resumed bool, err error) {
	hash := spec.hash()
	deadline := time.Now().Add(o.wait)
	// The holder names this very attempt, so that a write retried after its
	// answer was lost recognises itself.
	holder := o.holder + "/" + randomHex()
	for {
		now := time.Now().UTC()
		mine := Lease{Run: spec.ID, SpecHash: hash, Holder: holder, Acquired: now, Renewed: now}
		var held Lease
		rev, found, err := store.Get(ctx, t.leases, spec.BoardKey, &held)
		if err == nil && !found {
			created, err := store.Create(ctx, t.leases, spec.BoardKey, mine)
			if err != nil {
				return "", false, err
			}
			if created {
				return spec.ID, false, nil
			}
			continue // someone else just took it: look again
		}
		if err != nil {
			return "", false, fmt.Errorf("read lease of board %s: %w", spec.BoardKey, err)
		}
		if held.Holder == holder {
			// Ours already: a write whose answer was lost, then retried.
			return held.Run, held.Run != spec.ID, nil
		}
		done, err := store.Exists(ctx, t.runs, rs.ReportKey(held.Run))
		if err != nil {
			return "", false, err
		}
		elapsed := now.Sub(held.Renewed)
		stale := o.assumeStale || elapsed > t.settings.LeaseTTL
		switch {
		case done:
			// A finished run that could not release its lease.
		case held.SpecHash == hash:
			// The same run: resume it if it stopped, join it if it goes on.
			// Same run id, so nothing is fetched or written twice.
			mine.Run, mine.Acquired = held.Run, held.Acquired
			if err := store.Update(ctx, t.leases, spec.BoardKey, mine, rev); err != nil {
				if store.IsConflict(err) {
					continue
				}
				return "", false, err
			}
			if stale {
				o.logger.Warn("resuming an interrupted run", "run", held.Run, "board", spec.BoardKey)
			} else {
				o.logger.Info("joining the run of this configuration in flight", "run", held.Run, "board", spec.BoardKey)
			}
			return held.Run, true, nil
		case !stale:
			if time.Now().After(deadline) {
				return "", false, &BusyError{Board: spec.BoardKey, Lease: held, TTL: t.settings.LeaseTTL, Waited: o.wait, Elapsed: elapsed}
			}
			o.logger.Info("board busy; waiting", "board", spec.BoardKey, "holder_run", held.Run, "last_sign_of_life", elapsed.Round(time.Second).String())
			if err := retry.Sleep(ctx, time.Second); err != nil {
				return "", false, err
			}
			continue
		default:
			if err := store.Update(ctx, t.leases, spec.BoardKey, mine, rev); err != nil {
				if store.IsConflict(err) {
					continue
				}
				return "", false, err
			}
			o.logger.Warn("took the board from a run that stopped showing signs of life", "abandoned_run", held.Run, "board", spec.BoardKey, "last_sign_of_life", elapsed.Round(time.Second).String())
			t.abandon(ctx, held.Run, spec.ID, o.logger)
			return spec.ID, false, nil
		}
		if err := store.Update(ctx, t.leases, spec.BoardKey, mine, rev); err != nil {
			if store.IsConflict(err) {
				continue
			}
			return "", false, err
		}
		return spec.ID, false, nil
	}
}

// abandon makes sure a run that lost its board never syncs, and leaves a
// report saying so. Best effort: the lease check in sync is the real guard.
func (t *ledger) abandon(ctx context.Context, run, by string, logger *slog.Logger) {
	why := "abandoned: run " + by + " took the board after this run stopped showing signs of life"
	if _, err := store.Create(ctx, t.runs, rs.FinalKey(run), final{Abandoned: why, Heartbeat: time.Now().UTC()}); err != nil {
		logger.Error("abandon run", "run", run, "err", err)
	}
	spec, err := t.spec(ctx, run)
	if err != nil {
		logger.Error("abandon run", "run", run, "err", err)
		return
	}
	r := rs.Report{RunID: run, Status: rs.StatusFatal, Reason: why, BoardKey: spec.BoardKey, StartedAt: spec.CreatedAt, DryRun: spec.DryRun,
		Sync: rs.SyncReport{RefusedReason: "run abandoned"}}
	r.Finish(time.Now())
	if err := t.recordBoard(ctx, r, nil); err != nil {
		logger.Warn("record the board's status", "run", run, "err", err)
	}
	if _, err := store.Create(ctx, t.runs, rs.ReportKey(run), r); err != nil {
		logger.Error("abandon run", "run", run, "err", err)
	}
}

// release frees board if run holds it.
func (t *ledger) release(ctx context.Context, board, run string) error {
	var held Lease
	rev, found, err := store.Get(ctx, t.leases, board, &held)
	if err != nil {
		return fmt.Errorf("read lease of board %s: %w", board, err)
	}
	if !found || held.Run != run {
		return nil
	}
	if err := store.Retry(ctx, func(ctx context.Context) error {
		return t.leases.Delete(ctx, board, jetstream.LastRevision(rev))
	}); err != nil && !store.IsConflict(err) {
		return fmt.Errorf("release board %s: %w", board, err)
	}
	return nil
}

// renew records a sign of life of run on board. It returns ErrLeaseLost when
// another run holds the board.
func (t *ledger) renew(ctx context.Context, board, run string) error {
	for {
		var held Lease
		rev, found, err := store.Get(ctx, t.leases, board, &held)
		if err != nil {
			return fmt.Errorf("read lease of board %s: %w", board, err)
		}
		if !found || held.Run != run {
			return ErrLeaseLost
		}
		held.Renewed = time.Now().UTC()
		if err := store.Update(ctx, t.leases, board, held, rev); err != nil {
			if store.IsConflict(err) {
				continue
			}
			return err
		}
		return nil
	}
}

// heartbeat renews the leases of the runs a process works on. Stages call
// touch whenever they make progress on a run; run renews the touched leases
// every quarter TTL. It is owned by the worker that starts run, and stops
// with run's context.
type heartbeat struct {
	ledger *ledger
	logger *slog.Logger

	mu      sync.Mutex
	touched map[string]string // board → run
	lost    map[string]bool   // run → lease lost
}

func newHeartbeat(l *ledger, logger *slog.Logger) *heartbeat {
	return &heartbeat{ledger: l, logger: logger, touched: map[string]string{}, lost: map[string]bool{}}
}

func (h *heartbeat) touch(board, run string) {
	h.mu.Lock()
	h.touched[board] = run
	h.mu.Unlock()
}

// isLost reports whether a renewal found run's board held by another run.
func (h *heartbeat) isLost(run string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lost[run]
}

func (h *heartbeat) run(ctx context.Context) {
	tick := time.NewTicker(h.ledger.settings.LeaseTTL / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		h.beat(ctx)
	}
}

func (h *heartbeat) beat(ctx context.Context) {
	h.mu.Lock()
	touched := h.touched
	h.touched = map[string]string{}
	h.mu.Unlock()
	for board, run := range touched {
		err := h.ledger.renew(ctx, board, run)
		switch {
		case errors.Is(err, ErrLeaseLost):
			h.mu.Lock()
			h.lost[run] = true
			h.mu.Unlock()
		case err != nil && ctx.Err() == nil:
			h.logger.Warn("renew lease", "board", board, "run", run, "err", err)
		}
	}
}

// randomHex returns 8 random hexadecimal digits.
func randomHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b[:])
}
