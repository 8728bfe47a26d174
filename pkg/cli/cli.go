// Package cli is the command-line plumbing the four pulljobs binaries share:
// common flags, logging, the NATS connection, the API clients built from a
// configuration, signals, reports and exit codes. Each binary's main parses
// its flags, builds its dependencies with this package, runs, and exits in
// one place with ExitCode.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/term"

	"github.com/pulljobs/pulljobs/pkg/config"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/ratelimit"
	"github.com/pulljobs/pulljobs/pkg/telemetry"
)

// DefaultNATSURL is used when neither --nats nor $NATS_URL says otherwise.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// Common are the flags every worker binary takes.
type Common struct {
	NATSURL    string
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

// RegisterNATS adds --nats to fs, $NATS_URL by default, else DefaultNATSURL.
func (c *Common) RegisterNATS(fs *flag.FlagSet) {
	def := os.Getenv("NATS_URL")
	if def == "" {
		def = DefaultNATSURL
	}
	fs.StringVar(&c.NATSURL, "nats", def, "NATS server `URL`s, comma-separated for a cluster ($NATS_URL when set)")
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

// LoadConfig reads the configuration file and checks what role needs.
func (c *Common) LoadConfig(role config.Role) (config.Config, error) {
	if c.ConfigPath == "" {
		if role == config.RoleFormatter {
			return config.Config{}, nil
		}
		return config.Config{}, Usagef("--config is required")
	}
	cfg, err := config.Load(c.ConfigPath)
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate(role)
}

// Connect connects to NATS: it reconnects forever and logs the
// connection's ups and downs. A long-lived worker (waitForServer) also
// waits for a server that is not up yet, as when a fleet starts together; a
// one-shot command fails at once instead, naming the URL.
func Connect(url, name string, waitForServer bool, logger *slog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(waitForServer),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { logger.Info("nats reconnected", "server", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { logger.Warn("nats", "err", err) }),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to nats at %s: %w", redactURL(url), err)
	}
	return nc, nil
}

// redactURL hides a password in a NATS URL.
func redactURL(u string) string {
	if at := strings.LastIndexByte(u, '@'); at > 0 {
		if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
			return u[:scheme+3] + "***" + u[at:]
		}
	}
	return u
}

// SignalContext returns a context that ends on SIGINT or SIGTERM: the
// graceful stop of every binary.
func SignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// The APIs' names in metric labels, and the route templates of their calls
// (see telemetry.NewTransport): literal ones before the wildcard ones.
const (
	apiHrFlow        = "hrflow"
	apiFranceTravail = "francetravail"
)

var (
	hrflowRoutes = []string{
		"GET /job/indexing", "POST /job/indexing", "PUT /job/indexing", "PATCH /job/indexing/archive",
		"GET /storing/jobs", "POST /text/parsing",
	}
	franceTravailRoutes = []string{
		"GET /offres/search", "GET /offres/{id}", "GET /referentiel/{name}", "POST /connexion/oauth2/access_token",
	}
)

// httpClient keeps enough idle connections for a pusher's concurrency, and
// counts and times the calls to api.
func httpClient(api string, routes []string) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 128
	return &http.Client{Transport: telemetry.NewTransport(t, api, routes...)}
}

// FranceTravail builds the France Travail client of cfg.
func FranceTravail(cfg config.Config, logger *slog.Logger) (*francetravail.Client, error) {
	fc := cfg.FranceTravail()
	fc.Logger = logger
	fc.HTTPClient = httpClient(apiFranceTravail, franceTravailRoutes)
	fc.Retry.Name = apiFranceTravail
	return francetravail.NewClient(fc)
}

// Open connects to NATS at url as name (see Connect), and opens the
// pipeline with settings. close releases both, in order.
func Open(ctx context.Context, url, name string, waitForServer bool, settings pipeline.Settings, logger *slog.Logger) (p *pipeline.Pipeline, nc *nats.Conn, close func(), err error) {
	nc, err = Connect(url, name, waitForServer, logger)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err = pipeline.New(ctx, nc, pipeline.Options{Settings: settings, Logger: logger})
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	return p, nc, func() { p.Close(); nc.Close() }, nil
}

// HrFlow builds the HrFlow client of cfg, with the rate limit that every
// pusher connected to nc's NATS system shares (none when the configuration
// sets 0).
func HrFlow(ctx context.Context, cfg config.Config, nc *nats.Conn, logger *slog.Logger) (*hrflow.Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	hc := cfg.HrFlow()
	hc.Logger = logger
	hc.HTTPClient = httpClient(apiHrFlow, hrflowRoutes)
	hc.Retry.Name = apiHrFlow
	if perSecond := cfg.HrFlowRateLimit(); perSecond > 0 {
		l, err := ratelimit.New(ctx, js, apiHrFlow, perSecond)
		if err != nil {
			return nil, err
		}
		hc.Limiter = l
	}
	return hrflow.NewClient(hc)
}

// UsageError is a misuse of a command: exit code 2.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error { return &UsageError{fmt.Sprintf(format, args...)} }

// StatusError carries a run's status to the exit code.
type StatusError struct {
	Status, Reason string
}

func (e *StatusError) Error() string {
	if e.Reason == "" {
		return "run ended " + e.Status
	}
	return "run ended " + e.Status + ": " + e.Reason
}

// ForStatus returns nil for a successful run, a *StatusError otherwise.
func ForStatus(r pipeline.Report) error {
	if r.Status == pipeline.StatusSuccess {
		return nil
	}
	return &StatusError{Status: r.Status, Reason: r.Reason}
}

// ExitCodes lists, for the --help of a command that runs or publishes a
// run, the codes ExitCode returns and what a scheduler should make of them.
const ExitCodes = `  0   success
  3   success with failures: some items failed, or sync was refused by a
      guard (the summary and the JSON report name it); look at the report
  1   fatal: the run failed
  2   invalid configuration or usage, before any network call
  75  the board is busy with a run of another configuration: try again later
`

// ExitCode prints err on stderr, unless it only carries a status or help,
// and returns the exit code for it: 0 success (and --help), 3 a run that
// succeeded with failures (a sync refused by a guard among them), 2 invalid
// configuration or usage, 75 a board busy with a run of another
// configuration (EX_TEMPFAIL: try again later), 1 anything else.
func ExitCode(err error, stderr io.Writer) int {
	var se *StatusError
	var ue *UsageError
	var ce *config.Error
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return pipeline.ExitSuccess
	case errors.As(err, &se):
		if se.Status == pipeline.StatusSuccessWithFailures {
			if se.Reason != "" {
				fmt.Fprintln(stderr, "warning:", err)
			}
			return pipeline.ExitSuccessWithFailures
		}
		fmt.Fprintln(stderr, "error:", err)
		return pipeline.ExitFatal
	case errors.As(err, &ue), errors.As(err, &ce):
		fmt.Fprintln(stderr, "error:", err)
		return pipeline.ExitUsage
	case errors.Is(err, pipeline.ErrBoardBusy):
		fmt.Fprintln(stderr, "error:", err)
		return pipeline.ExitBoardBusy
	}
	fmt.Fprintln(stderr, "error:", err)
	return pipeline.ExitFatal
}

// ConfigReport is the report of a run refused before it started, for a
// configuration error: status fatal, reason bad_origin_parameters and so on.
func ConfigReport(err error, board string) pipeline.Report {
	reason := "bad_configuration"
	var ce *config.Error
	if errors.As(err, &ce) {
		reason = ce.Reason()
	}
	now := time.Now().UTC()
	return pipeline.Report{Status: pipeline.StatusFatal, Reason: reason, BoardKey: board, StartedAt: now, FinishedAt: now,
		Sync: pipeline.SyncReport{RefusedReason: "the run did not start: " + err.Error()}}
}

// WriteReport writes r as indented JSON to path; "-" is stdout.
func WriteReport(path string, r pipeline.Report, stdout io.Writer) error {
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

// AwaitReport waits for run's report, showing progress on a terminal
// stderr, then prints the report as a table on stdout, writes it as JSON to
// reportPath when set, and returns ForStatus of it.
func AwaitReport(ctx context.Context, p *pipeline.Pipeline, run, reportPath string, stdout, stderr io.Writer) error {
	var onProgress func(pipeline.Progress)
	var pr *Progress
	if IsTerminal(stderr) {
		pr = NewProgress(stderr)
		onProgress = pr.Update
	}
	r, err := p.Wait(ctx, run, onProgress)
	if pr != nil {
		pr.Clear()
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("stopped waiting for run %s; it goes on without us (run the same command to follow it again): %w", run, err)
		}
		return err
	}
	if err := r.WriteTable(stdout); err != nil {
		return err
	}
	if reportPath != "" {
		if err := WriteReport(reportPath, r, stdout); err != nil {
			return err
		}
	}
	return ForStatus(r)
}
