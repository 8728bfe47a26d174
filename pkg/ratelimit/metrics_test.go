package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/telemetry"
	"github.com/pulljobs/pulljobs/pkg/telemetry/telemetrytest"
)

// TestWaitMeasured: the time calls spend in Wait adds up in
// pulljobs_ratelimit_wait_seconds_total under the limiter's name: some, for
// calls that waited for their turn (one call passes per window at 10 calls
// per second), and never more than the calls took as their caller saw
// them, whatever the machine's pace; the throttled answers Observe sees in
// pulljobs_ratelimit_throttled_total, and the rate is
// pulljobs_ratelimit_rate. (The package's instruments bind to the first
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
	begin := time.Now()
	for range calls {
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(begin)
	l.Observe(ctx, "POST /job/indexing", 429, time.Millisecond, 0)
	l.Observe(ctx, "POST /job/indexing", 201, time.Millisecond, 0)
	l.Observe(ctx, "POST /job/indexing", 503, time.Millisecond, 0)
	m, err := telemetrytest.Read(tel.MetricsHandler())
	if err != nil {
		t.Fatal(err)
	}
	got, found := m.Value("pulljobs_ratelimit_wait_seconds_total", "api", "hrflow")
	if !found || got <= 0 || got > took.Seconds() {
		t.Errorf("pulljobs_ratelimit_wait_seconds_total{api=\"hrflow\"} = %v (found %v), want more than 0 and at most the %v the calls took",
			got, found, took)
	}
	if got, found := m.Value("pulljobs_ratelimit_throttled_total", "api", "hrflow"); got != 2 {
		t.Errorf("pulljobs_ratelimit_throttled_total{api=\"hrflow\"} = %v (found %v), want 2: a 429 and a 503", got, found)
	}
	if got, found := m.Value("pulljobs_ratelimit_rate", "api", "hrflow"); got != perSecond {
		t.Errorf("pulljobs_ratelimit_rate{api=\"hrflow\"} = %v (found %v), want %v", got, found, perSecond)
	}
}
