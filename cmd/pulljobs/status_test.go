package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/natsembed"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

var statusNow = time.Date(2026, 11, 28, 18, 10, 0, 0, time.UTC)

// statusRuns are a finished run, a refused sync and a run in flight.
func statusRuns() []runstatus.RunStatus {
	finished := statusNow.Add(-time.Minute)
	endsIn := 8.0
	seen := statusNow.Add(-3 * time.Second)
	return []runstatus.RunStatus{
		{RunID: "20261128T180900000Z-0000000c", Status: runstatus.StatusRunning, Phase: runstatus.PhaseProcessing, Trigger: runstatus.TriggerSchedule,
			Profile: "annecy", BoardKey: "0123456789abcdef0123456789abcdef01234567", StartedAt: statusNow.Add(-time.Minute), DurationSeconds: 60,
			Progress: &runstatus.RunProgress{Fetched: 120, Sealed: true, Expected: 120, Done: 80}, LastSignOfLife: &seen,
			Queue: &runstatus.Queue{Waiting: 40, Ahead: 18000, Runs: 1, Weight: 1, Share: 0.5, FleetRate: 10, EndsInSeconds: &endsIn}},
		{RunID: "20261128T180000000Z-0000000b", Status: runstatus.StatusSuccessWithFailures, Trigger: runstatus.TriggerEvent, Profile: "chambery",
			BoardKey: "0123456789abcdef0123456789abcdef01234567", DurationSeconds: 12.4, FinishedAt: &finished,
			Events: &runstatus.Events{ReadSuccess: 40, Created: 30, Updated: 2, Skipped: 7, WriteFailure: 1},
			Sync:   &runstatus.SyncReport{RefusedReason: "1 offer failed"}, DeadLetterCount: 1},
		{RunID: "20261128T170000000Z-0000000a", Status: runstatus.StatusSuccess, Trigger: runstatus.TriggerCLI,
			BoardKey: "0123456789abcdef0123456789abcdef01234567", DurationSeconds: 3.2, FinishedAt: &finished,
			Events: &runstatus.Events{ReadSuccess: 25, Created: 20, Skipped: 5, Archived: 3},
			Sync:   &runstatus.SyncReport{Performed: true, Archived: 3}},
	}
}

func TestWriteRunList(t *testing.T) {
	var b bytes.Buffer
	if err := writeRunList(&b, statusRuns(), statusNow); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want a header and 3 runs:\n%s", len(lines), b.String())
	}
	for i, want := range [][]string{
		{"RUN", "PROFILE", "TRIGGER", "BOARD", "STATUS", "CREATED", "FAILED", "DURATION", "SYNC / PROGRESS"},
		{"20261128T180900000Z-0000000c", "annecy", "schedule", "01234567", "running (processing)", "80/120 items done (66%)", "last sign of life 3.0s ago", "1m00s",
			"1 other run (18000 items) share the fleet; its share 50%, ends in ~8s"},
		{"20261128T180000000Z-0000000b", "chambery", "event", "success_with_failures", "40", "30", "12s", "refused: 1 offer failed"},
		{"20261128T170000000Z-0000000a", "cli", "success", "25", "20", "3.2s", "3 archived"},
	} {
		for _, s := range want {
			if !strings.Contains(lines[i], s) {
				t.Errorf("line %d does not say %q:\n%s", i, s, lines[i])
			}
		}
	}
	// The columns line up: every row is as wide up to the status.
	if at := strings.Index(lines[0], "STATUS"); strings.Index(lines[1], "running") != at || strings.Index(lines[3], "success") != at {
		t.Errorf("columns do not line up:\n%s", b.String())
	}
	b.Reset()
	if err := writeRunList(&b, nil, statusNow); err != nil || !strings.Contains(b.String(), "No runs yet") {
		t.Errorf("no runs: %q, %v", b.String(), err)
	}
}

func TestWriteRefused(t *testing.T) {
	var letters []runstatus.DeadLetter
	for i := range 7 {
		letters = append(letters, runstatus.DeadLetter{Subject: "pulljobs.dlq.trigger.p" + string(rune('a'+i)), Stage: "trigger",
			Reason: "reason " + string(rune('a'+i)), At: statusNow.Add(time.Duration(i-10) * time.Minute)})
	}
	var b bytes.Buffer
	if err := writeRefused(&b, letters, 9, statusNow); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !strings.Contains(lines[0], "refused triggers: 9, on pulljobs.dlq.trigger.<profile>") ||
		!strings.Contains(lines[1], "4m00s ago  pg  reason g") || !strings.Contains(lines[5], "pc  reason c") {
		t.Errorf("refused triggers, the latest five first:\n%s", out)
	}
	b.Reset()
	if err := writeRefused(&b, nil, 0, statusNow); err != nil || b.Len() != 0 {
		t.Errorf("no refused trigger: %q, %v; want nothing", b.String(), err)
	}
}

func TestWriteRunDetail(t *testing.T) {
	runs := statusRuns()
	done := runstatus.RunDetail{RunStatus: runs[1],
		Report: &runstatus.Report{RunID: runs[1].RunID, Status: runs[1].Status, BoardKey: runs[1].BoardKey, Events: *runs[1].Events,
			Sync:     *runs[1].Sync,
			Failures: []runstatus.ItemFailure{{Offer: "184XKLM", Failure: runstatus.WriteFailure, Reason: "HrFlow 400:\n  invalid location"}}},
		DeadLetters: []runstatus.DeadLetter{{Offer: "184XKLM", Stage: "push", Reason: "HrFlow 400: invalid location"}}}
	var b bytes.Buffer
	if err := writeRunDetail(&b, done, statusNow); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"profile  chambery", "trigger  event", "status    success_with_failures", "30 created",
		"sync      not performed: 1 offer failed", "failures (the report keeps the first 1)", "184XKLM  write_failure  HrFlow 400: invalid location",
		"dead letters (1, on pulljobs.dlq.20261128T180000000Z-0000000b.*)", "184XKLM  push"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("detail does not say %q:\n%s", s, b.String())
		}
	}
	b.Reset()
	if err := writeRunDetail(&b, runstatus.RunDetail{RunStatus: runs[0]}, statusNow); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"status    running (processing)", "progress  80/120 items done (66%), last sign of life 3.0s ago", "dead letters: none",
		"queue     1 other run (18000 items) share the fleet; its share 50%, ends in ~8s", "40 items of this run waiting, weight 1; the fleet ends 10.0 items/s"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("run in flight does not say %q:\n%s", s, b.String())
		}
	}
}

func TestWriteBoards(t *testing.T) {
	synced, old := statusNow.Add(-2*time.Hour), statusNow.Add(-30*time.Hour)
	age, oldAge, live, next := 7200.0, 108000.0, 1234, statusNow.Add(3*time.Hour)
	boards := []runstatus.BoardStatus{
		{Board: runstatus.Board{BoardKey: "0123456789abcdef0123456789abcdef01234567", LastRun: "20261128T170000000Z-0000000a", LastStatus: runstatus.StatusSuccess,
			LastSyncAt: &synced, LiveJobs: &live}, SyncAgeSeconds: &age, NextRunAt: &next, NextProfile: "annecy"},
		{Board: runstatus.Board{BoardKey: "1111111111111111111111111111111111111111", LastRun: "20261128T180000000Z-0000000b", LastStatus: runstatus.StatusFatal,
			LastSyncAt: &old}, SyncAgeSeconds: &oldAge, Running: "20261128T180900000Z-0000000c"},
		{Board: runstatus.Board{BoardKey: "2222222222222222222222222222222222222222"}, NextRunAt: &next, NextProfile: "new"},
	}
	var b bytes.Buffer
	if err := writeBoards(&b, boards, statusNow); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want a header and 3 boards:\n%s", len(lines), b.String())
	}
	for i, want := range [][]string{
		{"BOARD", "LAST RUN", "LAST SYNC", "AGE", "LIVE JOBS", "RUNNING", "NEXT RUN"},
		{"0123456789abcdef", "success", "2026-11-28T16:10:00Z", "2h00m", "1234", "2026-11-28T21:10:00Z (annecy)"},
		{"1111", "fatal", "30h00m STALE", "20261128T180900000Z-0000000c"},
		{"2222", "never", "(new)"},
	} {
		for _, s := range want {
			if !strings.Contains(lines[i], s) {
				t.Errorf("line %d does not say %q:\n%s", i, s, lines[i])
			}
		}
	}
	if strings.Contains(lines[1], "STALE") || strings.Contains(lines[3], "STALE") {
		t.Errorf("a board synced 2 hours ago, or one no run ended on, reads as stale:\n%s", b.String())
	}
}

// TestStatusCommand runs the command against a server where no run ever
// started, and asks for a run that does not exist.
func TestStatusCommand(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	code, out, errOut := pulljobs(t, "status", "--nats", srv.ClientURL(), "--json")
	var list runstatus.RunList
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || list.Runs == nil || len(list.Runs) != 0 {
		t.Errorf("status --json on an empty system: exit %d, %q %q; want {\"runs\": []}", code, out, errOut)
	}
	if code, out, _ := pulljobs(t, "status", "--nats", srv.ClientURL()); code != 0 || !strings.Contains(out, "No runs yet") {
		t.Errorf("status: exit %d, %q", code, out)
	}
	code, out, errOut = pulljobs(t, "status", "--boards", "--nats", srv.ClientURL(), "--json")
	var boards runstatus.BoardList
	if code != 0 || json.Unmarshal([]byte(out), &boards) != nil || boards.Boards == nil || len(boards.Boards) != 0 {
		t.Errorf("status --boards --json on an empty system: exit %d, %q %q; want {\"boards\": []}", code, out, errOut)
	}
	if code, _, errOut := pulljobs(t, "status", "--boards", "--nats", srv.ClientURL(), "20261128T180000000Z-0000000b"); code != 2 || !strings.Contains(errOut, "--boards") {
		t.Errorf("status --boards RUN: exit %d, %q; want a usage error", code, errOut)
	}
	for _, args := range [][]string{
		{"status", "--nats", srv.ClientURL(), "--limit", "5", "20261128T180000000Z-0000000b"},
		{"status", "20261128T180000000Z-0000000b", "--nats", srv.ClientURL(), "--json"},
		// Every flag of status with a value takes the next argument, the
		// credentials' too: "status" is the user, not the run.
		{"status", "--nats-user", "status", "--nats-password", "pw", "20261128T180000000Z-0000000b", "--nats", srv.ClientURL()},
	} {
		code, _, errOut = pulljobs(t, args...)
		if code != 1 || !strings.Contains(errOut, "run 20261128T180000000Z-0000000b: unknown run") {
			t.Errorf("%v: exit %d, %q; want 1 and unknown run", args, code, errOut)
		}
	}
	if code, _, errOut := pulljobs(t, "status", "--nats", srv.ClientURL(), "run-a", "run-b"); code != 2 || !strings.Contains(errOut, "run-b") {
		t.Errorf("two runs: exit %d, %q; want a usage error", code, errOut)
	}
	if code, out, _ := pulljobs(t, "status", "--help"); code != 0 || !strings.Contains(out, "--json") || !strings.Contains(out, "pulljobs.runs.list") {
		t.Errorf("status --help: exit %d\n%s", code, out)
	}
	if code, _, errOut := pulljobs(t, "status", "--limit"); code != 2 {
		t.Errorf("status --limit without a value: exit %d, %q; want 2", code, errOut)
	}
}
