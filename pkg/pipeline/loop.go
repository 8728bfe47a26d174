package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/fairshare"
	"github.com/pulljobs/pulljobs/pkg/retry"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/store"
)

// Redelivery delays of an item that failed for a reason that may pass: the
// n-th failure waits about nakBase·2ⁿ⁻¹, at most nakMax.
const (
	nakBase = 2 * time.Second
	nakMax  = time.Minute
	// pollRetry is the pause after a transient error of the consumer itself.
	pollRetry = 500 * time.Millisecond
	// pullExpiry is how long a source with nothing to do waits at the
	// server for its run's next item before it asks again: a request lost
	// in a fail-over costs at most that.
	pullExpiry = 5 * time.Second
)

// consumeLoop runs a stage: it pulls the items of every run in flight
// from the run's consumer (source.go), and hands the next item, fairly
// among the runs (pkg/fairshare), to one of its concurrency workers, which
// carries the outcome out (item.go). It owns its workers, its sources and
// their goroutines, and stops when its context ends: it stops pulling,
// hands back what it pulled and did not start, finishes the items in
// progress (up to drainTimeout), and leaves the rest to be redelivered to
// another worker.
type consumeLoop struct {
	name         string // the stage's consumers' prefix, for logs
	stage        stageConsumers
	settings     Settings
	concurrency  int
	ackWait      time.Duration
	maxDeliver   int
	drainTimeout time.Duration
	handle       Handler
	// runs knows the runs the items belong to: decide drops the items of a
	// finished or unknown run, and hands the others to handle with theirs.
	runs      *runCache
	ender     *ender
	heartbeat *heartbeat
	logger    *slog.Logger
	// next, when set, is the next stage, whose backlog of a run holds the
	// run's source (backlog.go).
	next *nextStage
	// purgeOnDrop removes a finished run's messages left in the stage's
	// stream along with its consumer: the jobs' work queue.
	purgeOnDrop bool

	queue   fairshare.Queue[jetstream.Msg]
	sources sourceSet
}

// nextStage is the stage after a consume loop's: its per-run consumers'
// backlog holds the loop's sources above high items.
type nextStage struct {
	consumers stageConsumers
	high      int
}

// run runs the loop until ctx ends. It fails only when the runs cannot be
// followed at all.
func (l *consumeLoop) run(ctx context.Context) error {
	l.sources = sourceSet{l: l, by: map[string]*sourceRun{}}
	// In-flight work outlives ctx: a graceful stop finishes it.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var workers sync.WaitGroup
	// The workers live as long as the loop, rather than a goroutine a
	// message: each keeps the stack its first message grew, where a fresh
	// goroutine would copy its stack to a larger one for every message.
	for range l.concurrency {
		workers.Go(func() {
			for {
				m, _, err := l.queue.Take(ctx)
				if err != nil {
					return
				}
				l.process(work, m)
			}
		})
	}
	var keeper sync.WaitGroup
	keeper.Go(func() { l.keepStagedAlive(ctx) })
	l.sweep(ctx)
	err := l.followRuns(ctx)
	l.sources.wg.Wait()
	keeper.Wait()
	done := make(chan struct{})
	var waiter sync.WaitGroup
	waiter.Go(func() { workers.Wait(); close(done) })
	defer waiter.Wait()
	select {
	case <-done:
	case <-time.After(l.drainTimeout):
		l.logger.Warn("stopping with items in flight; they will be redelivered", "consumer", l.name, "drain_timeout", l.drainTimeout)
		cancelWork()
	}
	return err
}

// followRuns starts a source for every run in flight, and for each run
// that starts, until ctx ends; runCache stops the source of a run once it
// is finished. It fails only when the runs cannot be watched at all.
func (l *consumeLoop) followRuns(ctx context.Context) error {
	w, err := store.Watch(ctx, l.runs.ledger.runs, rs.SpecKey("*"), jetstream.IgnoreDeletes(), jetstream.MetaOnly())
	if err != nil {
		return fmt.Errorf("%s: watch runs: %w", l.name, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e != nil {
				l.sources.start(ctx, strings.TrimSuffix(e.Key(), rs.SpecKey("")))
			}
		}
	}
}

// process takes one message from delivery to acknowledgement.
func (l *consumeLoop) process(ctx context.Context, m jetstream.Msg) {
	it, err := itemOfMsg(m)
	var o Outcome
	if err != nil {
		o = failed(l.ender.stage, l.ender.kind, err)
	} else {
		stop := l.keepAlive(m)
		o = l.decide(ctx, it)
		stop()
	}
	if o.Retry == nil {
		if o.Dropped != "" {
			l.logger.Debug("item needs no work", "consumer", l.name, "run", it.Run, "offer", it.Offer, "why", o.Dropped)
		}
		err = l.ender.end(ctx, it, o)
	} else {
		err = o.Retry
	}
	switch {
	case err == nil:
		if err := m.Ack(); err != nil {
			// The item is done; a redelivery ends it the same way again.
			l.logger.Warn("ack", "consumer", l.name, "subject", m.Subject(), "err", err)
		}
	case ctx.Err() != nil:
		// Stopping hard: let another worker have it soon.
		_ = m.NakWithDelay(nakBase)
	case it.Delivery >= l.maxDeliver:
		gerr := retry.Do(ctx, retry.Policy{Name: store.RetryName}, func(ctx context.Context) error {
			return l.ender.giveUp(ctx, it, fmt.Errorf("gave up after %d deliveries: %w", it.Delivery, err))
		}, nil)
		if gerr != nil {
			l.logger.Error("could not record a failed item; the run will stall until the watchdog reports it", "consumer", l.name, "subject", m.Subject(), "err", gerr)
			_ = m.Nak()
			return
		}
		_ = m.Term()
	default:
		d := nakDelay(it.Delivery)
		l.logger.Warn("item failed; will retry", "consumer", l.name, "run", it.Run, "offer", it.Offer, "delivery", it.Delivery, "retry_in", d.Round(time.Millisecond).String(), "err", err)
		_ = m.NakWithDelay(d)
	}
}

// decide hands it to the stage with its run. An item of a run that is
// over (its sync started, or it was abandoned) is dropped: its stray
// redeliveries must not touch the board any more, above all once a later
// run owns it. So is an item of an unknown run (older than the retention,
// or never started).
func (l *consumeLoop) decide(ctx context.Context, it *Item) Outcome {
	if l.runs.isFinished(it.Run) {
		return Outcome{Dropped: "its run is finished"}
	}
	run, err := l.runs.get(ctx, it.Run)
	switch {
	case errors.Is(err, rs.ErrUnknownRun):
		l.logger.Warn("item of an unknown run; dropped", "consumer", l.name, "run", it.Run, "offer", it.Offer)
		return Outcome{Dropped: "its run is unknown"}
	case err != nil:
		return retryLater(err)
	}
	// Its calls to the APIs wait their turn at the rate limit with its
	// run's: a fairshare.Gate shares the quota among the runs.
	ctx = fairshare.WithFlow(ctx, it.Run, run.spec.weight())
	return l.handle(ctx, run, it)
}

// keepAlive tells the server, every third of the ack wait, that the message
// is still being worked on, so that slow work is not handed to another
// worker. The returned func stops it and waits for its goroutine.
func (l *consumeLoop) keepAlive(m jetstream.Msg) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(l.ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func nakDelay(delivered int) time.Duration {
	d := nakBase << min(delivered-1, 10)
	if d > nakMax || d <= 0 {
		d = nakMax
	}
	// ±25 % so that items failed together do not come back together.
	return d*3/4 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// maxDeliveriesAdvisory is what the server publishes when a message used up
// its deliveries without an ack: the worker holding it died on its last try.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// watchMaxDeliveries ends, through the ender's giveUp, the items whose last
// delivery died with its worker, so that their run can still complete: the
// items of the stage's consumers of every run (consumer is the stage's
// prefix). One replica of each stage handles each advisory (a queue
// group). The
// subscription lives until ctx ends or it is unsubscribed; its callbacks run
// on the connection's goroutine.
func watchMaxDeliveries(ctx context.Context, nc *nats.Conn, stream jetstream.Stream, streamName, consumer string, e *ender, logger *slog.Logger) (*nats.Subscription, error) {
	subject := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + streamName + ".*"
	return nc.QueueSubscribe(subject, "pulljobs-"+consumer, func(msg *nats.Msg) {
		var a maxDeliveriesAdvisory
		if err := json.Unmarshal(msg.Data, &a); err != nil {
			logger.Error("max deliveries advisory", "err", err)
			return
		}
		if _, ours := rs.RunOfConsumer(consumer, a.Consumer); !ours {
			return // another stage's, or another reader's
		}
		raw, err := stream.GetMsg(ctx, a.StreamSeq)
		if err != nil {
			logger.Error("max deliveries: read the message", "stream", streamName, "seq", a.StreamSeq, "err", err)
			return
		}
		it, err := itemOf(raw.Subject, raw.Header, raw.Data, int(a.Deliveries))
		if err == nil {
			err = fmt.Errorf("no worker acknowledged it in %d deliveries (a worker died while holding it)", a.Deliveries)
		}
		if err := e.giveUp(ctx, it, err); err != nil {
			logger.Error("max deliveries: record the failure", "subject", raw.Subject, "err", err)
		}
	})
}
