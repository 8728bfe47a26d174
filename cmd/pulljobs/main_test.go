package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// pulljobs runs the command in-process and returns its exit code and output.
func pulljobs(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	err := run(ctx, args, &out, &errb)
	return cli.ExitCode(err, &errb), out.String(), errb.String()
}

func readReport(t *testing.T, path string) runstatus.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r runstatus.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report %s: %v", b, err)
	}
	return r
}

// TestRunSandbox is the README's first command: one run on the sandbox
// shows creation, skipping and archiving.
func TestRunSandbox(t *testing.T) {
	report := filepath.Join(t.TempDir(), "report.json")
	code, out, errOut := pulljobs(t, "run", "--sandbox", "--synthetic", "300", "--report", report, "--log-level", "warn")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	r := readReport(t, report)
	want := runstatus.Events{ReadSuccess: 300, Created: 300 - sandboxKeptJobs, Skipped: sandboxKeptJobs, Archived: sandboxStaleJobs}
	if r.Status != runstatus.StatusSuccess || r.Events != want || !r.Sync.Performed {
		t.Errorf("report = %+v\nwant success with events %+v", r, want)
	}
	for _, s := range []string{"status    success", "290 created", "10 skipped", "5 archived"} {
		if !strings.Contains(out, s) {
			t.Errorf("table does not say %q:\n%s", s, out)
		}
	}
}

// TestRunDryRunSandbox checks a dry run reports the plan and writes nothing.
func TestRunDryRunSandbox(t *testing.T) {
	report := filepath.Join(t.TempDir(), "report.json")
	code, out, errOut := pulljobs(t, "run", "--sandbox", "--synthetic", "100", "--dry-run", "--report", report, "--log-level", "warn")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	r := readReport(t, report)
	if !r.DryRun || r.Events.Created != 90 || r.Sync.Performed || r.Sync.WouldArchive != sandboxStaleJobs {
		t.Errorf("report = %+v, want a plan: 90 created, 5 would be archived, nothing performed", r)
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("origin_parameters:\n  departemnt: '74'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing-secret.yaml")
	if err := os.WriteFile(missing, []byte("origin_parameters:\n  client_id: x\n  client_secret: ${PULLJOBS_TEST_UNSET_SECRET}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{"no command", nil, 2, "Usage"},
		{"help", []string{"--help"}, 0, "pulljobs run --sandbox"},
		{"run help", []string{"run", "--help"}, 0, "--synthetic"},
		{"unknown command", []string{"launch"}, 2, `unknown command "launch"`},
		{"neither sandbox nor config", []string{"run"}, 2, "exactly one of --sandbox and --config"},
		{"unknown flag", []string{"run", "--sandbox", "--synthtic", "3"}, 2, "synthtic"},
		{"typo in config", []string{"run", "--config", bad}, 2, "departemnt: line 2: unknown key (did you mean departement?)"},
		{"unset secret", []string{"run", "--config", missing}, 2, "PULLJOBS_TEST_UNSET_SECRET is not set"},
		{"missing file", []string{"run", "--config", filepath.Join(dir, "nope.yaml")}, 2, "no such file"},
		{"sandbox flag without sandbox", []string{"run", "--config", bad, "--synthetic", "10"}, 2, "--synthetic only apply with --sandbox"},
		{"a board twice", []string{"sandbox", "--board-key", otherBoardKey, "--board-key", otherBoardKey}, 2, "given twice"},
		{"a bad board key", []string{"sandbox", "--board-key", "B0A2D"}, 2, "40 lowercase hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := pulljobs(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit = %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			if !strings.Contains(out+errOut, tt.out) {
				t.Errorf("output does not say %q:\n%s%s", tt.out, out, errOut)
			}
		})
	}
}

// otherBoardKey is a second board of the sandbox's account.
const otherBoardKey = "2222222222222222222222222222222222222222"

// TestRunSandboxBoards runs on a sandbox of two boards: the run writes to
// the first, seeded, one, and the second stays empty.
func TestRunSandboxBoards(t *testing.T) {
	report := filepath.Join(t.TempDir(), "report.json")
	code, out, errOut := pulljobs(t, "run", "--sandbox", "--synthetic", "50", "--board-key", otherBoardKey, "--board-key", hrflowtest.DefaultBoardKey,
		"--report", report, "--log-level", "warn")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	r := readReport(t, report)
	if r.BoardKey != otherBoardKey || r.Events.Skipped != sandboxKeptJobs || r.Events.Created != 50-sandboxKeptJobs {
		t.Errorf("report on board %s: %+v; want the first board given, seeded", r.BoardKey, r.Events)
	}
}

// TestConfigErrorReport checks a refused configuration still leaves a report
// saying why, before any network call.
func TestConfigErrorReport(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte("origin_parameters:\n  client_id: x\n  client_secret: y\n  departement: '999'\ntarget_parameters:\n  api_secret: ask_x\n  api_user: u@example.com\n  board_key: "+strings.Repeat("a", 40)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "r.json")
	code, _, errOut := pulljobs(t, "run", "--config", cfg, "--report", report)
	if code != 2 {
		t.Fatalf("exit = %d, want 2: %s", code, errOut)
	}
	r := readReport(t, report)
	if r.Status != runstatus.StatusFatal || r.Reason != "bad_origin_parameters" {
		t.Errorf("report = %+v, want fatal bad_origin_parameters", r)
	}
}

// TestListenBeyondLoopback: pulljobs run refuses to expose its embedded
// server beyond loopback without credentials, saying how to give them,
// and runs with them; on loopback it needs none.
func TestListenBeyondLoopback(t *testing.T) {
	code, out, errOut := pulljobs(t, "run", "--sandbox", "--synthetic", "20", "--listen", "0.0.0.0:0")
	if code != 2 || !strings.Contains(errOut, "NATS_USER and NATS_PASSWORD") || !strings.Contains(errOut, "127.0.0.1") {
		t.Errorf("--listen 0.0.0.0:0 without credentials: exit %d\n%s%s\nwant 2, and how to add credentials", code, out, errOut)
	}
	t.Setenv("NATS_USER", "pulljobs")
	t.Setenv("NATS_PASSWORD", "pw-Tq4zR8")
	if code, out, errOut := pulljobs(t, "run", "--sandbox", "--synthetic", "20", "--listen", "127.0.0.1:0", "--log-level", "warn"); code != 0 {
		t.Errorf("--listen 127.0.0.1:0 with credentials: exit %d\n%s%s", code, out, errOut)
	} else if strings.Contains(out+errOut, "pw-Tq4zR8") {
		t.Errorf("the output shows the password:\n%s%s", out, errOut)
	}
	t.Setenv("NATS_CA", "/etc/nats/ca.pem")
	if code, _, errOut := pulljobs(t, "run", "--sandbox", "--synthetic", "20", "--listen", "127.0.0.1:0"); code != 2 || !strings.Contains(errOut, "no TLS") {
		t.Errorf("--listen with NATS_CA: exit %d, %s; want a refusal: the embedded server serves no TLS", code, errOut)
	}
}
