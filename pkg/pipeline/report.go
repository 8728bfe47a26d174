package pipeline

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Statuses of a run, as the historic connector named them.
const (
	StatusSuccess             = "success"
	StatusSuccessWithFailures = "success_with_failures"
	StatusFatal               = "fatal"
)

// Exit codes of every command.
const (
	ExitSuccess             = 0
	ExitFatal               = 1
	ExitUsage               = 2 // invalid configuration or usage
	ExitSuccessWithFailures = 3
	ExitBoardBusy           = 75 // EX_TEMPFAIL: the board is busy with another run; try again later
)

// ExitCode maps a status to the process exit code.
func ExitCode(status string) int {
	switch status {
	case StatusSuccess:
		return ExitSuccess
	case StatusSuccessWithFailures:
		return ExitSuccessWithFailures
	}
	return ExitFatal
}

// Events are the run's counters. The first six are the historic
// connector's; the rest say what happened on the board.
type Events struct {
	ReadSuccess    int `json:"read_success"`
	ReadFailure    int `json:"read_failure"`
	FormatFailure  int `json:"format_failure"`
	LogicsDiscard  int `json:"logics_discard"`
	LogicsFailure  int `json:"logics_failure"`
	WriteFailure   int `json:"write_failure"`
	Created        int `json:"created"`
	Updated        int `json:"updated"`
	Unarchived     int `json:"unarchived"`
	Skipped        int `json:"skipped"`
	Archived       int `json:"archived"`
	ArchiveFailure int `json:"archive_failure"`
	ParsingFailure int `json:"parsing_failure"`
}

// add counts one final record.
func (e *Events) add(r Record) {
	switch r.State {
	case Written, Skipped:
		switch r.Action {
		case "created":
			e.Created++
		case "updated":
			e.Updated++
		case "unarchived":
			e.Unarchived++
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
		default:
			e.WriteFailure++
		}
	}
	if r.ParsingFailure != "" {
		e.ParsingFailure++
	}
}

func (e Events) failures() int {
	return e.ReadFailure + e.FormatFailure + e.LogicsFailure + e.WriteFailure + e.ArchiveFailure + e.ParsingFailure
}

// Status applies the historic connector's rules to the counters and returns
// the status and, for a fatal run, the reason.
func (e Events) Status() (status, reason string) {
	formatted := e.ReadSuccess - e.FormatFailure
	reachedWrite := formatted - e.LogicsFailure - e.LogicsDiscard
	switch {
	case e.ReadSuccess == 0 && e.ReadFailure > 0:
		return StatusFatal, "read_failure"
	case e.ReadSuccess > 0 && e.FormatFailure == e.ReadSuccess:
		return StatusFatal, "format_failure"
	case formatted > 0 && e.LogicsFailure == formatted:
		return StatusFatal, "logics_failure"
	case reachedWrite > 0 && e.WriteFailure == reachedWrite:
		return StatusFatal, "write_failure"
	case e.failures() > 0:
		return StatusSuccessWithFailures, ""
	}
	return StatusSuccess, ""
}

// SyncReport says whether sync archived anything, and if not, why.
type SyncReport struct {
	Performed     bool   `json:"performed"`
	Archived      int    `json:"archived"`
	RefusedReason string `json:"refused_reason,omitempty"`
	// WouldArchive is what a dry run would have archived.
	WouldArchive int `json:"would_archive,omitempty"`
}

// ItemFailure is one failed item, as the report lists them.
type ItemFailure struct {
	Offer   string `json:"offer"`
	Failure string `json:"failure"`
	Reason  string `json:"reason"`
}

// maxReportedFailures bounds the failures a report lists; the counters hold
// the full count and the dead-letter stream every item.
const maxReportedFailures = 50

// Report is the outcome of a run.
type Report struct {
	RunID           string        `json:"run_id"`
	Status          string        `json:"status"`
	Reason          string        `json:"reason"`
	Events          Events        `json:"events"`
	Truncated       bool          `json:"truncated"`
	Sync            SyncReport    `json:"sync"`
	BoardKey        string        `json:"board_key"`
	StartedAt       time.Time     `json:"started_at"`
	FinishedAt      time.Time     `json:"finished_at"`
	DurationSeconds float64       `json:"duration_seconds"`
	OffersPerSecond float64       `json:"offers_per_second"`
	DryRun          bool          `json:"dry_run,omitempty"`
	Fetch           *FetchSummary `json:"fetch,omitempty"`
	Failures        []ItemFailure `json:"failures,omitempty"`
}

// FetchSummary tells how the fetch went, for the report.
type FetchSummary struct {
	Total     int    `json:"total"`
	Unreached int    `json:"unreached,omitempty"`
	Windows   int    `json:"windows,omitempty"`
	Requests  int    `json:"requests,omitempty"`
	Error     string `json:"error,omitempty"`
	ReplayOf  string `json:"replay_of,omitempty"`
}

// finish fills the derived fields from the times and counters.
func (r *Report) finish(now time.Time) {
	r.FinishedAt = now.UTC()
	d := r.FinishedAt.Sub(r.StartedAt)
	r.DurationSeconds = d.Seconds()
	if d > 0 {
		r.OffersPerSecond = float64(r.Events.ReadSuccess) / d.Seconds()
	}
	if r.Status == "" {
		r.Status, r.Reason = r.Events.Status()
	}
}

// WriteTable writes the report as the short table the terminal shows.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	status := r.Status
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
	fmt.Fprintf(tw, "read\t%d ok, %d failed%s\n", e.ReadSuccess, e.ReadFailure, map[bool]string{true: ", TRUNCATED by the API's cap", false: ""}[r.Truncated])
	fmt.Fprintf(tw, "format\t%d failed\n", e.FormatFailure)
	fmt.Fprintf(tw, "logics\t%d discarded, %d failed\n", e.LogicsDiscard, e.LogicsFailure)
	verb := ""
	if r.DryRun {
		verb = "would be "
	}
	fmt.Fprintf(tw, "board\t%s%d created, %d updated, %d unarchived, %d skipped, %d write failures, %d parsing failures\n",
		verb, e.Created, e.Updated, e.Unarchived, e.Skipped, e.WriteFailure, e.ParsingFailure)
	switch {
	case r.Sync.Performed:
		fmt.Fprintf(tw, "sync\t%d archived, %d archive failures\n", r.Sync.Archived, e.ArchiveFailure)
	case r.DryRun && r.Sync.RefusedReason == "":
		fmt.Fprintf(tw, "sync\twould archive %d\n", r.Sync.WouldArchive)
	default:
		fmt.Fprintf(tw, "sync\tnot performed: %s\n", r.Sync.RefusedReason)
	}
	for i, f := range r.Failures {
		if i == 5 {
			fmt.Fprintf(tw, "\t… %d more in the JSON report\n", len(r.Failures)-5)
			break
		}
		fmt.Fprintf(tw, "failure\t%s %s: %s\n", f.Offer, f.Failure, oneLine(f.Reason))
	}
	return tw.Flush()
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
