package pipeline

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/boardindex"
	"github.com/pulljobs/pulljobs/pkg/retry"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/store"
)

// tracker follows every run from its spec to its report, in every process
// that can sync (pushers, the one-machine product). For each run it:
//
//  1. has the run's board index built, by exactly one process (a claim on
//     <run>.index), while the fetcher fetches;
//  2. waits for the run's seal, then for a final record per item;
//  3. fires sync exactly once: whoever claims <run>.final first runs it,
//     in whichever process that is, and another process takes it over if
//     that one dies.
//
// It also reports sealed runs that stall. run follows each run in a
// goroutine of its own, and waits for them all before returning.
type tracker struct {
	ledger *ledger
	lister boardindex.Lister
	sync   *syncer
	holder string // this process, in claims
	events *events
	logger *slog.Logger

	mu       sync.Mutex
	followed map[string]bool
}

// Pauses of the tracker.
const (
	// followRetry is the pause before trying again after an error.
	followRetry = 2 * time.Second
	// sealPoll is the pause between two looks for a run's seal.
	sealPoll = 200 * time.Millisecond
	// completionPoll is the pause between two counts of a run's records.
	completionPoll = 100 * time.Millisecond
)

func (tr *tracker) run(ctx context.Context) error {
	w, err := store.Watch(ctx, tr.ledger.runs, rs.SpecKey("*"), jetstream.IgnoreDeletes(), jetstream.MetaOnly())
	if err != nil {
		return err
	}
	defer w.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil {
				continue
			}
			run := strings.TrimSuffix(e.Key(), rs.SpecKey(""))
			tr.mu.Lock()
			seen := tr.followed[run]
			tr.followed[run] = true
			tr.mu.Unlock()
			if !seen {
				wg.Go(func() { tr.follow(ctx, run) })
			}
		}
	}
}

// follow takes one run from its spec to its sync. Until ctx ends, an error
// only delays: NATS may be failing over.
func (tr *tracker) follow(ctx context.Context, run string) {
	for ctx.Err() == nil {
		over, err := tr.over(ctx, run)
		if err == nil && over {
			return
		}
		if err == nil {
			err = tr.step(ctx, run)
		}
		if err == nil {
			return
		}
		if ctx.Err() == nil {
			tr.logger.Warn("follow run; retrying", "run", run, "err", err)
			_ = retry.Sleep(ctx, followRetry)
		}
	}
}

// over reports a run that needs nothing more: reported, or abandoned.
func (tr *tracker) over(ctx context.Context, run string) (bool, error) {
	if done, err := store.Exists(ctx, tr.ledger.runs, rs.ReportKey(run)); err != nil || done {
		return done, err
	}
	var f final
	_, _, err := store.Get(ctx, tr.ledger.runs, rs.FinalKey(run), &f)
	return f.Abandoned != "", err
}

// step runs the three steps of follow; it returns nil once the run is
// synced or over.
func (tr *tracker) step(ctx context.Context, run string) error {
	spec, err := tr.ledger.spec(ctx, run)
	if err != nil {
		return err
	}
	if err := tr.ensureIndex(ctx, spec); err != nil {
		return err
	}
	seal, ok, err := tr.awaitSeal(ctx, run)
	if err != nil || !ok {
		return err
	}
	if err := tr.awaitRecords(ctx, run, seal); err != nil {
		return err
	}
	return tr.finalize(ctx, run)
}

// awaitSeal returns the run's seal once the fetch is over; ok is false if
// the run ended without one (abandoned).
func (tr *tracker) awaitSeal(ctx context.Context, run string) (seal rs.Seal, ok bool, err error) {
	for i := 0; ; i++ {
		seal, ok, err = tr.ledger.seal(ctx, run)
		if err != nil || ok {
			return seal, ok, err
		}
		if i%10 == 9 {
			if over, err := tr.over(ctx, run); err != nil || over {
				return seal, false, err
			}
		}
		if err := retry.Sleep(ctx, sealPoll); err != nil {
			return seal, false, err
		}
	}
}

// awaitRecords returns once every item of the run has its final record.
// It counts the run's records, which the server does cheaply, and reports,
// every StallAfter, a run that made no progress; once there are as many
// as the seal expects, it reads them to check that each item has one: an
// item may have two (a redelivery after a crash), and the run must not
// end, its stray items dropped, while another has none.
func (tr *tracker) awaitRecords(ctx context.Context, run string, seal rs.Seal) error {
	stall := tr.ledger.settings.StallAfter
	last, lastChange := -1, time.Now()
	for {
		n, err := tr.ledger.countRecords(ctx, run)
		if err != nil {
			return err
		}
		if n >= seal.Expected {
			return tr.ledger.readRecords(ctx, run, seal.Expected, func(rs.Record) error { return nil })
		}
		now := time.Now()
		if n != last {
			last, lastChange = n, now
		} else if now.Sub(lastChange) >= stall {
			quiet := now.Sub(lastChange).Round(time.Second).String()
			tr.logger.Error("run stalled: sealed, but items stopped reaching a final state",
				"run", run, "done", n, "expected", seal.Expected, "no_progress_for", quiet)
			tr.events.send(run, Event{Type: EventStalled, Done: n, Expected: seal.Expected, Message: "no item reached a final state for " + quiet})
			lastChange = now // report again after another StallAfter
		}
		if err := retry.Sleep(ctx, completionPoll); err != nil {
			return err
		}
	}
}

// finalize claims the run's sync, or takes over one whose owner stopped
// its heartbeat, and runs it if it won.
func (tr *tracker) finalize(ctx context.Context, run string) error {
	ttl := tr.ledger.settings.LeaseTTL
	for {
		owner := tr.holder + "/" + randomHex()
		won, cur, err := store.Claim(ctx, tr.ledger.runs, rs.FinalKey(run), final{Owner: owner, Heartbeat: time.Now().UTC()}, ttl)
		switch {
		case err != nil:
			return err
		case won:
			if cur.Owner != owner {
				owner = cur.Owner // ours already, from a create retried after its answer was lost
			}
			tr.sync.run(ctx, run, owner)
			return nil
		case cur.Settled():
			return nil
		}
		if over, err := tr.over(ctx, run); err != nil || over {
			return err
		}
		if err := retry.Sleep(ctx, ttl/4); err != nil {
			return err
		}
	}
}
