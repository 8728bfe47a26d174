package runstatus

import "time"

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

// Action is what was done to an item's job on the board; the names are
// the report's counters.
type Action string

// The actions of a record.
const (
	Created    Action = "created"
	Updated    Action = "updated"
	Unarchived Action = "unarchived"
	// Unchanged: a live job holding what pulljobs last wrote, left alone
	// with update_content on (no call made).
	Unchanged Action = "unchanged"
	// SkippedJob: a live job left alone with update_content off.
	SkippedJob Action = "skipped"
)

// FailureKind says at which step an item failed; the names are the
// report's counters.
type FailureKind string

// Failure kinds.
const (
	// PublishFailure: the item could not be carried to the next stage for
	// a reason no retry cures (an offer or job too large for NATS even
	// compressed). Its job is kept on the board, like any failed item's.
	PublishFailure FailureKind = "publish_failure"
	FormatFailure  FailureKind = "format_failure"
	LogicsFailure  FailureKind = "logics_failure"
	WriteFailure   FailureKind = "write_failure"
	ArchiveFailure FailureKind = "archive_failure"
)

// Stage names the stage that ended an item, on records and dead letters.
type Stage string

// The stages.
const (
	FetcherStage   Stage = "fetcher"
	FormatterStage Stage = FormatterConsumer
	PusherStage    Stage = PusherConsumer
)

// Record is the final record of one item, as stored on
// pulljobs.records.<run>. It is a wire format kept for the retention. An
// item may get more than one record (a redelivery after a crash): the
// first on the subject is the item's.
type Record struct {
	// Offer is the offer id, which is the job's reference.
	Offer string `json:"offer"`
	// State is how the item ended.
	State State `json:"state"`
	// Action says what was done on the board, for Written and Skipped.
	Action Action `json:"action,omitempty"`
	// Failure is the failure kind, for State Failed.
	Failure FailureKind `json:"failure,omitempty"`
	// Reason says why the item failed or which logic discarded it.
	Reason string `json:"reason,omitempty"`
	// ParsingFailure is set when enrichment failed and the job was created
	// without it.
	ParsingFailure string `json:"parsing_failure,omitempty"`
	// Planned marks a dry run's record: what would have been done.
	Planned bool `json:"planned,omitempty"`
	// Throttled counts the HrFlow calls of the delivery that wrote the
	// job that HrFlow throttled (429, 503); Rate is the most calls per
	// second the HrFlow rate limit allowed them (0: no limit).
	Throttled int     `json:"throttled,omitempty"`
	Rate      float64 `json:"rate,omitempty"`
	// Stage names the stage that ended the item.
	Stage Stage `json:"stage"`
	// At is when the record was written (UTC).
	At time.Time `json:"at"`
}

// OnBoard reports whether the record proves the job is on the board after
// the run (sync's guard no_job_on_board).
func (r Record) OnBoard() bool { return r.State == Written || r.State == Skipped }

// KeepsJob reports whether sync must leave the job of this record alone:
// pushed jobs, and live offers that failed through our own fault.
func (r Record) KeepsJob() bool { return r.State != Discarded }

// Outcome names the record in metrics: the action for a job on the board,
// the state or failure kind otherwise.
func (r Record) Outcome() string {
	switch {
	case r.State == Failed:
		return string(Failed)
	case r.Action != "":
		return string(r.Action)
	}
	return string(r.State)
}

// Seal is the fetcher's last word on a run, stored as <run>.seal: how many
// items to expect, and whether the fetch was complete. It is written once,
// after every offer's publish was acknowledged.
type Seal struct {
	// Expected is the number of items of the run: distinct offers, each of
	// which gets exactly one final record (counted by offer id).
	Expected int `json:"expected"`
	// ReadSuccess counts the offers read from France Travail (or from the
	// replayed run), duplicates removed.
	ReadSuccess int `json:"read_success"`
	// ReadFailure is set when the search failed before its end; ReadError
	// is the failure. Sync is then refused.
	ReadFailure bool   `json:"read_failure"`
	ReadError   string `json:"read_error,omitempty"`
	// Truncated is set when the API's result cap hid offers that no split
	// of the query could reach; Unreached counts them. Sync is refused.
	Truncated bool `json:"truncated"`
	Unreached int  `json:"unreached,omitempty"`
	// Total is the number of offers the API announced for the query.
	Total int `json:"total"`
	// Duplicates counts the offers the search returned more than once
	// (removed before publishing).
	Duplicates int `json:"duplicates,omitempty"`
	// Windows and Requests count the creation-date windows the query was
	// split into and the search calls made.
	Windows  int `json:"windows,omitempty"`
	Requests int `json:"requests,omitempty"`
	// StartedAt is when the fetch started, SealedAt when it was sealed (UTC).
	StartedAt time.Time `json:"started_at"`
	SealedAt  time.Time `json:"sealed_at"`
}

// Lease says which run holds a board, stored under the board's key in the
// leases bucket. One run per board at a time: two runs must never
// interleave their syncs.
type Lease struct {
	Run      string    `json:"run_id"`
	SpecHash string    `json:"spec_hash"`
	Holder   string    `json:"holder"`
	Acquired time.Time `json:"acquired_at"`
	// Renewed is the last sign of life of any process working on the run.
	Renewed time.Time `json:"renewed_at"`
}
