package pipeline

import (
	"time"

	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// State is how an item of a run ended. Every fetched offer gets exactly one
// final record, written by the stage that ends it.
type State string

// The final states of an item.
const (
	Written   State = "written"   // created, updated or unarchived on the board
	Skipped   State = "skipped"   // already on the board, update_content off
	Discarded State = "discarded" // dropped by a logic
	Failed    State = "failed"    // format, logics or write failure
)

// Failure kinds, named as the report's counters.
const (
	FormatFailure = "format_failure"
	LogicsFailure = "logics_failure"
	WriteFailure  = "write_failure"
)

// Record is the final record of one item.
type Record struct {
	Offer  string        `json:"offer"` // the offer id, which is the job's reference
	State  State         `json:"state"`
	Action hrflow.Action `json:"action,omitempty"` // for written and skipped
	// Failure is one of the failure kinds, for State Failed.
	Failure string `json:"failure,omitempty"`
	// Reason says why the item failed or which logic discarded it.
	Reason string `json:"reason,omitempty"`
	// ParsingFailure is set when enrichment failed and the job was created
	// without it.
	ParsingFailure string `json:"parsing_failure,omitempty"`
	// Planned marks a dry run's record: what would have been done.
	Planned bool      `json:"planned,omitempty"`
	Stage   string    `json:"stage"`
	At      time.Time `json:"at"`
}

// onBoard reports whether the record proves the job is on the board after
// the run (sync guard 3).
func (r Record) onBoard() bool { return r.State == Written || r.State == Skipped }

// keepsJob reports whether sync must leave the job of this record alone:
// pushed jobs, and live offers that failed through our own fault.
func (r Record) keepsJob() bool { return r.State != Discarded }
