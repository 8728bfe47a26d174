package telemetry

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/goleak"

	"github.com/pulljobs/pulljobs/pkg/telemetry/telemetrytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// otelEnv are the variables Start and the exporters read; every test starts
// with none of them set.
var otelEnv = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_EXPORTER_OTLP_TIMEOUT",
}

// start runs Start with env set over an empty OTEL_* environment, and
// restores the no-op global providers when the test ends.
func start(t testing.TB, opts Options, env ...string) (*Telemetry, error) {
	t.Helper()
	for _, k := range otelEnv {
		t.Setenv(k, "")
	}
	for i := 0; i+1 < len(env); i += 2 {
		t.Setenv(env[i], env[i+1])
	}
	t.Cleanup(func() {
		otel.SetTracerProvider(tracenoop.NewTracerProvider())
		otel.SetMeterProvider(metricnoop.NewMeterProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	})
	tel, err := Start(context.Background(), opts)
	if err == nil {
		t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	}
	return tel, err
}

func TestStartFromEnvironment(t *testing.T) {
	r := telemetrytest.NewReceiver()
	defer r.Close()
	tests := []struct {
		name    string
		env     []string
		tracing bool
		err     string // in the error, which wraps ErrConfig
	}{
		{name: "nothing set"},
		{name: "endpoint", env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT", r.HTTPEndpoint}, tracing: true},
		{name: "traces endpoint", env: []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", r.HTTPEndpoint + telemetrytest.TracesPath}, tracing: true},
		{name: "grpc", env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT", r.GRPCEndpoint, "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}, tracing: true},
		{name: "console", env: []string{"OTEL_TRACES_EXPORTER", "console"}, tracing: true},
		{name: "none beats an endpoint", env: []string{"OTEL_TRACES_EXPORTER", "none", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"}},
		{name: "sdk disabled", env: []string{"OTEL_SDK_DISABLED", "true", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"}},
		{name: "unknown exporter", env: []string{"OTEL_TRACES_EXPORTER", "otlp,jaeger"}, err: `unknown exporter "jaeger"`},
		{name: "unknown protocol", env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
			err: `OTLP protocol "http/json"`},
		{name: "traces protocol wins", env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1",
			"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift"}, err: `OTLP protocol "thrift"`},
		{name: "bad resource attributes", env: []string{"OTEL_TRACES_EXPORTER", "console", "OTEL_RESOURCE_ATTRIBUTES", "no-equal-sign"},
			err: "OTEL_RESOURCE_ATTRIBUTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel, err := start(t, Options{ServiceName: "test", Console: &bytes.Buffer{}}, tt.env...)
			if tt.err != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Start: %v, want an ErrConfig saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tel.Tracing(); got != tt.tracing {
				t.Errorf("Tracing() = %v, want %v", got, tt.tracing)
			}
			_, sdk := otel.GetTracerProvider().(*sdktrace.TracerProvider)
			if sdk != tt.tracing {
				t.Errorf("global TracerProvider is the SDK's: %v, want %v", sdk, tt.tracing)
			}
			_, sp := otel.Tracer("test").Start(context.Background(), "s")
			if got := sp.IsRecording(); got != tt.tracing {
				t.Errorf("span recording = %v, want %v", got, tt.tracing)
			}
			sp.End()
		})
	}
}

// TestNothingSetInstallsNothing: with no variable and no metrics, the
// globals stay the no-op ones but for the propagator.
func TestNothingSetInstallsNothing(t *testing.T) {
	tel, err := start(t, Options{ServiceName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := otel.GetMeterProvider().(metricnoop.MeterProvider); !ok {
		t.Errorf("global MeterProvider is %T, want the no-op one", otel.GetMeterProvider())
	}
	rec := httptestRecorder(tel.MetricsHandler(), "/metrics")
	if rec.code != http.StatusNotFound {
		t.Errorf("MetricsHandler without metrics answered %d, want 404", rec.code)
	}
	if got := otel.GetTextMapPropagator().Fields(); !slices.Contains(got, "traceparent") {
		t.Errorf("global propagator fields = %v, want traceparent among them", got)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestExport sends spans to a receiver over both OTLP protocols. The
// batcher would wait 5 s before sending: spans that are there right after
// Shutdown were flushed by it.
func TestExport(t *testing.T) {
	r := telemetrytest.NewReceiver()
	defer r.Close()
	tests := []struct {
		protocol, endpoint string
		service            string // OTEL_SERVICE_NAME
		wantService        string
	}{
		{"http/protobuf", r.HTTPEndpoint, "", "pulljobs-test"},
		{"grpc", r.GRPCEndpoint, "from-env", "from-env"},
	}
	for _, tt := range tests {
		t.Run(tt.protocol, func(t *testing.T) {
			before := len(r.Spans())
			tel, err := start(t, Options{ServiceName: "pulljobs-test"}, "OTEL_EXPORTER_OTLP_ENDPOINT", tt.endpoint,
				"OTEL_EXPORTER_OTLP_PROTOCOL", tt.protocol, "OTEL_SERVICE_NAME", tt.service, "OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
			if err != nil {
				t.Fatal(err)
			}
			ctx, parent := otel.Tracer("test").Start(context.Background(), "parent")
			_, child := otel.Tracer("test").Start(ctx, "child")
			child.End()
			parent.End()
			if err := tel.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			got := r.Spans()[before:]
			if len(got) != 2 {
				t.Fatalf("received %d spans after Shutdown, want 2: %+v", len(got), got)
			}
			byName := map[string]telemetrytest.Span{}
			for _, s := range got {
				byName[s.Name] = s
				if s.Service != tt.wantService {
					t.Errorf("span %s: service %q, want %q", s.Name, s.Service, tt.wantService)
				}
			}
			p, c := byName["parent"], byName["child"]
			if c.TraceID != p.TraceID || c.ParentSpanID != p.SpanID || p.ParentSpanID != "" {
				t.Errorf("child %+v is not parent %+v's child", c, p)
			}
		})
	}
}

func TestConsoleExporter(t *testing.T) {
	var buf bytes.Buffer
	tel, err := start(t, Options{ServiceName: "test", Console: &buf}, "OTEL_TRACES_EXPORTER", "console")
	if err != nil {
		t.Fatal(err)
	}
	_, sp := otel.Tracer("test").Start(context.Background(), "to-the-console")
	sp.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"Name":"to-the-console"`) {
		t.Errorf("console output does not hold the span:\n%s", buf.String())
	}
}

// TestMetricsHandler: instruments that any package creates through the
// global MeterProvider are served, with conventional Prometheus names.
func TestMetricsHandler(t *testing.T) {
	tel, err := start(t, Options{ServiceName: "test", Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := otel.Meter("some/library").Int64Counter("pulljobs_items_total")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 3, metric.WithAttributes(stageKey.String("push"), outcomeKey.String("created")))
	rec := httptestRecorder(tel.MetricsHandler(), "/metrics")
	for _, want := range []string{
		`pulljobs_items_total{outcome="created",stage="push"} 3`,
		"go_goroutines ",
		`target_info{service_name="test"`,
	} {
		if !strings.Contains(rec.body, want) {
			t.Errorf("/metrics does not hold %q:\n%s", want, rec.body)
		}
	}
	if strings.Contains(rec.body, "otel_scope_name") {
		t.Error("/metrics labels series with otel_scope_name; want small label sets")
	}
}

// TestShutdownBounded: a collector that does not answer holds Shutdown no
// longer than its context allows, and the failure is returned. The
// collector holds the export until the test ends, so only the context can
// end Shutdown; the wait for it fails only on a hang.
func TestShutdownBounded(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		// Accepted (an empty ExportTraceServiceResponse), so that the
		// export, which goes on in the background, ends with the test.
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	// Release the export before the server closes: Close waits for it.
	defer collector.Close()
	defer close(release)
	// The exporter's own time-out is far away: only Shutdown's context can
	// end the wait.
	tel, err := start(t, Options{ServiceName: "test"}, "OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL,
		"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "OTEL_EXPORTER_OTLP_TIMEOUT", strconv.Itoa(int(time.Hour.Milliseconds())))
	if err != nil {
		t.Fatal(err)
	}
	_, sp := otel.Tracer("test").Start(context.Background(), "lost")
	sp.End()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- tel.Shutdown(ctx) }()
	select {
	case <-arrived:
	case <-time.After(stuckAfter):
		t.Fatalf("stuck: Shutdown sent no span to the collector in %v", stuckAfter)
	}
	cancel()
	select {
	case err = <-shut:
	case <-time.After(stuckAfter):
		t.Fatalf("stuck: Shutdown still waiting for the collector %v after its context ended", stuckAfter)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want the context's error", err)
	}
	if again := tel.Shutdown(context.Background()); !errors.Is(again, err) && again.Error() != err.Error() {
		t.Errorf("second Shutdown = %v, want the first's %v", again, err)
	}
}

// stuckAfter bounds the waits of these tests: passing it means a hang, not
// a slow machine.
const stuckAfter = time.Minute
