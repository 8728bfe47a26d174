package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/retry"
	"go.opentelemetry.io/otel/codes"
)

// Board is what the pusher and sync stages need of HrFlow; *hrflow.Client
// implements it. The client carries the rate limit shared by all replicas.
type Board interface {
	Upsert(ctx context.Context, boardKey string, job hrflow.Job, opts hrflow.UpsertOptions) (hrflow.UpsertResult, error)
	Jobs(ctx context.Context, boardKey string, opts hrflow.ListOptions) iter.Seq2[hrflow.JobRef, error]
	SetArchivedKey(ctx context.Context, boardKey, key string, archived bool) error
}

// pusherStage upserts each job into its run's board and records the outcome.
type pusherStage struct {
	p     *Pipeline
	board Board
	runs  *runCache
}

func (s *pusherStage) handle(ctx context.Context, m jetstream.Msg) error {
	run := runOfSubject(m.Subject())
	offer := m.Headers().Get(hdrOfferID)
	if s.runs.isFinished(run) {
		return nil
	}
	info, err := s.runs.get(ctx, run)
	if errors.Is(err, ErrUnknownRun) {
		s.p.logger.Warn("job of an unknown run; dropped", "run", run, "offer", offer)
		return nil
	}
	if err != nil {
		return err
	}
	spec := info.spec
	s.p.hb.touch(spec.BoardKey, run)
	if s.p.hb.isLost(run) {
		s.p.logger.Warn("job of a run that lost its board; dropped", "run", run, "offer", offer)
		return nil
	}
	if redelivered(m) {
		if done, err := s.p.t.hasRecord(ctx, run, offer); err != nil || done {
			return err
		}
	}
	ctx, sp := span(extract(ctx, m.Headers()), "pulljobs.push", run, offer)
	defer sp.End()

	var job hrflow.Job
	if err := json.Unmarshal(m.Data(), &job); err != nil {
		return s.fail(ctx, run, offer, m.Data(), fmt.Errorf("undecodable job: %w", err))
	}
	res, err := s.board.Upsert(ctx, spec.BoardKey, job, hrflow.UpsertOptions{
		UpdateContent:     spec.UpdateContent,
		EnrichWithParsing: spec.EnrichWithParsing,
		DryRun:            spec.DryRun,
	})
	if err != nil {
		sp.SetStatus(codes.Error, err.Error())
		if retry.IsRetryable(err) || ctx.Err() != nil {
			return err // redelivered later; the last try ends it failed
		}
		return s.fail(ctx, run, offer, m.Data(), err)
	}
	rec := Record{Offer: offer, State: Written, Action: res.Action, Planned: res.Planned, Stage: PusherConsumer, ParsingFailure: res.ParsingError}
	if res.ParsingFailed && rec.ParsingFailure == "" {
		rec.ParsingFailure = "text parsing failed"
	}
	if res.Action == hrflow.ActionSkipped {
		rec.State = Skipped
	}
	if err := s.p.t.record(ctx, run, rec); err != nil {
		return err
	}
	s.p.counts.pushed.Add(1)
	return nil
}

func (s *pusherStage) fail(ctx context.Context, run, offer string, data []byte, cause error) error {
	err := s.p.fail(ctx, run, offer, PusherConsumer, data, Record{Offer: offer, State: Failed, Failure: WriteFailure, Reason: cause.Error(), Stage: PusherConsumer})
	if err == nil {
		s.p.counts.pushed.Add(1)
	}
	return err
}

func (s *pusherStage) giveUp(ctx context.Context, subject string, h nats.Header, data []byte, err error) error {
	return s.fail(ctx, runOfSubject(subject), h.Get(hdrOfferID), data, err)
}
