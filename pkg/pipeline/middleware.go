package pipeline

import (
	"context"

	"go.opentelemetry.io/otel/codes"

	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
)

// The cross-cutting steps around a stage, in the order the workers compose
// them (see RunFormatter and RunPusher). Before any of them, the consume
// loop drops the items of finished and unknown runs, and reads the run's
// spec (consumeLoop.decide): a step always has its run.

// touchLease tells the heartbeat that this process works on the run, so
// that it keeps the run's board lease alive.
func touchLease(hb *heartbeat) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, run *runInfo, it *Item) Outcome {
			hb.touch(run.spec.BoardKey, it.Run)
			return next(ctx, run, it)
		}
	}
}

// requireLease drops the items of a run whose board a later run took (it
// looked dead): it must not write to that board any more.
func requireLease(hb *heartbeat) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, run *runInfo, it *Item) Outcome {
			if hb.isLost(it.Run) {
				return Outcome{Dropped: "its run lost its board to another run"}
			}
			return next(ctx, run, it)
		}
	}
}

// traced runs the stage in a span named name, a child of the span the
// message's trace context names (the offer's trace).
func traced(name string) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, run *runInfo, it *Item) Outcome {
			ctx, sp := span(extract(ctx, it.Header), name, it.Run, it.Offer)
			defer sp.End()
			o := next(ctx, run, it)
			switch {
			case o.Retry != nil:
				sp.SetStatus(codes.Error, o.Retry.Error())
			case o.Record != nil && o.Record.State == rs.Failed:
				sp.SetStatus(codes.Error, o.Record.Reason)
			}
			return o
		}
	}
}
