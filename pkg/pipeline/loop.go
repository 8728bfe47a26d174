package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
	// pullExpiry is how long one pull request waits at the server, and
	// pullHeartbeat how often the server says it still holds it. The client
	// notices a pull that went astray only when two heartbeats are missing:
	// the stage stalls that long, so the heartbeat is well under nats.go's
	// default of half the expiry.
	pullExpiry    = 5 * time.Second
	pullHeartbeat = time.Second
)

// consumeLoop runs a durable pull consumer with bounded concurrency: it
// hands each message to its handler and carries the outcome out (item.go).
// It owns concurrency worker goroutines and stops when its context ends:
// it stops pulling, finishes the messages it holds (up to drainTimeout),
// and leaves the rest to be redelivered to another worker.
type consumeLoop struct {
	name         string
	cons         jetstream.Consumer
	concurrency  int
	ackWait      time.Duration
	maxDeliver   int
	drainTimeout time.Duration
	handle       Handler
	// runs knows the runs the items belong to: decide drops the items of a
	// finished or unknown run, and hands the others to handle with theirs.
	runs   *runCache
	ender  *ender
	logger *slog.Logger
	// held, when set, is the backpressure of the next stage (backlog.go):
	// while it holds, the loop stops pulling, once the messages it has
	// pulled are handed out, so that none waits on the hold.
	held *backlog
}

func (l *consumeLoop) run(ctx context.Context) error {
	// In-flight work outlives ctx: a graceful stop finishes it.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	d := l.startWorkers(work)
	err := l.consume(ctx, d)
	close(d.msgs)
	done := make(chan struct{})
	var waiter sync.WaitGroup
	waiter.Go(func() { d.wg.Wait(); close(done) })
	defer waiter.Wait()
	select {
	case <-done:
	case <-time.After(l.drainTimeout):
		l.logger.Warn("stopping with items in flight; they will be redelivered", "consumer", l.name, "drain_timeout", l.drainTimeout)
		cancelWork()
	}
	return err
}

// consume pulls messages for d until ctx ends, through the next stage's
// holds. It fails only when the consumer cannot be read at all.
func (l *consumeLoop) consume(ctx context.Context, d *dispatcher) error {
	for first := true; ctx.Err() == nil; first = false {
		if err := l.held.wait(ctx); err != nil {
			return nil
		}
		if err := l.pull(ctx, d); err != nil {
			if first {
				return fmt.Errorf("%s: consume: %w", l.name, err)
			}
			// A NATS fail-over between two holds: try again.
			l.logger.Warn("pull messages", "consumer", l.name, "err", err)
			_ = retry.Sleep(ctx, pollRetry)
		}
	}
	return nil
}

// dispatcher hands messages to l.concurrency workers, which process them
// under work until msgs is closed; wg waits for them.
//
// The workers live as long as the loop, rather than a goroutine a message:
// each keeps the stack its first message grew, where a fresh goroutine
// would copy its stack to a larger one for every message.
type dispatcher struct {
	msgs chan jetstream.Msg // unbuffered: a send waits for a free worker
	wg   sync.WaitGroup
}

// startWorkers starts the loop's workers; run closes d.msgs to stop them.
func (l *consumeLoop) startWorkers(work context.Context) *dispatcher {
	d := &dispatcher{msgs: make(chan jetstream.Msg)}
	for range l.concurrency {
		d.wg.Go(func() {
			for m := range d.msgs {
				l.process(work, m)
			}
		})
	}
	return d
}

// pull consumes until ctx ends or the next stage holds, and hands out every
// message it pulled before returning: an iterator's buffer is drained, not
// dropped, so that no message waits out its ack wait in it.
func (l *consumeLoop) pull(ctx context.Context, d *dispatcher) error {
	// A buffer no larger than what the workers can start at once: a buffered
	// message is not being worked on, and must not outlive its ack wait.
	it, err := l.cons.Messages(jetstream.PullMaxMessages(l.concurrency),
		jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return err
	}
	var stopper sync.WaitGroup
	stopped := make(chan struct{})
	defer stopper.Wait()
	defer close(stopped)
	stopper.Go(func() { // stops the pulling when ctx ends, or when pull returns
		select {
		case <-ctx.Done():
			it.Drain()
		case <-stopped:
			it.Stop()
		}
	})
	for {
		m, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return nil
		}
		if err != nil {
			if ctx.Err() == nil {
				l.logger.Warn("pull messages", "consumer", l.name, "err", err)
				_ = retry.Sleep(ctx, pollRetry)
			}
			continue
		}
		select {
		case d.msgs <- m:
		case <-ctx.Done():
			// Stopping, every worker busy: the item goes back now rather than
			// wait for one, which may wait for what has stopped (a run's
			// index whose builder was this process).
			_ = m.Nak()
			continue
		}
		if l.held.holding() {
			it.Drain()
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
// delivery died with its worker, so that their run can still complete. One
// replica of each stage handles each advisory (a queue group). The
// subscription lives until ctx ends or it is unsubscribed; its callbacks run
// on the connection's goroutine.
func watchMaxDeliveries(ctx context.Context, nc *nats.Conn, stream jetstream.Stream, streamName, consumer string, e *ender, logger *slog.Logger) (*nats.Subscription, error) {
	subject := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + streamName + "." + consumer
	return nc.QueueSubscribe(subject, "pulljobs-"+consumer, func(msg *nats.Msg) {
		var a maxDeliveriesAdvisory
		if err := json.Unmarshal(msg.Data, &a); err != nil {
			logger.Error("max deliveries advisory", "err", err)
			return
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
