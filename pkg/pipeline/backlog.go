package pipeline

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/retry"
)

// backlog is the backpressure of a stage on the one after it: it holds
// the stage while more than high items wait for the next one, until no
// more than high/2 do. The formatters are held by the jobs waiting for the
// pushers, and the fetcher by the offers waiting for the formatters.
//
// A backlog larger than that buys nothing, since the next stage is then
// the slower one, and it costs: the next stage then reads blocks of its
// stream far behind the one being written, which the server loads again
// after every garbage collection of its process (its block caches are weak
// references), so that a nationwide run would cost more an offer than a
// small one (the README's performance table measures it).
type backlog struct {
	cons jetstream.Consumer // the next stage's
	high uint64
	// whileTaking, when set, holds the stage only while the next one takes
	// items: the fetcher's hold is for a pipeline short of CPU. When the
	// formatters take nothing, they are held by the pushers (a quota: the
	// offers waiting then cost nothing, and a fetch slowed to the pushers'
	// pace would page through a search result that changes under it), or
	// none runs (a fetcher alone; workers scaled up from zero on its
	// backlog), and the fetch goes on.
	whileTaking bool
	held        atomic.Bool
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
// ends; its caller owns the goroutine. A look that fails releases the
// hold: backpressure must never stop a run that NATS could carry.
func (b *backlog) watch(ctx context.Context) {
	t := time.NewTicker(backlogPoll)
	defer t.Stop()
	defer b.held.Store(false)
	taken := uint64(math.MaxUint64) // the next stage's deliveries at the last look; none yet
	for {
		info, err := b.cons.Info(ctx)
		switch {
		case err != nil:
			b.held.Store(false)
		case b.whileTaking && info.Delivered.Consumer == taken:
			b.held.Store(false)
		case info.NumPending > b.high:
			b.held.Store(true)
		case info.NumPending <= b.high/2:
			b.held.Store(false)
		}
		if err == nil {
			taken = info.Delivered.Consumer
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
