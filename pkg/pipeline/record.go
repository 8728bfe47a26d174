package pipeline

import (
	"time"

	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// State is how an item of a run ended. Every fetched offer gets one final
// record, written by the stage that ends it.
type State string

// The final states of an item.
const (
	Written   State = "written"   // created, updated or unarchived on the board
	Skipped   State = "skipped"   // on the board already and left as it is (unchanged, or update_content off)
	Discarded State = "discarded" // dropped by a logic
	Failed    State = "failed"    // a fetch, format, logics or write failure
)

// Failure kinds, named as the report's counters.
const (
	// PublishFailure: the item could not be carried to the next stage for a
	// reason no retry cures (an offer or job too large for NATS even
	// compressed). Its job is kept on the board, like any failed item's.
	PublishFailure = "publish_failure"
	FormatFailure  = "format_failure"
	LogicsFailure  = "logics_failure"
	WriteFailure   = "write_failure"
)

// Record is the final record of one item, as stored on
// pulljobs.records.<run>. It is a wire format kept for the retention.
type Record struct {
	// Offer is the offer id, which is the job's reference.
	Offer string `json:"offer"`
	// State is how the item ended.
	State State `json:"state"`
	// Action says what was done on the board (created, updated, unarchived,
	// unchanged, skipped), for Written and Skipped.
	Action hrflow.Action `json:"action,omitempty"`
	// Failure is one of the failure kinds, for State Failed.
	Failure string `json:"failure,omitempty"`
	// Reason says why the item failed or which logic discarded it.
	Reason string `json:"reason,omitempty"`
	// ParsingFailure is set when enrichment failed and the job was created
	// without it.
	ParsingFailure string `json:"parsing_failure,omitempty"`
	// Planned marks a dry run's record: what would have been done.
	Planned bool `json:"planned,omitempty"`
	// Stage names the stage that ended the item (fetcher, formatter, pusher).
	Stage string `json:"stage"`
	// At is when the record was written (UTC).
	At time.Time `json:"at"`
}

// onBoard reports whether the record proves the job is on the board after
// the run (sync guard 3).
func (r Record) onBoard() bool { return r.State == Written || r.State == Skipped }

// keepsJob reports whether sync must leave the job of this record alone:
// pushed jobs, and live offers that failed through our own fault.
func (r Record) keepsJob() bool { return r.State != Discarded }

// outcome names the record in metrics: the action for a job on the board,
// the state or failure kind otherwise.
func (r Record) outcome() string {
	switch {
	case r.State == Failed:
		return "failed"
	case r.Action != "":
		return string(r.Action)
	}
	return string(r.State)
}
