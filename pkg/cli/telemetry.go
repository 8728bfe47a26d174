package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pulljobs/pulljobs/pkg/telemetry"
)

// TelemetryHelp is the part of a binary's --help about --http and the
// OpenTelemetry variables.
const TelemetryHelp = `Telemetry: --http ADDR serves /metrics (Prometheus), /healthz and /readyz.
Spans are exported as the OpenTelemetry variables say: OTEL_EXPORTER_OTLP_ENDPOINT
(or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), OTEL_EXPORTER_OTLP_PROTOCOL
(http/protobuf or grpc), OTEL_TRACES_EXPORTER (otlp, console or none),
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES. None set: nothing is exported.
`

// flushTimeout bounds the export of the last spans when a binary exits: a
// collector that is down must not hold the exit for long.
const flushTimeout = 5 * time.Second

// RegisterHTTP adds --http to fs.
func (c *Common) RegisterHTTP(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http", "", "serve /metrics, /healthz and /readyz on `ADDR` (host:port, e.g. :9090; default none)")
}

// Telemetry is a binary's OpenTelemetry SDK and, with --http, its HTTP
// server. It owns the server's goroutine: Close stops and waits for it.
type Telemetry struct {
	sdk    *telemetry.Telemetry
	srv    *telemetry.Server // nil without --http
	ctx    context.Context   // the binary's: /readyz fails once it ends
	stop   context.CancelFunc
	wg     sync.WaitGroup
	logger *slog.Logger
}

// StartTelemetry installs the OpenTelemetry SDK (see telemetry.Start) with
// service as the default service.name and, when --http is set, serves
// /metrics, /healthz and /readyz there until Close. /readyz answers 503
// until Ready, and again once ctx ends (the process is stopping). An
// unusable OTEL_* variable is a usage error. The caller defers Close.
func (c *Common) StartTelemetry(ctx context.Context, service string, logger *slog.Logger) (*Telemetry, error) {
	sdk, err := telemetry.Start(ctx, telemetry.Options{ServiceName: service, Metrics: c.HTTPAddr != "", Logger: logger})
	if errors.Is(err, telemetry.ErrConfig) {
		return nil, Usagef("%v", err)
	}
	if err != nil {
		return nil, err
	}
	t := &Telemetry{sdk: sdk, ctx: ctx, logger: logger}
	if c.HTTPAddr == "" {
		return t, nil
	}
	if t.srv, err = telemetry.Listen(c.HTTPAddr, sdk.MetricsHandler()); err != nil {
		t.shutdownSDK()
		return nil, Usagef("--http: %v", err)
	}
	logger.Info("serving metrics and health", "addr", t.srv.Addr().String())
	// The server outlives ctx: a worker that drains after a signal still
	// answers scrapes and probes until Close.
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	t.stop = stop
	t.wg.Go(func() {
		if err := t.srv.Serve(sctx); err != nil {
			logger.Error("telemetry server stopped", "err", err)
		}
	})
	return t, nil
}

// Addr is the address the --http server listens on ("" without --http):
// the port chosen when --http asked for port 0.
func (t *Telemetry) Addr() string {
	if t.srv == nil {
		return ""
	}
	return t.srv.Addr().String()
}

// Mux is the --http server's handler, for more handlers on the same
// address (a status page at "/"); nil without --http.
func (t *Telemetry) Mux() *http.ServeMux {
	if t.srv == nil {
		return nil
	}
	return t.srv.Mux()
}

// Ready makes /readyz answer 200 while nc is connected and the process's
// context has not ended. Call it once the topology is declared: after
// Open, or pipeline.New and the clients that declare their own streams.
func (t *Telemetry) Ready(nc *nats.Conn) {
	if t.srv == nil {
		return
	}
	t.srv.SetReady(func() error {
		if t.ctx.Err() != nil {
			return errors.New("shutting down")
		}
		if !nc.IsConnected() {
			return errors.New("NATS " + nc.Status().String())
		}
		return nil
	})
}

// Close stops the --http server and waits for it, then flushes the spans
// not yet exported, within flushTimeout. A failed flush is logged, not
// returned: telemetry does not change a run's outcome. Calls after the
// first do nothing.
func (t *Telemetry) Close() {
	if t.stop != nil {
		t.stop()
		t.wg.Wait()
	}
	t.shutdownSDK()
}

func (t *Telemetry) shutdownSDK() {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	if err := t.sdk.Shutdown(ctx); err != nil {
		t.logger.Warn("telemetry shutdown", "err", err)
	}
}

// UsageFunc returns a flag.FlagSet's Usage that prints text (which ends
// with "Flags:"), fs's flags, and TelemetryHelp.
func UsageFunc(fs *flag.FlagSet, text string) func() {
	return func() {
		fmt.Fprint(fs.Output(), text)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), "\n"+TelemetryHelp)
	}
}
