package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// verify compares the trial's outcome with what an undisturbed run of the
// same corpus and board gives, and returns every difference. The control
// trial checks those expectations against an undisturbed run.
func (tr *chaosTrial) verify(exit int) []string {
	var d []string
	if exit != cli.ExitSuccess {
		d = append(d, fmt.Sprintf("fetcher exited %d, want 0 (%s)", exit, errorLine(tr.procs["fetcher"])))
	}
	r, src, err := tr.readReport()
	if err != nil {
		d = append(d, err.Error())
	} else {
		if src != "" {
			d = append(d, src)
		}
		d = append(d, tr.checkReport(r)...)
	}
	d = append(d, tr.checkBoard()...)
	d = append(d, tr.checkCalls()...)
	d = append(d, tr.checkRuns(r)...)
	if v := tr.sec.violations(); len(v) > 0 {
		d = append(d, "NATS refused operations to the roles of deploy/nats/pulljobs-auth.conf: "+strings.Join(v, "; "))
	}
	if tr.plan.second {
		d = append(d, tr.checkSecond()...)
	}
	return append(d, tr.checkWorkers()...)
}

// checkSecond verifies the second board's run, which shared the workers
// with the first: exit 0, every offer created, nothing archived, and the
// board holding exactly the corpus.
func (tr *chaosTrial) checkSecond() []string {
	var d []string
	if p := tr.procs["fetcher-second"]; p.exitCode() != cli.ExitSuccess {
		d = append(d, fmt.Sprintf("the second board's fetcher exited %d, want 0 (%s)", p.exitCode(), errorLine(p)))
	}
	var r runstatus.Report
	b, err := os.ReadFile(tr.secondReport)
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		return append(d, "second board: no report: "+err.Error())
	}
	want := runstatus.Events{ReadSuccess: len(tr.corpus), Created: len(tr.corpus)}
	if r.Status != runstatus.StatusSuccess || r.BoardKey != secondBoard {
		d = append(d, fmt.Sprintf("second board: report status %s %s on board %s, want success on %s", r.Status, r.Reason, r.BoardKey, secondBoard))
	}
	if diff := fieldDiff(r.Events, want); diff != "" {
		d = append(d, "second board: report events: "+diff)
	}
	live, archived := boardOf(tr.t, tr.hrURL, secondBoard)
	if diff := setDiff(live, tr.corpus); diff != "" || len(archived) > 0 {
		d = append(d, fmt.Sprintf("second board: live jobs vs offers: %s; %d archived, want none", diff, len(archived)))
	}
	return d
}

// checkWorkers: no worker ended by itself; only the harness kills them.
func (tr *chaosTrial) checkWorkers() []string {
	var d []string
	for _, name := range []string{"formatter-1", "formatter-2", "pusher-1", "pusher-2", "nats-server", "sandbox"} {
		if p := tr.procs[name]; p.exited() {
			d = append(d, fmt.Sprintf("%s exited by itself with %d (%s)", name, p.exitCode(), errorLine(p)))
		}
	}
	return d
}

// readReport reads the fetcher's --report file; without one, the first
// run's report in the runs bucket, so that its counters are still checked.
func (tr *chaosTrial) readReport() (r runstatus.Report, missing string, err error) {
	b, err := os.ReadFile(tr.report)
	if err != nil {
		missing = "no report file from the fetcher; the counters below are the runs bucket's"
		var ok bool
		if b, ok = tr.obs.get(tr.run + ".report"); tr.run == "" || !ok {
			return r, "", fmt.Errorf("no report: no file from the fetcher, none in the runs bucket for run %q", tr.run)
		}
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, "", fmt.Errorf("report: %v", err)
	}
	return r, missing, nil
}

// wantEvents are the counters of an undisturbed run: every offer read, the
// kept jobs skipped, the others created, the stale ones archived.
func (tr *chaosTrial) wantEvents() runstatus.Events {
	return runstatus.Events{ReadSuccess: len(tr.corpus), Created: len(tr.corpus) - len(tr.kept), Skipped: len(tr.kept), Archived: len(tr.stale)}
}

func (tr *chaosTrial) checkReport(r runstatus.Report) []string {
	var d []string
	if r.Status != runstatus.StatusSuccess || r.Reason != "" {
		d = append(d, fmt.Sprintf("report status %s %s, want success", r.Status, r.Reason))
	}
	if diff := fieldDiff(r.Events, tr.wantEvents()); diff != "" {
		d = append(d, "report events: "+diff)
	}
	want := runstatus.SyncReport{Performed: true, Archived: len(tr.stale)}
	if r.Sync != want {
		d = append(d, fmt.Sprintf("report sync %+v, want %+v", r.Sync, want))
	}
	if r.Fetch == nil || r.Fetch.Total != len(tr.corpus) {
		d = append(d, fmt.Sprintf("report fetch %+v, want total %d", r.Fetch, len(tr.corpus)))
	}
	return d
}

// checkBoard lists the board: its live jobs are the corpus's offers, its
// archived ones the stale jobs, and nothing else.
func (tr *chaosTrial) checkBoard() []string {
	var d []string
	live, archived := board(tr.t, tr.hrURL)
	if diff := setDiff(live, tr.corpus); diff != "" {
		d = append(d, "live jobs vs offers: "+diff)
	}
	if diff := setDiff(archived, tr.stale); diff != "" {
		d = append(d, "archived jobs vs stale jobs: "+diff)
	}
	return d
}

// checkCalls counts HrFlow's answers: one creation per new offer, one
// successful archive per stale job.
func (tr *chaosTrial) checkCalls() []string {
	var d []string
	s := hrStats(tr.t, tr.hrURL)
	count := func(route string, status int) int {
		return int(s.Count(route, status) - tr.base.Count(route, status))
	}
	wantCreated := len(tr.corpus) - len(tr.kept)
	if tr.plan.second {
		wantCreated += len(tr.corpus) // every offer on the second, empty, board
	}
	if got := count(hrflowtest.RouteCreateJob, 201); got != wantCreated {
		d = append(d, fmt.Sprintf("HrFlow created %d jobs, want %d", got, wantCreated))
	}
	if got, want := count(hrflowtest.RouteArchiveJob, 200), len(tr.stale); got != want {
		d = append(d, fmt.Sprintf("HrFlow archived %d jobs, want %d", got, want))
	}
	return d
}

// checkRuns: one command, one run (a run a board).
func (tr *chaosTrial) checkRuns(r runstatus.Report) []string {
	ids, err := tr.obs.runIDs()
	want := 1
	if tr.plan.second {
		want = 2
	}
	first := tr.obs.runOf(hrflowtest.DefaultBoardKey)
	switch {
	case err != nil:
		return []string{fmt.Sprintf("list runs: %v", err)}
	case len(ids) != want:
		return []string{fmt.Sprintf("%d runs started (%s), want %d", len(ids), strings.Join(ids, ", "), want)}
	case r.RunID != "" && r.RunID != first:
		return []string{fmt.Sprintf("report of run %s, want run %s", r.RunID, first)}
	}
	return nil
}

// fieldDiff lists the fields of two structs of the same type that differ,
// by their JSON names: "created 4990, want 5000".
func fieldDiff(got, want any) string {
	var g, w map[string]any
	for _, x := range []struct {
		v any
		m *map[string]any
	}{{got, &g}, {want, &w}} {
		b, _ := json.Marshal(x.v)
		_ = json.Unmarshal(b, x.m)
	}
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(w)) {
		if fmt.Sprint(g[k]) != fmt.Sprint(w[k]) {
			diffs = append(diffs, fmt.Sprintf("%s %v, want %v", k, g[k], w[k]))
		}
	}
	return strings.Join(diffs, ", ")
}

// setDiff compares two sorted lists of references: what is missing from
// got, and what is extra, with a few examples.
func setDiff(got, want []string) string {
	var missing, extra []string
	for _, w := range want {
		if _, ok := slices.BinarySearch(got, w); !ok {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if _, ok := slices.BinarySearch(want, g); !ok {
			extra = append(extra, g)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	examples := func(s []string) string {
		if len(s) > 3 {
			return strings.Join(s[:3], " ") + " …"
		}
		return strings.Join(s, " ")
	}
	return fmt.Sprintf("%d of %d, %d missing [%s], %d extra [%s]", len(got), len(want), len(missing), examples(missing), len(extra), examples(extra))
}

// errorLine is the last line of a process's output that reports an error.
func errorLine(p *proc) string {
	lines := strings.Split(p.tailLines(200), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := lines[i]; strings.HasPrefix(l, "error:") || strings.Contains(l, `"level":"ERROR"`) {
			return clip(l, 400)
		}
	}
	return "no error line in its output"
}

// logTails returns the run's seal, the streams and consumers, and the last
// lines of every process of the trial, killed ones included.
func (tr *chaosTrial) logTails() string {
	var b strings.Builder
	if tr.run != "" {
		seal, _ := tr.obs.get(tr.run + ".seal")
		fmt.Fprintf(&b, "--- run %s, seal %s\n", tr.run, seal)
	}
	fmt.Fprintf(&b, "--- NATS:\n%s", tr.obs.describe())
	for _, p := range tr.all {
		status := "running"
		if p.exited() {
			status = p.cmd.ProcessState.String()
		}
		fmt.Fprintf(&b, "--- %s (pid %d, %s), %s:\n", p.name, p.pid(), status, p.log)
		n := tailLines
		switch {
		case p.name == "sandbox":
			// Its output is the emulators' URLs and credentials.
			fmt.Fprintf(&b, "    %s\n", errorLine(p))
			continue
		case p.name == "nats-server" && tr.plan.victim != victimNATS:
			n = 4 // its start-up banner says little
		}
		for _, l := range strings.Split(p.tailLines(n), "\n") {
			fmt.Fprintf(&b, "    %s\n", clip(l, 400))
		}
	}
	return b.String()
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
