package pipeline

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/retry"
)

// backlog is the backpressure of a stage on the one before it: it holds
// the formatters while more than high jobs wait for the pushers, until no
// more than high/2 do.
//
// A backlog larger than that buys nothing, since the pushers are the slower
// stage whenever one grows, and it costs: the pushers then read blocks of
// the jobs stream far behind the one the formatters write, which the
// server loads again after every garbage collection of its process (its
// block caches are weak references). A nationwide run on the embedded
// server spent 1.6 × the CPU an offer of a 200 000-offer one so, once
// its jobs backlog passed a few tens of thousands.
type backlog struct {
	cons jetstream.Consumer // the next stage's
	high uint64
	held atomic.Bool
}

// Pauses of a backlog.
const (
	// backlogPoll is the pause between two looks at the next stage's
	// backlog: a few hundred jobs at the pushers' pace.
	backlogPoll = 200 * time.Millisecond
	// backlogRecheck is the pause between two checks of a hold.
	backlogRecheck = 20 * time.Millisecond
)

// watch looks at the next stage's backlog every backlogPoll until ctx
// ends; its caller owns the goroutine. A look that fails releases the hold:
// backpressure must never stop a run that NATS could carry.
func (b *backlog) watch(ctx context.Context) {
	t := time.NewTicker(backlogPoll)
	defer t.Stop()
	defer b.held.Store(false)
	for {
		info, err := b.cons.Info(ctx)
		switch {
		case err != nil:
			b.held.Store(false)
		case info.NumPending > b.high:
			b.held.Store(true)
		case info.NumPending <= b.high/2:
			b.held.Store(false)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// holding reports whether the stage should stop pulling. A nil backlog
// never holds.
func (b *backlog) holding() bool { return b != nil && b.held.Load() }

// wait returns once b does not hold, or with ctx's error.
func (b *backlog) wait(ctx context.Context) error {
	for b.holding() {
		if err := retry.Sleep(ctx, backlogRecheck); err != nil {
			return err
		}
	}
	return ctx.Err()
}
