package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"go.opentelemetry.io/otel/codes"
)

// formatterStage applies each run's format and logics to its offers, and
// publishes the jobs, or records the discard or the failure.
type formatterStage struct {
	p    *Pipeline
	runs *runCache
}

func (f *formatterStage) handle(ctx context.Context, m jetstream.Msg) error {
	run := runOfSubject(m.Subject())
	offer := m.Headers().Get(hdrOfferID)
	if f.runs.isFinished(run) {
		return nil
	}
	info, err := f.runs.get(ctx, run)
	if errors.Is(err, ErrUnknownRun) {
		f.p.logger.Warn("offer of an unknown run; dropped", "run", run, "offer", offer)
		return nil
	}
	if err != nil {
		return err
	}
	f.p.hb.touch(info.spec.BoardKey, run)
	if redelivered(m) {
		if done, err := f.p.t.hasRecord(ctx, run, offer); err != nil || done {
			return err
		}
	}
	ctx, sp := span(extract(ctx, m.Headers()), "pulljobs.format", run, offer)
	defer sp.End()

	chain, err := info.compiled()
	if err != nil {
		// This worker lacks what the run needs (a Go format registered in
		// another binary): another replica may have it.
		return fmt.Errorf("compile the run's format on this worker: %w", err)
	}
	job, outcome, err := chain.Apply(francetravail.Offer(m.Data()))
	switch outcome {
	case format.Kept:
		b, err := hrflow.AppendJSON(nil, job)
		if err != nil {
			return f.fail(ctx, run, offer, m.Data(), FormatFailure, fmt.Errorf("encode job: %w", err))
		}
		out := nats.NewMsg(jobsPrefix + run)
		out.Header.Set(hdrOfferID, offer)
		out.Header.Set(jetstream.MsgIDHeader, msgID(run, offer))
		inject(ctx, out.Header)
		out.Data = b
		if _, err := f.p.js.PublishMsg(ctx, out); err != nil {
			return fmt.Errorf("publish job %s of run %s: %w", offer, run, err)
		}
	case format.Discarded:
		if err := f.p.t.record(ctx, run, Record{Offer: offer, State: Discarded, Stage: FormatterConsumer}); err != nil {
			return err
		}
	case format.FormatFailed:
		sp.SetStatus(codes.Error, err.Error())
		if err := f.fail(ctx, run, offer, m.Data(), FormatFailure, err); err != nil {
			return err
		}
	case format.LogicsFailed:
		sp.SetStatus(codes.Error, err.Error())
		if err := f.fail(ctx, run, offer, m.Data(), LogicsFailure, err); err != nil {
			return err
		}
	}
	f.p.counts.formatted.Add(1)
	return nil
}

// fail ends an item as failed, with a copy on the dead-letter stream.
func (f *formatterStage) fail(ctx context.Context, run, offer string, data []byte, kind string, cause error) error {
	reason := cause.Error()
	var ae *format.ApplyError
	if errors.As(cause, &ae) {
		reason = ae.Message()
	}
	return f.p.fail(ctx, run, offer, FormatterConsumer, data, Record{Offer: offer, State: Failed, Failure: kind, Reason: reason, Stage: FormatterConsumer})
}

func (f *formatterStage) giveUp(ctx context.Context, subject string, h nats.Header, data []byte, err error) error {
	run, offer := runOfSubject(subject), h.Get(hdrOfferID)
	return f.fail(ctx, run, offer, data, FormatFailure, err)
}

func redelivered(m jetstream.Msg) bool {
	meta, err := m.Metadata()
	return err != nil || meta.NumDelivered > 1
}
