package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// exitCoder is an error that chooses its exit code, as config.Error and
// pipeline.BusyError do.
type exitCoder struct {
	msg  string
	code int
}

func (e exitCoder) Error() string { return e.msg }
func (e exitCoder) ExitCode() int { return e.code }

func TestExitCode(t *testing.T) {
	tests := []struct {
		err    error
		code   int
		stderr string
	}{
		{nil, 0, ""},
		{flag.ErrHelp, 0, ""},
		{&StatusError{Status: runstatus.StatusSuccessWithFailures}, 3, ""},
		{&StatusError{Status: runstatus.StatusFatal, Reason: "read_failure"}, 1, "read_failure"},
		{Usagef("no command"), 2, "no command"},
		{fmt.Errorf("load: %w", exitCoder{"origin_parameters.x: bad", ExitUsage}), 2, "origin_parameters.x"},
		{fmt.Errorf("start: %w", exitCoder{"board busy", ExitBoardBusy}), 75, "board busy"},
		{errors.New("connect to nats: refused"), 1, "refused"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		if got := ExitCode(tt.err, &stderr); got != tt.code {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.code)
		}
		if !strings.Contains(stderr.String(), tt.stderr) || (tt.stderr == "" && stderr.Len() > 0) {
			t.Errorf("ExitCode(%v) printed %q, want %q", tt.err, stderr.String(), tt.stderr)
		}
	}
}

func TestForStatus(t *testing.T) {
	if err := ForStatus(runstatus.Report{Status: runstatus.StatusSuccess}); err != nil {
		t.Errorf("success: %v, want nil", err)
	}
	var se *StatusError
	if err := ForStatus(runstatus.Report{Status: runstatus.StatusFatal, Reason: "write_failure"}); !errors.As(err, &se) || se.Reason != "write_failure" {
		t.Errorf("fatal: %v, want a StatusError with the reason", err)
	}
}

func TestParse(t *testing.T) {
	newFS := func() (*flag.FlagSet, *int) {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		n := fs.Int("n", 1, "a number")
		fs.Usage = func() { fmt.Fprintln(fs.Output(), "Usage: x [-n N]"); fs.PrintDefaults() }
		return fs, n
	}
	var out bytes.Buffer
	fs, _ := newFS()
	if err := Parse(fs, []string{"--help"}, &out); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "Usage: x") {
		t.Errorf("--help: err %v, output %q", err, out.String())
	}
	var ue *UsageError
	fs, _ = newFS()
	if err := Parse(fs, []string{"-m", "3"}, &out); !errors.As(err, &ue) {
		t.Errorf("unknown flag: %v, want a UsageError", err)
	}
	fs, _ = newFS()
	if err := Parse(fs, []string{"extra"}, &out); !errors.As(err, &ue) || !strings.Contains(err.Error(), `"extra"`) {
		t.Errorf("extra argument: %v, want a UsageError naming it", err)
	}
	fs, n := newFS()
	if err := Parse(fs, []string{"-n", "3"}, &out); err != nil || *n != 3 {
		t.Errorf("-n 3: %v, n = %d", err, *n)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                                  "nats://127.0.0.1:4222",
		"nats://user:secret@10.0.0.1:4222":                       "nats://***@10.0.0.1:4222",
		"nats://token@nats.example.com:422":                      "nats://***@nats.example.com:422",
		"nats://a:s1@h1:4222,nats://b:s2@h2:4222,nats://h3:4222": "nats://***@h1:4222,nats://***@h2:4222,nats://h3:4222",
		"user:secret@10.0.0.1:4222":                              "***@10.0.0.1:4222",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	c := Common{LogFormat: "json", LogLevel: "warn"}
	l, err := c.Logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "k", "v")
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `"msg":"shown"`) {
		t.Errorf("log = %q, want only the warning, as JSON", got)
	}
	for _, bad := range []Common{{LogFormat: "xml", LogLevel: "info"}, {LogFormat: "text", LogLevel: "loud"}} {
		if _, err := bad.Logger(&buf); err == nil {
			t.Errorf("%+v: err = nil, want a usage error", bad)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		seconds float64
		want    string
	}{{0.42, "0.4s"}, {12.4, "12s"}, {184, "3m04s"}, {7500, "2h05m"}} {
		if got := FormatDuration(tc.seconds); got != tc.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tc.seconds, got, tc.want)
		}
	}
}

func TestExitCodeOf(t *testing.T) {
	for status, want := range map[runstatus.Status]int{
		runstatus.StatusSuccess: ExitSuccess, runstatus.StatusSuccessWithFailures: ExitSuccessWithFailures,
		runstatus.StatusFatal: ExitFatal, runstatus.StatusRunning: ExitFatal,
	} {
		if got := ExitCodeOf(status); got != want {
			t.Errorf("ExitCodeOf(%s) = %d, want %d", status, got, want)
		}
	}
}
