// Package worker builds what a pulljobs process runs from its
// configuration: the France Travail and HrFlow clients (instrumented, the
// HrFlow one behind the quota every replica shares), the pipeline on its
// NATS connection, and the wait for a run's report with its progress line.
// The four binaries share it; pkg/cli holds the rest of their plumbing.
package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/config"
	"github.com/pulljobs/pulljobs/pkg/fairshare"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/ratelimit"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/telemetry"
)

// LoadConfig reads the configuration file at path (--config) and checks
// what role needs. A formatter may go without one.
func LoadConfig(path string, role config.Role) (config.Config, error) {
	if path == "" {
		if role == config.RoleFormatter {
			return config.Config{}, nil
		}
		return config.Config{}, cli.Usagef("--config is required")
	}
	cfg, err := config.Load(path)
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate(role)
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

// FranceTravail builds the France Travail client of cfg, with the
// Retry-After hold that every process connected to nc's NATS system with
// the same client id shares (FranceTravailHold).
func FranceTravail(ctx context.Context, cfg config.Config, nc *nats.Conn, logger *slog.Logger) (*francetravail.Client, error) {
	fc := cfg.FranceTravail()
	fc.Logger = logger
	fc.HTTPClient = httpClient(apiFranceTravail, franceTravailRoutes)
	fc.Retry.Name = apiFranceTravail
	hold, err := FranceTravailHold(ctx, nc, fc.ClientID)
	if err != nil {
		return nil, err
	}
	fc.Limiter = hold
	return francetravail.NewClient(fc)
}

// FranceTravailHold returns the hold of the France Travail quota of the
// application clientID, shared through nc's NATS system: a 429's
// Retry-After to one process pauses every process of the application. The
// quota is named by a digest of the client id, which is no secret but
// need not be spelt out in NATS.
func FranceTravailHold(ctx context.Context, nc *nats.Conn, clientID string) (*ratelimit.Shared, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(clientID))
	return ratelimit.NewHold(ctx, js, apiFranceTravail, hex.EncodeToString(sum[:8]))
}

// Open connects to NATS as n says, as name (see cli.Connect), and opens
// the pipeline for stages with settings. close releases both, in order.
func Open(ctx context.Context, n cli.NATS, name string, waitForServer bool, stages pipeline.Stages, settings pipeline.Settings, logger *slog.Logger) (p *pipeline.Pipeline, nc *nats.Conn, close func(), err error) {
	nc, err = cli.Connect(n, name, waitForServer, logger)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err = cli.Attach(ctx, nc, func(ctx context.Context) (*pipeline.Pipeline, error) {
		return pipeline.New(ctx, nc, pipeline.Options{Settings: settings, Logger: logger, Stages: stages})
	})
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	return p, nc, func() { p.Close(); nc.Close() }, nil
}

// HrFlow builds the HrFlow client of cfg, with the rate limit that every
// pusher connected to nc's NATS system shares: fixed, learned (auto), or
// none when the configuration sets 0; the runs in flight share it fairly
// (fairshare.Gate).
func HrFlow(ctx context.Context, cfg config.Config, nc *nats.Conn, logger *slog.Logger) (*hrflow.Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	hc := cfg.HrFlow()
	hc.Logger = logger
	hc.HTTPClient = httpClient(apiHrFlow, hrflowRoutes)
	hc.Retry.Name = apiHrFlow
	var l *ratelimit.Shared
	switch r := cfg.HrFlowRateLimit(); {
	case r.Auto:
		l, err = ratelimit.NewAdaptive(ctx, js, apiHrFlow, ratelimit.AdaptiveOptions{})
	case r.PerSecond > 0:
		l, err = ratelimit.New(ctx, js, apiHrFlow, r.PerSecond)
	}
	if err != nil {
		return nil, err
	}
	if l != nil {
		// The runs in flight share the quota fairly, call by call: a run
		// that starts beside a long one is not served after its calls
		// waiting. The limiter itself hears every answer, to learn.
		hc.Limiter, hc.Observer = fairshare.NewGate(l), l
	}
	return hrflow.NewClient(hc)
}

// ConfigReport is the report of a run refused before it started, for a
// configuration error: status fatal, reason bad_origin_parameters and so on.
func ConfigReport(err error, board string) rs.Report {
	reason := "bad_configuration"
	var ce *config.Error
	if errors.As(err, &ce) {
		reason = ce.Reason()
	}
	now := time.Now().UTC()
	return rs.Report{Status: rs.StatusFatal, Reason: reason, BoardKey: board, StartedAt: now, FinishedAt: now,
		Sync: rs.SyncReport{RefusedReason: "the run did not start: " + err.Error()}}
}

// AwaitReport waits for run's report, showing progress on a terminal
// stderr, then prints the report as a table on stdout, writes it as JSON to
// reportPath when set, and returns cli.ForStatus of it.
func AwaitReport(ctx context.Context, p *pipeline.Pipeline, run, reportPath string, stdout, stderr io.Writer) error {
	var onProgress func(pipeline.Progress)
	var pr *Progress
	if cli.IsTerminal(stderr) {
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
		if err := cli.WriteReport(reportPath, r, stdout); err != nil {
			return err
		}
	}
	return cli.ForStatus(r)
}
