package ratelimit

import (
	"context"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/telemetry"
	"github.com/pulljobs/pulljobs/pkg/telemetry/telemetrytest"
)

// TestWaitMeasured: the time calls spend in Wait adds up in
// pulljobs_ratelimit_wait_seconds_total under the limiter's name. At 10
// calls per second one call passes per 100 ms window, so five calls wait
// four windows between them. (The package's instrument binds to the first
// MeterProvider of the process: this is the only test that installs one.)
func TestWaitMeasured(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	tel, err := telemetry.Start(context.Background(), telemetry.Options{ServiceName: "test", Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	js := newJetStream(t)
	ctx := context.Background()
	const calls, perSecond = 5, 10
	l, err := New(ctx, js, "hrflow", perSecond)
	if err != nil {
		t.Fatal(err)
	}
	for range calls {
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	m, err := telemetrytest.Read(tel.MetricsHandler())
	if err != nil {
		t.Fatal(err)
	}
	got, found := m.Value("pulljobs_ratelimit_wait_seconds_total", "api", "hrflow")
	if min := float64(calls-1) / perSecond * 0.9; !found || got < min {
		t.Errorf("pulljobs_ratelimit_wait_seconds_total{api=\"hrflow\"} = %v (found %v), want at least %v", got, found, min)
	}
}
