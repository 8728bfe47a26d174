package pipeline

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// tracker notices when a sealed run has a final record for every item, and
// fires its sync exactly once: whoever creates the run's final key first
// (kv.Create) runs sync, in whichever pusher process that is. It also takes
// over a sync whose owner died, and reports sealed runs that stall.
//
// It runs in every process that can sync (pushers, the one-machine product);
// run follows each sealed run in a goroutine of its own, and waits for them
// all before returning.
type tracker struct {
	p    *Pipeline
	sync *syncStage

	mu       sync.Mutex
	followed map[string]bool
}

func (tr *tracker) run(ctx context.Context) error {
	w, err := watch(ctx, tr.p.t.runs, "*.seal", jetstream.IgnoreDeletes())
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
			run := strings.TrimSuffix(e.Key(), ".seal")
			var seal Seal
			if err := json.Unmarshal(e.Value(), &seal); err != nil {
				tr.p.logger.Error("unreadable seal", "run", run, "err", err)
				continue
			}
			tr.mu.Lock()
			seen := tr.followed[run]
			tr.followed[run] = true
			tr.mu.Unlock()
			if !seen {
				wg.Go(func() { tr.follow(ctx, run, seal) })
			}
		}
	}
}

// followRetry is the pause before following a run again after an error.
const followRetry = 2 * time.Second

func (tr *tracker) follow(ctx context.Context, run string, seal Seal) {
	t := tr.p.t
	if done, err := t.exists(ctx, t.runs, reportKey(run)); err != nil || done {
		return
	}
	triggered, err := t.exists(ctx, t.runs, finalKey(run))
	if err != nil {
		return
	}
	// Until ctx ends, an error only delays: NATS may be failing over.
	for !triggered {
		err := tr.waitComplete(ctx, run, seal)
		if err == nil {
			break
		}
		if sleep(ctx, followRetry) != nil {
			return
		}
		tr.p.logger.Warn("follow run; retrying", "run", run, "err", err)
	}
	tr.finalize(ctx, run)
}

// waitComplete returns once the run has as many final records as its seal
// expects. It reports, every StallAfter, a run that made no progress.
func (tr *tracker) waitComplete(ctx context.Context, run string, seal Seal) error {
	w, err := watch(ctx, tr.p.t.items, run+".*", jetstream.MetaOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer w.Stop()
	stall := tr.p.t.settings.StallAfter
	check := time.NewTicker(stall / 4)
	defer check.Stop()
	done := map[string]struct{}{}
	last := time.Now()
	for len(done) < seal.Expected {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return ctx.Err()
			}
			if e != nil {
				done[e.Key()] = struct{}{}
				last = time.Now()
			}
		case now := <-check.C:
			if now.Sub(last) >= stall {
				tr.p.logger.Error("run stalled: sealed, but items stopped reaching a final state",
					"run", run, "done", len(done), "expected", seal.Expected, "no_progress_for", now.Sub(last).Round(time.Second).String())
				tr.p.event(run, Event{Type: EventStalled, Done: len(done), Expected: seal.Expected,
					Message: "no item reached a final state for " + now.Sub(last).Round(time.Second).String()})
				last = now // report again after another StallAfter
			}
		}
	}
	return nil
}

// finalize creates the run's final key, or takes over a sync whose owner
// stopped its heartbeat, and runs sync if it won.
func (tr *tracker) finalize(ctx context.Context, run string) {
	t := tr.p.t
	owner := tr.p.holder + "/" + randomHex()
	for {
		f := final{Owner: owner, Heartbeat: time.Now().UTC()}
		created, err := createJSON(ctx, t.runs, finalKey(run), f)
		if err != nil {
			tr.p.logger.Warn("trigger sync; retrying", "run", run, "err", err)
			if sleep(ctx, followRetry) != nil {
				return
			}
			continue
		}
		if created {
			tr.sync.run(ctx, run, owner)
			return
		}
		var held final
		rev, err := getJSON(ctx, t.runs, finalKey(run), &held)
		if err != nil {
			tr.p.logger.Warn("read sync trigger; retrying", "run", run, "err", err)
			if sleep(ctx, followRetry) != nil {
				return
			}
			continue
		}
		if held.Abandoned != "" {
			return
		}
		if held.Owner == owner {
			// Ours: created by a retried call whose first answer was lost.
			tr.sync.run(ctx, run, owner)
			return
		}
		if done, err := t.exists(ctx, t.runs, reportKey(run)); err != nil || done {
			return
		}
		if time.Since(held.Heartbeat) > t.settings.LeaseTTL {
			if err := updateJSON(ctx, t.runs, finalKey(run), f, rev); err == nil {
				tr.p.logger.Warn("taking over the sync of a run whose syncing process stopped", "run", run, "previous_owner", held.Owner)
				tr.sync.run(ctx, run, owner)
				return
			}
			continue
		}
		if err := sleep(ctx, t.settings.LeaseTTL/4); err != nil {
			return
		}
	}
}
