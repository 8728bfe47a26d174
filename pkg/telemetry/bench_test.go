package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pulljobs/pulljobs/pkg/telemetry/telemetrytest"
)

// BenchmarkTransport measures what counting a call costs: a loopback call
// through the bare transport (the baseline), through Transport with no
// MeterProvider installed (no --http), and with the metrics SDK (--http).
func BenchmarkTransport(b *testing.B) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) }))
	defer api.Close()
	run := func(b *testing.B, rt http.RoundTripper) {
		client := &http.Client{Transport: rt}
		defer client.CloseIdleConnections()
		b.ReportAllocs()
		for b.Loop() {
			resp, err := client.Post(api.URL+"/v1/job/indexing", "application/json", nil)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	bare := func() http.RoundTripper { return http.DefaultTransport.(*http.Transport).Clone() }
	b.Run("bare", func(b *testing.B) { run(b, bare()) })
	b.Run("counted-no-sdk", func(b *testing.B) {
		otel.SetMeterProvider(metricnoop.NewMeterProvider())
		run(b, NewTransport(bare(), "hrflow", testRoutes...))
	})
	b.Run("counted-sdk", func(b *testing.B) {
		startForBenchmark(b, Options{ServiceName: "bench", Metrics: true})
		run(b, NewTransport(bare(), "hrflow", testRoutes...))
	})
}

// cannedResponse is a base transport that answers at once, so that
// BenchmarkTransportOverhead measures Transport's own work alone.
type cannedResponse struct{}

func (cannedResponse) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody}, nil
}

// BenchmarkTransportOverhead measures what Transport adds to a call,
// route templating and recording, without the network: compare with
// BenchmarkTransport/bare, a loopback call.
func BenchmarkTransportOverhead(b *testing.B) {
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/v1/job/indexing?board_key=b&reference=r", nil)
	run := func(b *testing.B, rt http.RoundTripper) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rt.RoundTrip(req); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, cannedResponse{}) })
	b.Run("counted-no-sdk", func(b *testing.B) {
		otel.SetMeterProvider(metricnoop.NewMeterProvider())
		run(b, NewTransport(cannedResponse{}, "hrflow", testRoutes...))
	})
	b.Run("counted-sdk", func(b *testing.B) {
		startForBenchmark(b, Options{ServiceName: "bench", Metrics: true})
		run(b, NewTransport(cannedResponse{}, "hrflow", testRoutes...))
	})
}

// BenchmarkSpan measures a pipeline stage's span (start with the run and
// offer ids, carry it in a message header, end): with no variable set (no
// SDK: the baseline a default binary pays), and exported over OTLP/HTTP to
// a receiver on loopback. The SDK's batcher drops spans rather than block
// when its queue is full; the spans received are reported.
func BenchmarkSpan(b *testing.B) {
	runAttr, offerAttr := attribute.Key("pulljobs.run_id"), attribute.Key("pulljobs.offer_id")
	run := func(b *testing.B) {
		tracer := otel.Tracer("bench")
		prop := otel.GetTextMapPropagator()
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, sp := tracer.Start(ctx, "pulljobs.push", trace.WithAttributes(runAttr.String("20261129T065844684Z-9091e23e"), offerAttr.String("182PVNL")))
			h := propagation.MapCarrier{}
			prop.Inject(trace.ContextWithSpan(ctx, sp), h)
			sp.End()
		}
	}
	b.Run("no-sdk", func(b *testing.B) {
		startForBenchmark(b, Options{ServiceName: "bench"})
		run(b)
	})
	b.Run("otlp", func(b *testing.B) {
		r := telemetrytest.NewReceiver()
		defer r.Close()
		tel := startForBenchmark(b, Options{ServiceName: "bench"}, "OTEL_EXPORTER_OTLP_ENDPOINT", r.HTTPEndpoint)
		run(b)
		if err := tel.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(r.Spans()))/float64(b.N), "received/op")
	})
}

// startForBenchmark runs Start as start does, failing b on an error.
func startForBenchmark(b *testing.B, opts Options, env ...string) *Telemetry {
	b.Helper()
	tel, err := start(b, opts, env...)
	if err != nil {
		b.Fatal(err)
	}
	return tel
}
