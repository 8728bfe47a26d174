package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
)

// formatOffer is the formatter stage: it applies the run's format and
// logics to the offer, and passes a kept job on to the pushers, or ends the
// item (discarded, or failed with the format's or logic's message). It
// needs nothing but the item: a redelivered offer is formatted again, and
// the job published again is harmless (the pusher finds it done).
func formatOffer(ctx context.Context, run *runInfo, it *Item) Outcome {
	chain, err := run.compiled()
	if err != nil {
		// This worker lacks what the run needs (a Go format registered in
		// another binary): another replica may have it.
		return retryLater(fmt.Errorf("compile the run's format on this worker: %w", err))
	}
	job, outcome, err := chain.Apply(francetravail.Offer(it.Data))
	switch outcome {
	case format.Kept:
		// Where a job lives is the pusher's to say, from the board: a
		// format's key or board_key would be ignored (hrflow.Client.Put).
		delete(job, "key")
		delete(job, "board_key")
		b, err := hrflow.AppendJSON(make([]byte, 0, jobSizeHint(len(it.Data))), job)
		if err != nil {
			return formatFailed(rs.FormatFailure, fmt.Errorf("encode job: %w", err))
		}
		next := nats.NewMsg(rs.JobsSubjectPrefix + it.Run)
		next.Header.Set(rs.HeaderOfferID, it.Offer)
		inject(ctx, next.Header)
		next.Data = b
		return Outcome{Next: next}
	case format.Discarded:
		return ended(rs.Record{State: rs.Discarded})
	case format.FormatFailed:
		return formatFailed(rs.FormatFailure, err)
	}
	return formatFailed(rs.LogicsFailure, err)
}

// jobSizeHint is the buffer to encode a job formatted from an offer of
// offerSize bytes in: a formatted job is rarely larger than its offer (the
// real offers' jobs measure 0.25 to 1.05 of them), and growing the buffer
// from nothing would allocate it about twice over.
func jobSizeHint(offerSize int) int { return offerSize + offerSize/4 }

// formatFailed ends an item failed with the format's or logic's message.
func formatFailed(kind rs.FailureKind, cause error) Outcome {
	reason := cause.Error()
	var ae *format.ApplyError
	if errors.As(cause, &ae) {
		reason = ae.Message()
	}
	return ended(rs.Record{State: rs.Failed, Failure: kind, Reason: reason})
}
