package runstatus

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Status is a run's outcome: the historic connector's statuses, and
// Running for a run without a report yet.
type Status string

// Statuses of a run.
const (
	StatusSuccess             Status = "success"
	StatusSuccessWithFailures Status = "success_with_failures"
	StatusFatal               Status = "fatal"
	StatusRunning             Status = "running"
)

// Trigger says what started a run.
type Trigger string

// What can start a run.
const (
	TriggerCLI      Trigger = "cli"      // a fetcher run or pulljobs run command
	TriggerRequest  Trigger = "request"  // a NATS request to pulljobs.run.<profile>
	TriggerEvent    Trigger = "event"    // a message on pulljobs.trigger.<profile>
	TriggerSchedule Trigger = "schedule" // a profile's schedule
)

// Guard names the guard that refused a sync, as the report names it.
type Guard string

// Guards that refuse a sync.
const (
	GuardDisabled   Guard = "disabled"         // target_parameters.sync is false
	GuardLeaseLost  Guard = "lease_lost"       // a later run took the board
	GuardRead       Guard = "read_failure"     // the fetch failed
	GuardTruncated  Guard = "truncated"        // the API's cap hid offers
	GuardUnreadable Guard = "board_unreadable" // the board could not be listed
	GuardNoJob      Guard = "no_job_on_board"  // no job of the run is on the board
	GuardMaxShare   Guard = "max_share"        // too large a share of the board
)

// ReasonSyncRefused is the reason of a run that succeeded but whose sync a
// guard refused.
const ReasonSyncRefused = "sync_refused"

// Events are the run's counters, in items unless said otherwise. The first
// six are the historic connector's; the rest say what happened on the
// board.
type Events struct {
	// ReadSuccess counts the offers read; ReadFailure is 1 when the search
	// failed before its end.
	ReadSuccess int `json:"read_success"`
	ReadFailure int `json:"read_failure"`
	// FormatFailure, LogicsDiscard and LogicsFailure count the offers the
	// format failed on, a logic dropped, and a logic failed on.
	FormatFailure int `json:"format_failure"`
	LogicsDiscard int `json:"logics_discard"`
	LogicsFailure int `json:"logics_failure"`
	// WriteFailure counts the jobs HrFlow refused or that failed every try.
	WriteFailure int `json:"write_failure"`
	// PublishFailure counts the items too large for NATS even compressed.
	PublishFailure int `json:"publish_failure"`
	// Created, Updated and Unarchived count the jobs written to the board.
	Created    int `json:"created"`
	Updated    int `json:"updated"`
	Unarchived int `json:"unarchived"`
	// Unchanged counts the live jobs whose content was what pulljobs last
	// wrote, left alone with update_content on (no call made).
	Unchanged int `json:"unchanged"`
	// Skipped counts the live jobs left alone with update_content off.
	Skipped int `json:"skipped"`
	// Archived counts the board's jobs sync archived; ArchiveFailure those
	// it could not.
	Archived       int `json:"archived"`
	ArchiveFailure int `json:"archive_failure"`
	// ParsingFailure counts the jobs created without enrichment because
	// text parsing failed.
	ParsingFailure int `json:"parsing_failure"`
}

// Add counts one item's final record.
func (e *Events) Add(r Record) {
	switch r.State {
	case Written, Skipped:
		switch r.Action {
		case Created:
			e.Created++
		case Updated:
			e.Updated++
		case Unarchived:
			e.Unarchived++
		case Unchanged:
			e.Unchanged++
		default:
			e.Skipped++
		}
	case Discarded:
		e.LogicsDiscard++
	case Failed:
		switch r.Failure {
		case FormatFailure:
			e.FormatFailure++
		case LogicsFailure:
			e.LogicsFailure++
		case PublishFailure:
			e.PublishFailure++
		default:
			e.WriteFailure++
		}
	}
	if r.ParsingFailure != "" {
		e.ParsingFailure++
	}
}

// Failures counts the failures among the counters: items that failed at
// any stage, failed archives and enrichments.
func (e Events) Failures() int {
	return e.ReadFailure + e.FormatFailure + e.LogicsFailure + e.WriteFailure + e.PublishFailure + e.ArchiveFailure + e.ParsingFailure
}

// Status applies the historic connector's rules to the counters and returns
// the status and, for a fatal run, the reason.
func (e Events) Status() (status Status, reason string) {
	formatted := e.ReadSuccess - e.FormatFailure - e.PublishFailure
	reachedWrite := formatted - e.LogicsFailure - e.LogicsDiscard
	switch {
	case e.ReadSuccess == 0 && e.ReadFailure > 0:
		return StatusFatal, "read_failure"
	case e.ReadSuccess > 0 && e.FormatFailure == e.ReadSuccess:
		return StatusFatal, string(FormatFailure)
	case formatted > 0 && e.LogicsFailure == formatted:
		return StatusFatal, string(LogicsFailure)
	case reachedWrite > 0 && e.WriteFailure == reachedWrite:
		return StatusFatal, string(WriteFailure)
	case e.Failures() > 0:
		return StatusSuccessWithFailures, ""
	}
	return StatusSuccess, ""
}

// SyncReport says whether sync archived anything, and if not, why.
type SyncReport struct {
	// Performed is set when sync archived what the run did not keep.
	Performed bool `json:"performed"`
	// Archived counts the jobs archived.
	Archived int `json:"archived"`
	// Guard names the guard that refused the sync, and RefusedReason says
	// why in words.
	Guard         Guard  `json:"guard,omitempty"`
	RefusedReason string `json:"refused_reason,omitempty"`
	// WouldArchive is what a dry run, or a refused sync, would have archived.
	WouldArchive int `json:"would_archive,omitempty"`
}

// Refused reports a sync refused by a guard while there was something to
// archive: the board drifts from the search until a run can sync. A
// disabled sync refuses nothing.
func (s SyncReport) Refused() bool {
	switch s.Guard {
	case "", GuardDisabled:
		return false
	case GuardUnreadable, GuardLeaseLost:
		return true // what it would archive is unknown, or the run lost its board
	}
	return s.WouldArchive > 0
}

// ItemFailure is one failed item, as the report lists them.
type ItemFailure struct {
	Offer   string      `json:"offer"`
	Failure FailureKind `json:"failure"`
	Reason  string      `json:"reason"`
}

// MaxReportedFailures bounds the failures a report lists; the counters hold
// the full count and the dead-letter stream every item.
const MaxReportedFailures = 50

// Report is the outcome of a run, stored as <run>.report and written by
// --report. It is a wire format kept for the retention.
type Report struct {
	RunID string `json:"run_id"`
	// Status is success, success_with_failures or fatal; Reason says why
	// for a fatal run (read_failure…) or a refused sync (sync_refused).
	Status Status `json:"status"`
	Reason string `json:"reason"`
	Events Events `json:"events"`
	// Truncated is set when the API's result cap hid offers.
	Truncated bool       `json:"truncated"`
	Sync      SyncReport `json:"sync"`
	BoardKey  string     `json:"board_key"`
	// Trigger says what started the run, Profile the service profile it
	// ran ("" for a --config run).
	Trigger Trigger `json:"trigger,omitempty"`
	Profile string  `json:"profile,omitempty"`
	// StartedAt is when the run was created, FinishedAt when it ended
	// (UTC); DurationSeconds is the time between, in seconds, and
	// OffersPerSecond is ReadSuccess over it.
	StartedAt       time.Time `json:"started_at"`
	FinishedAt      time.Time `json:"finished_at"`
	DurationSeconds float64   `json:"duration_seconds"`
	OffersPerSecond float64   `json:"offers_per_second"`
	// DryRun marks a run that wrote nothing: its counters are a plan.
	DryRun bool          `json:"dry_run,omitempty"`
	Fetch  *FetchSummary `json:"fetch,omitempty"`
	// Failures lists the first failed items (at most MaxReportedFailures)
	// with the API's or the format's message; the counters count them all.
	Failures []ItemFailure `json:"failures,omitempty"`
	// HrFlow says how the writes fared against HrFlow's rate limit; nil
	// when no job was written under a limit or throttled.
	HrFlow *HrFlowCalls `json:"hrflow,omitempty"`
}

// HrFlowCalls sums up, from the records, the HrFlow calls that wrote a
// run's jobs: the most calls per second the rate limit allowed them, and
// at the run's last write (the rate an adaptive limit reached), and the
// calls HrFlow throttled (429 or 503). An item written by a second
// delivery counts its last delivery's calls only.
type HrFlowCalls struct {
	RatePeak  float64 `json:"rate_peak"`
	RateLast  float64 `json:"rate_last"`
	Throttled int     `json:"throttled"`
	last      time.Time
}

// Add counts one record.
func (h *HrFlowCalls) Add(r Record) {
	h.Throttled += r.Throttled
	if r.Rate <= 0 {
		return
	}
	h.RatePeak = max(h.RatePeak, r.Rate)
	if !r.At.Before(h.last) {
		h.RateLast, h.last = r.Rate, r.At
	}
}

// FetchSummary tells how the fetch went, for the report.
type FetchSummary struct {
	// Total is the number of offers the API announced for the query.
	Total int `json:"total"`
	// Unreached counts the offers the result cap hid.
	Unreached int `json:"unreached,omitempty"`
	// Duplicates counts the offers the search returned more than once.
	Duplicates int `json:"duplicates,omitempty"`
	// Windows and Requests count the creation-date windows of the search
	// and its calls.
	Windows  int `json:"windows,omitempty"`
	Requests int `json:"requests,omitempty"`
	// Error is the search's failure, for a run with a read failure.
	Error string `json:"error,omitempty"`
	// ReplayOf names the run whose stored offers a replay read.
	ReplayOf string `json:"replay_of,omitempty"`
}

// Finish fills the derived fields from the times and counters: the status
// of the historic rules (unless Status is set already), and sync_refused
// for a run that succeeded but whose sync a guard refused.
func (r *Report) Finish(now time.Time) {
	r.FinishedAt = now.UTC()
	d := r.FinishedAt.Sub(r.StartedAt)
	r.DurationSeconds = d.Seconds()
	if d > 0 {
		r.OffersPerSecond = float64(r.Events.ReadSuccess) / d.Seconds()
	}
	if r.Status == "" {
		r.Status, r.Reason = r.Events.Status()
	}
	if r.Status != StatusFatal && r.Sync.Refused() {
		r.Status, r.Reason = StatusSuccessWithFailures, ReasonSyncRefused
	}
}

// shownFailures is how many failures the table shows; the JSON report has
// the rest.
const shownFailures = 5

// WriteTable writes the report as the short table the terminal shows.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	status := string(r.Status)
	if r.Reason != "" {
		status += " (" + r.Reason + ")"
	}
	if r.DryRun {
		status += " — dry run, nothing written"
	}
	fmt.Fprintf(tw, "run\t%s\n", r.RunID)
	fmt.Fprintf(tw, "status\t%s\n", status)
	fmt.Fprintf(tw, "board\t%s\n", r.BoardKey)
	fmt.Fprintf(tw, "duration\t%.1fs (%.0f offers/s)\n", r.DurationSeconds, r.OffersPerSecond)
	e := r.Events
	truncated := ""
	if r.Truncated {
		truncated = ", TRUNCATED by the API's cap"
	}
	fmt.Fprintf(tw, "read\t%d ok, %d failed%s\n", e.ReadSuccess, e.ReadFailure, truncated)
	fmt.Fprintf(tw, "format\t%d failed\n", e.FormatFailure)
	fmt.Fprintf(tw, "logics\t%d discarded, %d failed\n", e.LogicsDiscard, e.LogicsFailure)
	verb := ""
	if r.DryRun {
		verb = "would be "
	}
	fmt.Fprintf(tw, "board\t%s%d created, %d updated, %d unarchived, %d unchanged, %d skipped, %d write failures, %d parsing failures\n",
		verb, e.Created, e.Updated, e.Unarchived, e.Unchanged, e.Skipped, e.WriteFailure, e.ParsingFailure)
	if e.PublishFailure > 0 {
		fmt.Fprintf(tw, "publish\t%d too large for NATS\n", e.PublishFailure)
	}
	if h := r.HrFlow; h != nil {
		fmt.Fprintf(tw, "hrflow\trate %.1f calls/s at most, %.1f at the end; %d calls throttled\n", h.RatePeak, h.RateLast, h.Throttled)
	}
	switch {
	case r.Sync.Performed:
		fmt.Fprintf(tw, "sync\t%d archived, %d archive failures\n", r.Sync.Archived, e.ArchiveFailure)
	case r.DryRun && r.Sync.Guard == "":
		fmt.Fprintf(tw, "sync\twould archive %d\n", r.Sync.WouldArchive)
	case r.Sync.Refused():
		fmt.Fprintf(tw, "sync\tREFUSED by the %s guard: %s\n", r.Sync.Guard, r.Sync.RefusedReason)
		if r.Sync.Archived > 0 {
			fmt.Fprintf(tw, "\t%d archived before the refusal\n", r.Sync.Archived)
		}
	default:
		fmt.Fprintf(tw, "sync\tnot performed: %s\n", r.Sync.RefusedReason)
	}
	for i, f := range r.Failures {
		if i == shownFailures {
			fmt.Fprintf(tw, "\t… %d more in the JSON report\n", len(r.Failures)-shownFailures)
			break
		}
		fmt.Fprintf(tw, "failure\t%s %s: %s\n", f.Offer, f.Failure, OneLine(f.Reason))
	}
	return tw.Flush()
}

// maxLine bounds a line OneLine returns.
const maxLine = 160

// OneLine folds s onto one line of at most 160 bytes, for a header or a
// table cell.
func OneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxLine {
		s = s[:maxLine-3] + "..."
	}
	return s
}
