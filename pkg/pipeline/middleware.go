package pipeline

import (
	"context"
	"errors"
	"log/slog"

	"go.opentelemetry.io/otel/codes"
)

// The cross-cutting steps around a stage, in the order the workers compose
// them (see RunFormatter and RunPusher).

// skipFinished drops the items of a run that is over (its sync started, or
// it was abandoned): their stray redeliveries must not touch the board any
// more, above all once a later run owns it.
func skipFinished(runs *runCache) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, it *Item) Outcome {
			if runs.isFinished(it.Run) {
				return Outcome{Dropped: "its run is finished"}
			}
			return next(ctx, it)
		}
	}
}

// requireRun gives the item its run's spec, or drops an item whose run is
// unknown (older than the retention, or never started).
func requireRun(runs *runCache, logger *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, it *Item) Outcome {
			info, err := runs.get(ctx, it.Run)
			if errors.Is(err, ErrUnknownRun) {
				logger.Warn("item of an unknown run; dropped", "run", it.Run, "offer", it.Offer)
				return Outcome{Dropped: "its run is unknown"}
			}
			if err != nil {
				return retryLater(err)
			}
			it.info = info
			return next(ctx, it)
		}
	}
}

// touchLease tells the heartbeat that this process works on the run, so
// that it keeps the run's board lease alive.
func touchLease(hb *heartbeat) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, it *Item) Outcome {
			hb.touch(it.info.spec.BoardKey, it.Run)
			return next(ctx, it)
		}
	}
}

// requireLease drops the items of a run whose board a later run took (it
// looked dead): it must not write to that board any more.
func requireLease(hb *heartbeat) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, it *Item) Outcome {
			if hb.isLost(it.Run) {
				return Outcome{Dropped: "its run lost its board to another run"}
			}
			return next(ctx, it)
		}
	}
}

// traced runs the stage in a span named name, a child of the span the
// message's trace context names (the offer's trace).
func traced(name string) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, it *Item) Outcome {
			ctx, sp := span(extract(ctx, it.Header), name, it.Run, it.Offer)
			defer sp.End()
			o := next(ctx, it)
			switch {
			case o.Retry != nil:
				sp.SetStatus(codes.Error, o.Retry.Error())
			case o.Record != nil && o.Record.State == Failed:
				sp.SetStatus(codes.Error, o.Record.Reason)
			}
			return o
		}
	}
}
