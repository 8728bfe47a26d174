package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/config"
	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/natsembed"
	"github.com/pulljobs/pulljobs/pkg/telemetry/telemetrytest"
)

// TestMain checks that no test leaves a goroutine behind: the --http
// server's among them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// probe GETs url and returns the status and body; code 0 means no answer.
func probe(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTelemetry wires what a binary does: --http serves the probes, the
// clients that FranceTravail and HrFlow build are counted call by call, as
// the emulators counted them (5xx injected), with their retries and their
// rate limits' waits; /readyz follows NATS and the process's context.
// (The libraries' instruments bind to the first MeterProvider of the
// process: this is the only test of the package that installs one.)
func TestTelemetry(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"} {
		t.Setenv(k, "")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	common := cli.Common{HTTPAddr: "127.0.0.1:0"}
	tel, err := common.StartTelemetry(ctx, "test", logger)
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Close()
	base := "http://" + tel.Addr()
	expect := func(path string, code int, body string) {
		t.Helper()
		if got, b := probe(t, base+path); got != code || !strings.Contains(b, body) {
			t.Errorf("GET %s = %d %q, want %d with %q", path, got, b, code, body)
		}
	}
	expect("/healthz", 200, "ok")
	expect("/readyz", 503, "not ready: starting")

	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tel.Ready(nc)
	expect("/readyz", 200, "ok")

	// A few errors, with a seed whose draws do not make the clients back off
	// for long.
	ftFaults, hrFaults := emulator.Config{ErrorRate: 0.4, Seed: 1}, emulator.Config{ErrorRate: 0.1, Seed: 6}
	ftEmu, err := francetravailtest.New(francetravailtest.Config{Corpus: francetravailtest.Synthetic(400, 1, francetravailtest.SyntheticOptions{}), Faults: ftFaults})
	if err != nil {
		t.Fatal(err)
	}
	ftSrv := httptest.NewServer(ftEmu)
	defer ftSrv.Close()
	hrEmu, err := hrflowtest.New(hrflowtest.Config{Faults: hrFaults})
	if err != nil {
		t.Fatal(err)
	}
	hrSrv := httptest.NewServer(hrEmu)
	defer hrSrv.Close()
	cfg := testConfig(t, ftSrv.URL, hrSrv.URL)

	ft, err := FranceTravail(ctx, cfg, nc, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer ft.CloseIdleConnections()
	offers := 0
	if _, err := ft.Search(ctx, francetravail.Query{}, func(francetravail.Offer) error { offers++; return nil }); err != nil || offers != 400 {
		t.Fatalf("search: %d offers, %v; want 400", offers, err)
	}
	hr, err := HrFlow(ctx, cfg, nc, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer hr.CloseIdleConnections()
	for i := range 10 {
		job := hrflow.Job{"name": fmt.Sprintf("job %d", i), "reference": fmt.Sprintf("ref-%d", i)}
		if _, err := hr.Upsert(ctx, hrflowtest.DefaultBoardKey, job, hrflow.UpsertOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	m, err := telemetrytest.Scrape(http.DefaultClient, base+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	checkCalls(t, m, "francetravail", ftEmu.Stats(), map[string]string{"POST /token": "POST /connexion/oauth2/access_token"})
	checkCalls(t, m, "hrflow", hrEmu.Stats(), nil)
	if w, _ := m.Value("pulljobs_ratelimit_wait_seconds_total", "api", "francetravail"); w <= 0 {
		t.Errorf("France Travail's rate limit waited %v s, want > 0", w)
	}
	if _, found := m.Value("pulljobs_ratelimit_wait_seconds_total", "api", "hrflow"); !found {
		t.Error("no pulljobs_ratelimit_wait_seconds_total for HrFlow's shared limiter")
	}
	if r, _ := m.Value("pulljobs_ratelimit_rate", "api", "hrflow"); r != cfg.HrFlowRateLimit().PerSecond {
		t.Errorf("pulljobs_ratelimit_rate{api=\"hrflow\"} = %v, want the configuration's %v", r, cfg.HrFlowRateLimit())
	}

	srv.Shutdown() // NATS lost: not ready until it comes back
	for deadline := time.Now().Add(10 * time.Second); nc.IsConnected() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	expect("/readyz", 503, "not ready: NATS ")

	cancel() // SIGTERM: not ready any more, still serving until Close
	expect("/readyz", 503, "not ready: shutting down")
	expect("/healthz", 200, "ok")
	tel.Close()
	if code, _ := probe(t, base+"/healthz"); code != 0 {
		t.Errorf("the --http server answered %d after Close", code)
	}
}

// checkCalls compares the calls counted for api with the emulator's own
// counts, route by route and status by status, and the retries with the
// 5xx answers (every call ended in success). rename maps an emulator's
// route names to the client's where they differ.
func checkCalls(t *testing.T, m telemetrytest.Metrics, api string, st emulator.Stats, rename map[string]string) {
	t.Helper()
	var total, errors float64
	for _, route := range st.Routes() {
		label := route
		if r, ok := rename[route]; ok {
			label = r
		}
		for status, n := range st.Requests[route] {
			got, _ := m.Value("pulljobs_http_client_requests_total", "api", api, "route", label, "code", fmt.Sprint(status))
			if got != float64(n) {
				t.Errorf("%s %s %d: counted %v calls, the emulator answered %d", api, label, status, got, n)
			}
			total += float64(n)
			if status >= 500 {
				errors += float64(n)
			}
		}
	}
	if got, _ := m.Value("pulljobs_http_client_requests_total", "api", api); got != total || total == 0 {
		t.Errorf("%s: %v calls counted, the emulator answered %v", api, got, total)
	}
	if got, _ := m.Value("pulljobs_http_client_request_duration_seconds", "api", api); got != total {
		t.Errorf("%s: %v calls timed, want %v", api, got, total)
	}
	if got, _ := m.Value("pulljobs_retries_total", "client", api); got != errors || errors == 0 {
		t.Errorf("%s: %v retries counted, the emulator injected %v errors", api, got, errors)
	}
}

// testConfig writes and loads a configuration for the emulators at ftURL
// and hrURL, with rate limits.
func testConfig(t *testing.T, ftURL, hrURL string) config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pulljobs.yaml")
	yaml := fmt.Sprintf(`origin_parameters:
  client_id: %s
  client_secret: %s
  api_base_url: %s
  token_url: %s
  rate_limit: 50
target_parameters:
  api_secret: %s
  api_user: %s
  board_key: %s
  api_base_url: %s
  rate_limit: 200
`, francetravailtest.DefaultClientID, francetravailtest.DefaultClientSecret, francetravailtest.APIBaseURL(ftURL), francetravailtest.TokenURL(ftURL),
		hrflowtest.DefaultAPISecret, hrflowtest.DefaultAPIUser, hrflowtest.DefaultBoardKey, hrflowtest.BaseURL(hrURL))
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
