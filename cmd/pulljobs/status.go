package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/service"
)

const statusUsage = `Usage: pulljobs status [flags] [RUN]
       pulljobs status --boards [flags]

Without RUN, lists the runs that NATS keeps (pipeline.retention, 7 days by
default), newest first: id, profile, trigger (cli, request, event, schedule),
board, status, counters, duration and sync outcome, or the progress of a run
in flight and why it waits: the other runs that share the fleet with it
(their items waiting), its share of the workers and of the HrFlow quota, and
when it should end; then the latest triggers that fetcher serve refused,
with their reasons. With RUN, prints its report, its failures and its dead
letters with their reasons.

--json prints {"runs": [...]} (each with run_id, status, phase, trigger,
profile, board_key, events, sync, progress, queue, dead_letter_count...), or one run
with its report and dead_letters: what the service's pulljobs.runs.list and
pulljobs.runs.get answer.

--boards lists the boards instead: each board's last run and its status, its
last successful sync and that sync's age (STALE past 24 hours: France
Travail's licence asks for a refresh at least that often), its live jobs as
the board index knows them, the run in flight on it, and its next scheduled
run. With --json: {"boards": [...]}, what pulljobs.boards.list answers.

It reads NATS directly: no fetcher serve needs to run.

Flags:
`

// statusTimeout bounds the reads of one status.
const statusTimeout = 30 * time.Second

// statusLetters bounds the dead letters printed for one run.
const statusLetters = 100

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		common cli.Common
		asJSON bool
		boards bool
		limit  int
	)
	fs := flag.NewFlagSet("pulljobs status", flag.ContinueOnError)
	common.RegisterNATS(fs)
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	fs.BoolVar(&boards, "boards", false, "list the boards: last run, last successful sync and its age, live jobs, next scheduled run")
	fs.IntVar(&limit, "limit", 20, "list at most `N` runs (0: all)")
	common.RegisterLog(fs)
	fs.Usage = func() { fmt.Fprint(fs.Output(), statusUsage); fs.PrintDefaults() }
	run, rest := splitRun(fs, args)
	if err := cli.Parse(fs, rest, stdout); err != nil {
		return err
	}
	logger, err := common.Logger(stderr)
	if err != nil {
		return err
	}
	nc, err := cli.Connect(common.NATS, "pulljobs-status", false, logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	if boards {
		if run != "" {
			return cli.Usagef("--boards lists every board: give no RUN")
		}
		list, err := runstatus.ListBoards(ctx, js)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, runstatus.BoardList{Boards: list})
		}
		return writeBoards(stdout, list, time.Now())
	}
	if run != "" {
		d, err := runstatus.GetRun(ctx, js, run, statusLetters)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, d)
		}
		return writeRunDetail(stdout, d, time.Now())
	}
	runs, err := runstatus.ListRuns(ctx, js, limit)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(stdout, runstatus.RunList{Runs: runs})
	}
	if err := writeRunList(stdout, runs, time.Now()); err != nil {
		return err
	}
	refused, total, err := runstatus.ReadDeadLetters(ctx, js, runstatus.DeadLetterSubjectPrefix+service.TriggerStage+".*", refusedScan)
	if err != nil {
		return err
	}
	return writeRefused(stdout, refused, total, time.Now())
}

// refusedScan bounds the refused triggers read to print the latest.
const refusedScan = 2000

// refusedShown is how many refused triggers the list prints, the latest.
const refusedShown = 5

// writeRefused prints the latest triggers that fetcher serve refused.
func writeRefused(w io.Writer, letters []runstatus.DeadLetter, total int, now time.Time) error {
	if total == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nrefused triggers: %d, on %s%s.<profile> (the latest first):\n", total, runstatus.DeadLetterSubjectPrefix, service.TriggerStage)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i := len(letters) - 1; i >= 0 && i >= len(letters)-refusedShown; i-- {
		l := letters[i]
		profile := strings.TrimPrefix(l.Subject, runstatus.DeadLetterSubjectPrefix+service.TriggerStage+".")
		fmt.Fprintf(tw, "  %s ago\t%s\t%s\n", cli.FormatDuration(now.Sub(l.At).Seconds()), profile, oneLine(l.Reason))
	}
	return tw.Flush()
}

// splitRun takes the run id out of args, before or after the flags of fs,
// so that `status RUN --json` and `status --json RUN` both work.
func splitRun(fs *flag.FlagSet, args []string) (run string, flags []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return run, append(flags, args[i:]...)
		case strings.HasPrefix(a, "-"):
			flags = append(flags, a)
			if takesValue(fs, a) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		case run == "":
			run = a
		default:
			flags = append(flags, a) // a second one: Parse refuses it
		}
	}
	return run, flags
}

// takesValue reports whether arg is a flag of fs whose value is the next
// argument, so that `status --limit 5` is not read as the run "5".
func takesValue(fs *flag.FlagSet, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeRunList prints the runs as a table, newest first.
func writeRunList(w io.Writer, runs []runstatus.RunStatus, now time.Time) error {
	if len(runs) == 0 {
		_, err := fmt.Fprintln(w, "No runs yet.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tPROFILE\tTRIGGER\tBOARD\tSTATUS\tREAD\tCREATED\tUPDATED\tUNARCHIVED\tUNCHANGED\tSKIPPED\tARCHIVED\tFAILED\tDURATION\tSYNC / PROGRESS")
	for _, st := range runs {
		status := string(st.Status)
		if st.Phase != "" {
			status += " (" + string(st.Phase) + ")"
		}
		if st.DryRun {
			status += ", dry run"
		}
		counters := strings.Repeat("-\t", 7) + "-"
		if e := st.Events; e != nil {
			counters = fmt.Sprintf("%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d", e.ReadSuccess, e.Created, e.Updated, e.Unarchived, e.Unchanged, e.Skipped, e.Archived, st.Failed())
		}
		outcome := st.SyncOutcome()
		if st.Progress != nil {
			outcome = st.Progress.String() + lastSeen(st, now)
			if st.Queue != nil {
				outcome += "; " + st.Queue.String()
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.RunID, dash(st.Profile), st.Trigger, shortBoard(st.BoardKey),
			status, counters, cli.FormatDuration(st.DurationSeconds), dash(outcome))
	}
	return tw.Flush()
}

// writeBoards prints the boards, one a line.
func writeBoards(w io.Writer, boards []runstatus.BoardStatus, now time.Time) error {
	if len(boards) == 0 {
		_, err := fmt.Fprintln(w, "No board yet.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BOARD\tLAST RUN\tSTATUS\tLAST SYNC\tAGE\tLIVE JOBS\tRUNNING\tNEXT RUN")
	for _, b := range boards {
		status, sync, age, live, next := "-", "-", "never", "-", "-"
		if b.LastRun != "" {
			status = string(b.LastStatus)
		}
		if b.LastSyncAt != nil {
			sync = b.LastSyncAt.UTC().Format(time.RFC3339)
			age = cli.FormatDuration(*b.SyncAgeSeconds)
		}
		if b.Stale(now) {
			age += " STALE"
		}
		if b.LiveJobs != nil {
			live = fmt.Sprint(*b.LiveJobs)
		}
		if b.NextRunAt != nil {
			next = b.NextRunAt.UTC().Format(time.RFC3339) + " (" + b.NextProfile + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.BoardKey, dash(b.LastRun), status, sync, age, live, dash(b.Running), next)
	}
	return tw.Flush()
}

// writeRunDetail prints one run: what started it, its report or progress,
// its failures and its dead letters.
func writeRunDetail(w io.Writer, d runstatus.RunDetail, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "profile\t%s\n", dash(d.Profile))
	fmt.Fprintf(tw, "trigger\t%s\n", d.Trigger)
	fmt.Fprintf(tw, "started\t%s\n", d.StartedAt.UTC().Format(time.RFC3339))
	if d.ReplayOf != "" {
		fmt.Fprintf(tw, "replay of\t%s\n", d.ReplayOf)
	}
	if d.Report == nil {
		fmt.Fprintf(tw, "run\t%s\n", d.RunID)
		fmt.Fprintf(tw, "status\t%s (%s)\n", d.Status, d.Phase)
		fmt.Fprintf(tw, "board\t%s\n", d.BoardKey)
		fmt.Fprintf(tw, "duration\t%s so far\n", cli.FormatDuration(d.DurationSeconds))
		if d.Progress != nil {
			fmt.Fprintf(tw, "progress\t%s%s\n", d.Progress, lastSeen(d.RunStatus, now))
		}
		if q := d.Queue; q != nil {
			fmt.Fprintf(tw, "queue\t%s\n", q)
			fmt.Fprintf(tw, "\t%d items of this run waiting, weight %g; the fleet ends %.1f items/s\n", q.Waiting, q.Weight, q.FleetRate)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if d.Report != nil {
		r := *d.Report
		r.Failures = nil // all of them below, not the table's first five
		if err := r.WriteTable(w); err != nil {
			return err
		}
		if len(d.Report.Failures) > 0 {
			fmt.Fprintf(w, "\nfailures (the report keeps the first %d):\n", len(d.Report.Failures))
			tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			for _, f := range d.Report.Failures {
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Offer, f.Failure, oneLine(f.Reason))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	return writeDeadLetters(w, d)
}

func writeDeadLetters(w io.Writer, d runstatus.RunDetail) error {
	if d.DeadLetterCount == 0 {
		_, err := fmt.Fprintln(w, "\ndead letters: none")
		return err
	}
	fmt.Fprintf(w, "\ndead letters (%d, on %s%s.*):\n", d.DeadLetterCount, runstatus.DeadLetterSubjectPrefix, d.RunID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, l := range d.DeadLetters {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", l.Offer, l.Stage, oneLine(l.Reason))
	}
	if more := d.DeadLetterCount - len(d.DeadLetters); more > 0 {
		fmt.Fprintf(tw, "  … %d more\t\t\n", more)
	}
	return tw.Flush()
}

// lastSeen says when a run in flight last showed a sign of life.
func lastSeen(st runstatus.RunStatus, now time.Time) string {
	if st.LastSignOfLife == nil {
		return ""
	}
	return ", last sign of life " + cli.FormatDuration(now.Sub(*st.LastSignOfLife).Seconds()) + " ago"
}

func shortBoard(key string) string { return key[:min(len(key), 8)] }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine puts a reason on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
