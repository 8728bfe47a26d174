package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/config"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		err    error
		code   int
		stderr string
	}{
		{nil, 0, ""},
		{flag.ErrHelp, 0, ""},
		{&StatusError{Status: pipeline.StatusSuccessWithFailures}, 3, ""},
		{&StatusError{Status: pipeline.StatusFatal, Reason: "read_failure"}, 1, "read_failure"},
		{Usagef("no command"), 2, "no command"},
		{fmt.Errorf("load: %w", &config.Error{Key: "origin_parameters.x", Err: errors.New("bad")}), 2, "origin_parameters.x"},
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
	if err := ForStatus(pipeline.Report{Status: pipeline.StatusSuccess}); err != nil {
		t.Errorf("success: %v, want nil", err)
	}
	var se *StatusError
	if err := ForStatus(pipeline.Report{Status: pipeline.StatusFatal, Reason: "write_failure"}); !errors.As(err, &se) || se.Reason != "write_failure" {
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
		"nats://127.0.0.1:4222":             "nats://127.0.0.1:4222",
		"nats://user:secret@10.0.0.1:4222":  "nats://***@10.0.0.1:4222",
		"nats://token@nats.example.com:422": "nats://***@nats.example.com:422",
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

func TestProgressLine(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf)
	p.Update(pipeline.Progress{Fetched: 150, Formatted: 120, Pushed: 100, Done: 100})
	p.Update(pipeline.Progress{Fetched: 300, Sealed: true, Expected: 300, Formatted: 300, Pushed: 250, Done: 250})
	p.Clear()
	got := buf.String()
	for _, want := range []string{"fetched 150…", "fetched 300 · formatted 300 · pushed 250 · done 250/300", "ETA", "\r\x1b[K"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress output %q lacks %q", got, want)
		}
	}
}
