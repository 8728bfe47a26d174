// Package telemetry installs the OpenTelemetry SDK in a pulljobs binary: a
// TracerProvider that exports spans as the standard OTEL_* environment
// variables say, a MeterProvider whose instruments are served in Prometheus
// exposition format, and the W3C trace-context propagator. It also serves
// /metrics, /healthz and /readyz (Server) and counts and times the calls of
// an HTTP client (Transport).
//
// Library packages of pulljobs only use the OpenTelemetry API (otel.Tracer,
// otel.Meter); a program that installs nothing gets no-op spans and
// instruments. Only binaries call Start.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// The environment variables Start reads itself; the exporters read the
// others (endpoints, headers, time-outs, compression, batching, sampling).
const (
	envSDKDisabled    = "OTEL_SDK_DISABLED"
	envTracesExporter = "OTEL_TRACES_EXPORTER"
	envEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	protocolGRPC      = "grpc"
	protocolHTTP      = "http/protobuf" // the specification's default
	exporterOTLP      = "otlp"
	exporterConsole   = "console"
	exporterNone      = "none"
)

// ErrConfig wraps the errors of an OTEL_* variable that Start cannot use:
// the caller treats them as a usage error.
var ErrConfig = errors.New("telemetry configuration")

// Options configure Start.
type Options struct {
	// ServiceName is the resource's service.name, unless OTEL_SERVICE_NAME or
	// OTEL_RESOURCE_ATTRIBUTES names the service.
	ServiceName string
	// Metrics installs a MeterProvider, so that the instruments every package
	// creates through otel.Meter are recorded and MetricsHandler serves them.
	// Without it the global MeterProvider stays the no-op one.
	Metrics bool
	// Console receives the spans when OTEL_TRACES_EXPORTER is console; nil
	// means stderr, since stdout carries reports and formatted jobs.
	Console io.Writer
	// Logger receives the SDK's errors, such as a collector that cannot be
	// reached; nil means slog.Default().
	Logger *slog.Logger
}

// Telemetry is the SDK that Start installed. Its zero value is not usable.
type Telemetry struct {
	tp       *sdktrace.TracerProvider // nil when no span is exported
	mp       *sdkmetric.MeterProvider // nil without Options.Metrics
	registry *prometheus.Registry
	once     sync.Once
	err      error
}

// Start installs the global propagator (W3C trace context and baggage) and,
// as the environment and opts ask, a TracerProvider and a MeterProvider set
// as the global ones. The spans are exported when OTEL_TRACES_EXPORTER says
// so (otlp, console or none, comma-separated), or, when it is unset, to OTLP
// when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
// set; OTLP goes over OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, http/protobuf
// (the default) or grpc. With none of these set, or OTEL_SDK_DISABLED=true,
// no TracerProvider is installed and spans cost what no-op spans cost.
//
// Start does not connect to a collector: exports begin with the first
// batch, and a collector that cannot be reached is logged, not fatal. An
// unusable variable is an error wrapping ErrConfig. The caller must call
// Shutdown once before exiting, to flush the spans.
//
// Instruments and tracers that packages created through the otel API before
// Start are bound to the first providers a process installs: call Start
// once per process.
func Start(ctx context.Context, opts Options) (*Telemetry, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if strings.EqualFold(strings.TrimSpace(os.Getenv(envSDKDisabled)), "true") {
		return &Telemetry{}, nil
	}
	exporters, err := traceExporters()
	if err != nil {
		return nil, err
	}
	if len(exporters) == 0 && !opts.Metrics {
		return &Telemetry{}, nil
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("opentelemetry", "err", err)
	}))
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(semconv.ServiceName(opts.ServiceName)),
		resource.WithFromEnv(), // after the default name, so that it wins
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: OTEL_RESOURCE_ATTRIBUTES or OTEL_SERVICE_NAME: %w", ErrConfig, err)
	}
	t := &Telemetry{}
	if len(exporters) > 0 {
		tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
		var built []sdktrace.SpanExporter
		for _, name := range exporters {
			exp, err := newTraceExporter(ctx, name, opts.Console)
			if err != nil {
				for _, e := range built {
					_ = e.Shutdown(ctx)
				}
				return nil, err
			}
			built = append(built, exp)
			tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
		}
		t.tp = sdktrace.NewTracerProvider(tpOpts...)
		otel.SetTracerProvider(t.tp)
	}
	if opts.Metrics {
		if err := t.startMetrics(res); err != nil {
			_ = t.Shutdown(ctx)
			return nil, err
		}
	}
	return t, nil
}

// traceExporters returns the exporters the environment asks for: none,
// otlp, console, or both.
func traceExporters() ([]string, error) {
	v := strings.TrimSpace(os.Getenv(envTracesExporter))
	if v == "" {
		if os.Getenv(envEndpoint) != "" || os.Getenv(envTracesEndpoint) != "" {
			return []string{exporterOTLP}, nil
		}
		return nil, nil
	}
	var names []string
	for name := range strings.SplitSeq(v, ",") {
		switch name = strings.ToLower(strings.TrimSpace(name)); name {
		case exporterNone:
		case exporterOTLP, exporterConsole:
			names = append(names, name)
		default:
			return nil, fmt.Errorf("%w: %s=%q: unknown exporter %q (want otlp, console or none)", ErrConfig, envTracesExporter, v, name)
		}
	}
	return names, nil
}

// newTraceExporter builds the exporter called name. The OTLP exporters read
// their endpoint, headers, time-out, compression and TLS settings from the
// environment themselves.
func newTraceExporter(ctx context.Context, name string, console io.Writer) (sdktrace.SpanExporter, error) {
	if name == exporterConsole {
		if console == nil {
			console = os.Stderr
		}
		return stdouttrace.New(stdouttrace.WithWriter(console))
	}
	protocol := os.Getenv(envTracesProtocol)
	if protocol == "" {
		protocol = os.Getenv(envProtocol)
	}
	switch strings.TrimSpace(protocol) {
	case "", protocolHTTP:
		return otlptracehttp.New(ctx)
	case protocolGRPC:
		return otlptracegrpc.New(ctx)
	}
	return nil, fmt.Errorf("%w: OTLP protocol %q: want %s or %s", ErrConfig, protocol, protocolHTTP, protocolGRPC)
}

// startMetrics installs a MeterProvider read by a Prometheus exporter into a
// registry of this Telemetry's own, with the Go runtime's and the process's
// collectors beside it.
func (t *Telemetry) startMetrics(res *resource.Resource) error {
	t.registry = prometheus.NewRegistry()
	if err := t.registry.Register(collectors.NewGoCollector()); err != nil {
		return err
	}
	if err := t.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return err
	}
	// No otel_scope_* labels: the metric names are unique across packages,
	// and label sets stay small.
	exp, err := otelprom.New(otelprom.WithRegisterer(t.registry), otelprom.WithoutScopeInfo())
	if err != nil {
		return fmt.Errorf("prometheus exporter: %w", err)
	}
	t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	otel.SetMeterProvider(t.mp)
	return nil
}

// Tracing reports whether spans are exported.
func (t *Telemetry) Tracing() bool { return t.tp != nil }

// MetricsHandler serves the metrics in Prometheus exposition format (or
// OpenMetrics, when the scraper asks for it). Without Options.Metrics it
// answers 404.
func (t *Telemetry) MetricsHandler() http.Handler {
	if t.registry == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Shutdown exports the spans not yet sent, then stops the providers; ctx
// bounds the time it takes. Calls after the first return the first's result.
// Spans ended after Shutdown are dropped.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.once.Do(func() {
		if t.tp != nil {
			if err := t.tp.Shutdown(ctx); err != nil {
				t.err = fmt.Errorf("flush spans: %w", err)
			}
		}
		if t.mp != nil {
			t.err = errors.Join(t.err, t.mp.Shutdown(ctx))
		}
	})
	return t.err
}
