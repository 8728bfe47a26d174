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
)

// Redelivery delays of an item that failed for a reason that may pass: the
// n-th failure waits about nakBase·2ⁿ⁻¹, at most nakMax.
const (
	nakBase = 2 * time.Second
	nakMax  = time.Minute
	// pollRetry is the pause after a transient error of the consumer itself.
	pollRetry = 500 * time.Millisecond
	// pullExpiry is how long one pull request waits at the server. Short,
	// because the client notices a pull that went astray only when its
	// heartbeats (half of it) stop: the pipeline then stalls that long.
	pullExpiry = 5 * time.Second
)

// handler processes one message. It returns nil when the item is done (the
// loop acks it) — including when it recorded a failure itself. Any error
// means "try again later": the loop redelivers it with a delay, and on the
// last allowed delivery calls giveUp instead.
type handler func(ctx context.Context, m jetstream.Msg) error

// giveUpFunc ends an item whose every delivery failed: it writes the
// "failed" record and the dead-letter copy. err is the last failure.
type giveUpFunc func(ctx context.Context, subject string, h nats.Header, data []byte, err error) error

// consumeLoop runs a durable pull consumer with bounded concurrency. It owns
// one goroutine per in-flight message and stops when its context ends:
// it stops pulling, finishes the messages it holds (up to drainTimeout),
// and leaves the rest to be redelivered to another worker.
type consumeLoop struct {
	name         string
	cons         jetstream.Consumer
	concurrency  int
	ackWait      time.Duration
	maxDeliver   int
	drainTimeout time.Duration
	handle       handler
	giveUp       giveUpFunc
	logger       *slog.Logger
}

func (l *consumeLoop) run(ctx context.Context) error {
	// A buffer no larger than what the workers can start at once: a buffered
	// message is not being worked on, and must not outlive its ack wait.
	it, err := l.cons.Messages(jetstream.PullMaxMessages(l.concurrency), jetstream.PullExpiry(pullExpiry))
	if err != nil {
		return fmt.Errorf("%s: consume: %w", l.name, err)
	}
	stopped := make(chan struct{})
	defer close(stopped)
	go func() { // stops the pulling when ctx ends; exits with run
		select {
		case <-ctx.Done():
			it.Drain()
		case <-stopped:
			it.Stop()
		}
	}()
	// In-flight work outlives ctx: a graceful stop finishes it.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	sem := make(chan struct{}, l.concurrency)
	var wg sync.WaitGroup
	for {
		m, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			break
		}
		if err != nil {
			if ctx.Err() == nil {
				l.logger.Warn("pull messages", "consumer", l.name, "err", err)
				_ = sleep(ctx, pollRetry)
			}
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l.process(work, m)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(l.drainTimeout):
		l.logger.Warn("stopping with items in flight; they will be redelivered", "consumer", l.name, "drain_timeout", l.drainTimeout)
		cancelWork()
		<-done
	}
	return nil
}

func (l *consumeLoop) process(ctx context.Context, m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		l.logger.Error("message without metadata", "consumer", l.name, "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	stop := l.keepAlive(m)
	err = l.handle(ctx, m)
	stop()
	switch {
	case err == nil:
		if err := m.Ack(); err != nil {
			// The item is done; a redelivery will find its record.
			l.logger.Warn("ack", "consumer", l.name, "subject", m.Subject(), "err", err)
		}
	case ctx.Err() != nil:
		// Stopping hard: let another worker have it soon.
		_ = m.NakWithDelay(nakBase)
	case int(meta.NumDelivered) >= l.maxDeliver:
		gerr := retry.Do(ctx, retry.Policy{}, func(ctx context.Context) error {
			return l.giveUp(ctx, m.Subject(), m.Headers(), m.Data(), fmt.Errorf("gave up after %d deliveries: %w", meta.NumDelivered, err))
		}, nil)
		if gerr != nil {
			l.logger.Error("could not record a failed item; the run will stall until the watchdog reports it", "consumer", l.name, "subject", m.Subject(), "err", gerr)
			_ = m.Nak()
			return
		}
		_ = m.Term()
	default:
		d := nakDelay(int(meta.NumDelivered))
		l.logger.Warn("item failed; will retry", "consumer", l.name, "subject", m.Subject(), "delivery", meta.NumDelivered, "retry_in", d.Round(time.Millisecond).String(), "err", err)
		_ = m.NakWithDelay(d)
	}
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

// watchMaxDeliveries ends, through giveUp, the items whose last delivery
// died with its worker, so that their run can still complete. One replica of
// each stage handles each advisory (a queue group). The subscription lives
// until ctx ends.
func watchMaxDeliveries(ctx context.Context, nc *nats.Conn, stream jetstream.Stream, streamName, consumer string, giveUp giveUpFunc, logger *slog.Logger) (*nats.Subscription, error) {
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
		cause := fmt.Errorf("no worker acknowledged it in %d deliveries (a worker died while holding it)", a.Deliveries)
		if err := giveUp(ctx, raw.Subject, raw.Header, raw.Data, cause); err != nil {
			logger.Error("max deliveries: record the failure", "subject", raw.Subject, "err", err)
		}
	})
}
