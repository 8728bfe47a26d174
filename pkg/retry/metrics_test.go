package retry

import (
	"context"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/telemetry"
	"github.com/pulljobs/pulljobs/pkg/telemetry/telemetrytest"
)

// TestRetriesCounted: each attempt after a failure counts once under the
// policy's name, "other" without one; a success and a permanent error
// count nothing. (The package's instrument binds to the first
// MeterProvider of the process: this is the only test that installs one.)
func TestRetriesCounted(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	tel, err := telemetry.Start(context.Background(), telemetry.Options{ServiceName: "test", Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	transient := &statusError{status: 503}
	failTwice := func() func(context.Context) error {
		n := 0
		return func(context.Context) error {
			if n++; n <= 2 {
				return transient
			}
			return nil
		}
	}
	named := fast
	named.Name = "hrflow"
	ctx := context.Background()
	if err := Do(ctx, named, failTwice(), nil); err != nil {
		t.Fatal(err)
	}
	if err := Do(ctx, fast, failTwice(), nil); err != nil {
		t.Fatal(err)
	}
	if err := Do(ctx, named, func(context.Context) error { return &statusError{status: 400} }, nil); err == nil {
		t.Fatal("a permanent error was not returned")
	}
	exhausted := named
	exhausted.MaxAttempts = 3
	if err := Do(ctx, exhausted, func(context.Context) error { return transient }, nil); err == nil {
		t.Fatal("an exhausted policy returned nil")
	}
	m, err := telemetrytest.Read(tel.MetricsHandler())
	if err != nil {
		t.Fatal(err)
	}
	for client, want := range map[string]float64{"hrflow": 2 + 2, "other": 2} {
		if got, _ := m.Value("pulljobs_retries_total", "client", client); got != want {
			t.Errorf("pulljobs_retries_total{client=%q} = %v, want %v", client, got, want)
		}
	}
}
