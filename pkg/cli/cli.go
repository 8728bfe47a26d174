// Package cli is the command-line plumbing the four pulljobs binaries
// share: common flags, logging, the NATS connection, signals, reports,
// durations as people read them, and exit codes. Each binary's main parses
// its flags, builds its dependencies (with this package and pkg/worker),
// runs, and exits in one place with ExitCode. It knows nothing of the APIs
// or the formats, so that readers of run status (the status page) can use
// it.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"

	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
)

// Common are the flags every worker binary takes.
type Common struct {
	NATS       NATS
	ConfigPath string
	LogFormat  string
	LogLevel   string
	HTTPAddr   string // --http: where to serve metrics and health; "" for nowhere
}

// Register adds --nats, --config, --http, --log-format and --log-level to fs.
func (c *Common) Register(fs *flag.FlagSet) {
	c.RegisterNATS(fs)
	fs.StringVar(&c.ConfigPath, "config", "", "configuration `file` (YAML; see the README)")
	c.RegisterHTTP(fs)
	c.RegisterLog(fs)
}

// RegisterNATS adds --nats and the flags of NATS credentials and TLS to
// fs (see NATS).
func (c *Common) RegisterNATS(fs *flag.FlagSet) {
	c.NATS.RegisterURL(fs)
	c.NATS.RegisterAuth(fs)
}

// RegisterLog adds --log-format and --log-level to fs.
func (c *Common) RegisterLog(fs *flag.FlagSet) {
	fs.StringVar(&c.LogFormat, "log-format", "", "log format: text or json (default text on a terminal, json otherwise)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
}

// Logger returns the logger the flags ask for, writing to w (stderr).
func (c *Common) Logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, Usagef("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	format := c.LogFormat
	if format == "" {
		format = "json"
		if IsTerminal(w) {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, Usagef("--log-format %q: want text or json", c.LogFormat)
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// SignalContext returns a context that ends on SIGINT or SIGTERM: the
// graceful stop of every binary.
func SignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// UsageError is a misuse of a command: exit code 2.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error { return &UsageError{fmt.Sprintf(format, args...)} }

// StatusError carries a run's status to the exit code.
type StatusError struct {
	Status rs.Status
	Reason string
}

func (e *StatusError) Error() string {
	if e.Reason == "" {
		return "run ended " + string(e.Status)
	}
	return "run ended " + string(e.Status) + ": " + e.Reason
}

// ForStatus returns nil for a successful run, a *StatusError otherwise.
func ForStatus(r rs.Report) error {
	if r.Status == rs.StatusSuccess {
		return nil
	}
	return &StatusError{Status: r.Status, Reason: r.Reason}
}

// Exit codes of every command.
const (
	ExitSuccess             = 0
	ExitFatal               = 1
	ExitUsage               = 2 // invalid configuration or usage
	ExitSuccessWithFailures = 3
	ExitBoardBusy           = 75 // EX_TEMPFAIL: the board is busy with another run; try again later
)

// ExitCodes lists, for the --help of a command that runs or publishes a
// run, the codes ExitCode returns and what a scheduler should make of them.
const ExitCodes = `  0   success
  3   success with failures: some items failed, or sync was refused by a
      guard (the summary and the JSON report name it); look at the report
  1   fatal: the run failed
  2   invalid configuration or usage, before any network call
  75  the board is busy with a run of another configuration: try again later
`

// ExitCoder is an error that chooses its command's exit code: a
// configuration error is a usage error (ExitUsage), a busy board asks to
// try again later (ExitBoardBusy).
type ExitCoder interface {
	error
	ExitCode() int
}

// ExitCode prints err on stderr, unless it only carries a status or help,
// and returns the exit code for it: ExitCodeOf the status of a
// *StatusError (a warning for a run that succeeded with failures), 0 for
// --help, 2 for a usage error, an ExitCoder's own code, 1 for anything
// else.
func ExitCode(err error, stderr io.Writer) int {
	var se *StatusError
	var ue *UsageError
	var ec ExitCoder
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitSuccess
	case errors.As(err, &se):
		code := ExitCodeOf(se.Status)
		switch {
		case code == ExitSuccessWithFailures && se.Reason != "":
			fmt.Fprintln(stderr, "warning:", err)
		case code != ExitSuccessWithFailures:
			fmt.Fprintln(stderr, "error:", err)
		}
		return code
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "error:", err)
		return ExitUsage
	case errors.As(err, &ec):
		fmt.Fprintln(stderr, "error:", err)
		return ec.ExitCode()
	}
	fmt.Fprintln(stderr, "error:", err)
	return ExitFatal
}

// ExitCodeOf maps a run's status to the exit code of the command that ran
// it.
func ExitCodeOf(status rs.Status) int {
	switch status {
	case rs.StatusSuccess:
		return ExitSuccess
	case rs.StatusSuccessWithFailures:
		return ExitSuccessWithFailures
	}
	return ExitFatal
}

// FormatDuration prints seconds as people read them: 0.4s, 12s, 3m04s or
// 2h05m.
func FormatDuration(seconds float64) string {
	d := time.Duration(seconds * float64(time.Second))
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%.0fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// WriteReport writes r as indented JSON to path; "-" is stdout.
func WriteReport(path string, r rs.Report, stdout io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// Parse parses args with fs, turning flag errors into usage errors. On -h
// or --help it prints the usage to stdout and returns flag.ErrHelp.
func Parse(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return err
	}
	if err != nil {
		return Usagef("%v (see --help)", err)
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected argument %q (see --help)", fs.Arg(0))
	}
	return nil
}
