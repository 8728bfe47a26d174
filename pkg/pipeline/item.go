package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/payload"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
)

// This file is how one item ends. A stage (the formatter, the pusher) is a
// Handler: it looks at one item and returns an Outcome, doing only its own
// work on the way (formatting; writing to HrFlow). The cross-cutting steps
// around it are Middleware (middleware.go). The consume loop (loop.go)
// then carries the outcome out, in end, in this order:
//
//  1. publish the item to the next stage (Outcome.Next);
//  2. for a failed item, a copy on the dead-letter stream;
//  3. the item's final record (Outcome.Record);
//  4. the acknowledgement (in loop.process).
//
// Each step is retried through NATS fail-overs; if one still fails, the
// message is not acknowledged and comes back later, and the steps done
// already are harmless to do again: a downstream stage is idempotent, and
// readers take an item's first record. A message that used up its
// deliveries ends failed through giveUp, which runs the same end.

// Item is one message of a run, as a stage sees it: an offer for the
// formatter, a job for the pusher.
type Item struct {
	Run   string
	Offer string // the offer id, which is the job's reference
	// Data is the payload, decompressed.
	Data   []byte
	Header nats.Header
	// Delivery counts the deliveries of the message: 1 the first time.
	Delivery int
}

// Outcome is what a stage decided for an item. The zero Outcome acks the
// item and does nothing else (a message that needs no work).
type Outcome struct {
	// Next is published to the next stage.
	Next *nats.Msg
	// Record ends the item. A Failed record also sends the item's payload
	// to the dead-letter stream.
	Record *rs.Record
	// Retry asks for a later delivery; nothing else is done. On the last
	// allowed delivery the item ends failed instead, with this cause.
	Retry error
	// Dropped says why an item needs no work (its run is finished,
	// unknown…), for the log.
	Dropped string
}

// retryLater is the Outcome of an item to try again later.
func retryLater(err error) Outcome { return Outcome{Retry: err} }

// ended is the Outcome of an item that ends with rec.
func ended(rec rs.Record) Outcome { return Outcome{Record: &rec} }

// failed is the Outcome of an item that fails for good.
func failed(stage rs.Stage, kind rs.FailureKind, cause error) Outcome {
	return ended(rs.Record{State: rs.Failed, Failure: kind, Reason: cause.Error(), Stage: stage})
}

// Handler is a stage: it decides what becomes of one item of run, a run
// the worker knows (its spec read, not finished). It must be safe for
// concurrent use; ctx ends when the worker stops hard.
type Handler func(ctx context.Context, run *runInfo, it *Item) Outcome

// Middleware wraps a Handler with a cross-cutting step.
type Middleware func(Handler) Handler

// chain applies mws to h, the first outermost.
func chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// ender carries out outcomes: the pipeline's I/O for one item.
type ender struct {
	ledger *ledger
	stage  rs.Stage       // on records and dead letters
	kind   rs.FailureKind // of an item that used up its deliveries
	carry  *payload.Carrier
	logger *slog.Logger
	done   *atomic.Int64 // counts the items passed on or ended; nil: none
}

// end carries out o for it (steps 1 to 3 above). An error means the
// message must come back later.
func (e *ender) end(ctx context.Context, it *Item, o Outcome) error {
	if o.Next != nil {
		err := e.carry.Publish(ctx, o.Next)
		var tooLarge *payload.TooLargeError
		switch {
		case errors.As(err, &tooLarge):
			o = failed(e.stage, rs.PublishFailure, err)
		case err != nil:
			return fmt.Errorf("publish %s of run %s to the next stage: %w", it.Offer, it.Run, err)
		}
	}
	if e.done != nil {
		defer e.done.Add(1)
	}
	if o.Record == nil {
		return nil
	}
	rec := *o.Record
	rec.Offer = it.Offer
	if rec.Stage == "" {
		rec.Stage = e.stage
	}
	if rec.State == rs.Failed {
		if err := e.deadLetter(ctx, it, rec); err != nil {
			return err
		}
	}
	if err := e.ledger.record(ctx, it.Run, rec); err != nil {
		return err
	}
	countItem(ctx, e.stage, rec.Outcome())
	return nil
}

// giveUp ends an item whose every delivery failed: err is the last failure.
func (e *ender) giveUp(ctx context.Context, it *Item, err error) error {
	return e.end(ctx, it, failed(e.stage, e.kind, err))
}

// deadLetter publishes a failed item's payload, with its stage and reason
// in headers, to pulljobs.dlq.<run>.<stage>. A payload too large even for
// that is left out, its size in a header.
func (e *ender) deadLetter(ctx context.Context, it *Item, rec rs.Record) error {
	m := nats.NewMsg(rs.DeadLetterSubjectPrefix + it.Run + "." + string(rec.Stage))
	m.Header.Set(rs.HeaderOfferID, it.Offer)
	m.Header.Set(rs.HeaderStage, string(rec.Stage))
	m.Header.Set(rs.HeaderReason, rs.OneLine(rec.Reason))
	m.Data = it.Data
	err := e.carry.Publish(ctx, m)
	var tooLarge *payload.TooLargeError
	if errors.As(err, &tooLarge) {
		m.Data = nil
		m.Header.Del(payload.HeaderEncoding)
		m.Header.Set(payload.HeaderSize, strconv.Itoa(len(it.Data)))
		err = e.carry.Publish(ctx, m)
	}
	if err != nil {
		return fmt.Errorf("dead-letter %s of run %s: %w", it.Offer, it.Run, err)
	}
	e.logger.Warn("item failed", "run", it.Run, "offer", it.Offer, "stage", rec.Stage, "failure", rec.Failure, "reason", rs.OneLine(rec.Reason))
	return nil
}

// itemOf reads the item a message carries. When its payload cannot be
// decoded, the item holds the raw payload, and the error says why: the
// item can only fail.
func itemOf(subject string, h nats.Header, data []byte, delivery int) (*Item, error) {
	payload, err := payload.Decode(h, data)
	return &Item{Run: runOfSubject(subject), Offer: h.Get(rs.HeaderOfferID), Data: payload, Header: h, Delivery: delivery}, err
}

// itemOfMsg is itemOf for a delivered message.
func itemOfMsg(m jetstream.Msg) (*Item, error) {
	delivery := 1
	if meta, err := m.Metadata(); err == nil {
		delivery = int(meta.NumDelivered)
	}
	return itemOf(m.Subject(), m.Headers(), m.Data(), delivery)
}
