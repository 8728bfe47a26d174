package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/telemetry/telemetrytest"
)

// Span names and attributes of the pipeline's contract.
const (
	spanFetch = "pulljobs.fetch"
	spanFmt   = "pulljobs.format"
	spanPush  = "pulljobs.push"
	spanSync  = "pulljobs.sync"
	attrOffer = "pulljobs.offer_id"
)

// exportTo points the processes the test starts at the receiver, over
// OTLP/HTTP, with batches sent every 200 ms.
func exportTo(t *testing.T, r *telemetrytest.Receiver) {
	t.Helper()
	for k, v := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": r.HTTPEndpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_TRACES_EXPORTER": "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "", "OTEL_SERVICE_NAME": "", "OTEL_SDK_DISABLED": "",
		"OTEL_BSP_SCHEDULE_DELAY": "200",
	} {
		t.Setenv(k, v)
	}
}

// TestTracesSandbox is the "done when": `pulljobs run --sandbox`
// with OTEL_EXPORTER_OTLP_ENDPOINT set delivers pulljobs.fetch, .format,
// .push and .sync spans to a collector, all of them flushed by the time the
// process has exited.
func TestTracesSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	const offers = 100
	r := telemetrytest.NewReceiver()
	defer r.Close()
	exportTo(t, r)
	dir := t.TempDir()
	bin := buildBinaries(t, dir)
	report := filepath.Join(dir, "report.json")
	cmd := start(t, dir, "pulljobs", bin["pulljobs"], "run", "--sandbox", "--synthetic", fmt.Sprint(offers), "--report", report, "--log-level", "warn")
	if err := wait(cmd, 3*time.Minute); err != nil {
		t.Fatalf("pulljobs run --sandbox: %v\n%s", err, tail(dir, "pulljobs"))
	}
	rep := readReport(t, report)
	if rep.Status != runstatus.StatusSuccess {
		t.Fatalf("run ended %s (%s)", rep.Status, rep.Reason)
	}
	count := map[string]int{}
	for _, s := range r.Spans() {
		count[s.Name]++
		if s.Service != "pulljobs" {
			t.Errorf("span %s from service %q, want pulljobs", s.Name, s.Service)
		}
	}
	t.Logf("spans received: %v", count)
	for _, name := range []string{spanFetch, spanFmt, spanPush, spanSync} {
		if count[name] == 0 {
			t.Errorf("no %s span received", name)
		}
	}
	// Every offer was formatted and pushed once (no fault injected).
	if count[spanFmt] != offers || count[spanPush] != offers {
		t.Errorf("%d format and %d push spans, want %d each", count[spanFmt], count[spanPush], offers)
	}
	if count[spanSync] != 1 {
		t.Errorf("%d sync spans, want 1", count[spanSync])
	}
}

// TestHelpMentionsTelemetry: every binary's --help tells of --http and of
// the OpenTelemetry variables.
func TestHelpMentionsTelemetry(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	dir := t.TempDir()
	bin := buildBinaries(t, dir)
	for _, c := range [][]string{{"pulljobs", "run"}, {"fetcher", "run"}, {"formatter"}, {"pusher"}} {
		out, err := exec.Command(bin[c[0]], append(c[1:], "--help")...).CombinedOutput()
		if err != nil {
			t.Errorf("%v --help: %v\n%s", c, err, out)
		}
		for _, want := range []string{"-http ADDR", "/metrics", "/readyz", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%v --help does not mention %s", c, want)
			}
		}
	}
}

// TestTelemetryMultiProcess runs a deployment's processes — a real
// nats-server, the sandbox emulators, two formatters, two pushers and a
// fetcher, each exporting spans to one receiver and serving --http — and
// checks what an operator would look at:
//
//   - traces: each offer's fetch, format and push, made in three processes,
//     are one trace; sync is a span of the run's trace, to which every
//     offer's fetch links;
//   - metrics: the pushers' /metrics count exactly the jobs the report says
//     were created, and the run.
//
// It needs $PULLJOBS_NATS_SERVER (CI builds one), and skips without it.
func TestTelemetryMultiProcess(t *testing.T) {
	natsServer := os.Getenv("PULLJOBS_NATS_SERVER")
	if testing.Short() || natsServer == "" {
		t.Skip("multi-process test: needs $PULLJOBS_NATS_SERVER and builds the binaries")
	}
	const (
		offers    = 300
		staleJobs = 5
	)
	r := telemetrytest.NewReceiver()
	defer r.Close()
	exportTo(t, r)
	dir := t.TempDir()
	bin := buildBinaries(t, dir)

	natsPort := freePort(t)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	start(t, dir, "nats-server", natsServer, "-js", "-sd", filepath.Join(dir, "nats"), "-a", "127.0.0.1", "-p", fmt.Sprint(natsPort))
	waitPort(t, natsPort)
	_, ftURL, hrURL := spawnSandbox(t, dir, bin, "--synthetic", fmt.Sprint(offers), "--seed", "5", "--stale-jobs", fmt.Sprint(staleJobs))
	cfg := sandboxConfig(t, dir, ftURL, hrURL, "  concurrency: 8\n")

	type worker struct {
		name, http string
		stop       func() error
	}
	var workers []worker
	for _, name := range []string{"formatter-1", "formatter-2", "pusher-1", "pusher-2"} {
		binary := bin["formatter"]
		if name[0] == 'p' {
			binary = bin["pusher"]
		}
		port := freePort(t)
		cmd := start(t, dir, name, binary, "--nats", natsURL, "--config", cfg, "--log-format", "json", "--http", fmt.Sprintf("127.0.0.1:%d", port))
		w := worker{name: name, http: fmt.Sprintf("http://127.0.0.1:%d", port)}
		w.stop = func() error {
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				return err
			}
			return wait(cmd, 30*time.Second)
		}
		workers = append(workers, w)
		waitPort(t, port)
	}
	for _, w := range workers {
		waitReady(t, w.name, w.http)
	}

	report := filepath.Join(dir, "report.json")
	fetcher := start(t, dir, "fetcher", bin["fetcher"], "run", "--nats", natsURL, "--config", cfg, "--wait", "--report", report, "--log-format", "json")
	if err := wait(fetcher, 3*time.Minute); err != nil {
		t.Fatalf("fetcher --wait: %v\n%s", err, tail(dir, "fetcher"))
	}
	rep := readReport(t, report)
	if rep.Status != runstatus.StatusSuccess || rep.Events.Created != offers {
		t.Fatalf("report: %s, events %+v; want success with %d created", rep.Status, rep.Events, offers)
	}

	// Metrics, scraped while the pushers still run.
	var pushers []telemetrytest.Metrics
	for _, w := range workers[2:] {
		m, err := telemetrytest.Scrape(http.DefaultClient, w.http+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		pushers = append(pushers, m)
	}
	checkPusherMetrics(t, pushers, rep, hrStats(t, hrURL).Count(hrflowtest.RouteCreateJob, http.StatusCreated))
	checkServeMetrics(t, dir, bin["fetcher"], natsURL, cfg, rep)

	// Traces: the workers flush their spans when they stop.
	for _, w := range workers {
		if err := w.stop(); err != nil {
			t.Errorf("%s stopped with SIGTERM: %v, want a clean exit\n%s", w.name, err, tail(dir, w.name))
		}
	}
	checkOfferTraces(t, r.Spans(), offers)
}

// checkServeMetrics starts fetcher serve beside the fleet and reads its
// HTTP: /metrics tells when the run's board last synced, /backlog that
// nothing waits any more.
func checkServeMetrics(t *testing.T, dir, fetcher, natsURL, cfg string, rep runstatus.Report) {
	t.Helper()
	profiles := filepath.Join(dir, "profiles")
	if err := os.MkdirAll(profiles, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(cfg, filepath.Join(profiles, "sandbox.yaml")); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	start(t, dir, "serve", fetcher, "serve", "--nats", natsURL, "--profiles", profiles, "--log-format", "json", "--http", fmt.Sprintf("127.0.0.1:%d", port))
	waitPort(t, port)
	waitReady(t, "serve", base)
	m, err := telemetrytest.Scrape(http.DefaultClient, base+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	got, found := m.Value("pulljobs_board_last_sync_time_seconds", "board_key", rep.BoardKey)
	if want := float64(rep.FinishedAt.UnixNano()) / 1e9; !found || math.Abs(got-want) > 1 {
		t.Errorf("pulljobs_board_last_sync_time_seconds{board_key=%s} = %v (found %v), want the run's end, %v", rep.BoardKey, got, found, want)
	}
	resp, err := http.Get(base + "/backlog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b runstatus.Backlog
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || b.Formatter.Lag != 0 || b.Pusher.Lag != 0 {
		t.Errorf("/backlog = %+v (%v), want nothing waiting once the run is over", b, err)
	}
}

// waitReady polls a worker's /readyz until it answers 200.
func waitReady(t *testing.T, name, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: /readyz not 200 after 30s (%v)", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkPusherMetrics compares the pushers' metrics, summed, with the run's
// report and with the creations the HrFlow emulator answered.
func checkPusherMetrics(t *testing.T, pushers []telemetrytest.Metrics, rep runstatus.Report, emulatorCreated int64) {
	t.Helper()
	sum := func(name string, labels ...string) float64 {
		var v float64
		for _, m := range pushers {
			n, _ := m.Value(name, labels...)
			v += n
		}
		return v
	}
	created := float64(rep.Events.Created)
	if got := sum("pulljobs_http_client_requests_total", "api", "hrflow", "route", "POST /job/indexing", "code", "201"); got != created || got != float64(emulatorCreated) {
		t.Errorf("pushers counted %v creations (POST /job/indexing 201), the report says %v, the emulator %d", got, created, emulatorCreated)
	}
	if got := sum("pulljobs_http_client_requests_total", "api", "hrflow", "route", "PATCH /job/indexing/archive", "code", "200"); got != float64(rep.Sync.Archived) {
		t.Errorf("pushers counted %v archive calls, the report says %d archived", got, rep.Sync.Archived)
	}
	// The pipeline's own instruments (pkg/pipeline, issue 10's lead part).
	if got := sum("pulljobs_items_total", "outcome", "created"); got != created {
		t.Errorf("pulljobs_items_total{outcome=created} = %v over the pushers, the report says %v (needs the pipeline's instruments)", got, created)
	}
	if got := sum("pulljobs_runs_total", "status", string(rep.Status)); got != 1 {
		t.Errorf("pulljobs_runs_total{status=%s} = %v over the pushers, want 1 (needs the pipeline's instruments)", rep.Status, got)
	}
	for _, m := range pushers {
		for _, gauge := range []string{"pulljobs_consumer_pending", "pulljobs_consumer_ack_pending"} {
			if v, found := m.Value(gauge, "consumer", runstatus.PusherConsumer); !found || v != 0 {
				t.Errorf("%s{consumer=%q} = %v (found %v), want 0 once the run is over (needs the pipeline's instruments)", gauge, runstatus.PusherConsumer, v, found)
			}
		}
	}
}

// checkOfferTraces checks the traces of a run of offers offers, none
// failed: per offer, one trace holding its fetch (a root span), format and
// push spans, each from its own process; and one sync span in a trace of
// its own, the run's, to which every fetch links.
func checkOfferTraces(t *testing.T, spans []telemetrytest.Span, offers int) {
	t.Helper()
	traces := map[string][]telemetrytest.Span{}
	var syncs []telemetrytest.Span
	for _, s := range spans {
		traces[s.TraceID] = append(traces[s.TraceID], s)
		if s.Name == spanSync {
			syncs = append(syncs, s)
		}
	}
	if len(syncs) != 1 || syncs[0].Service != "pulljobs-pusher" {
		t.Fatalf("%d sync spans (%+v), want one from a pusher", len(syncs), syncs)
	}
	runTrace := syncs[0].TraceID
	wantService := map[string]string{spanFetch: "pulljobs-fetcher", spanFmt: "pulljobs-formatter", spanPush: "pulljobs-pusher"}
	perOffer := map[string]string{} // offer id → its trace
	bad := 0
	for id, trace := range traces {
		if id == runTrace {
			continue
		}
		seen := map[string]int{}
		offer := ""
		for _, s := range trace {
			seen[s.Name]++
			if want, ok := wantService[s.Name]; ok && s.Service != want {
				t.Errorf("%s span from %q, want %q", s.Name, s.Service, want)
			}
			if o := s.Attributes[attrOffer]; o != "" && offer == "" {
				offer = o
			} else if o != "" && o != offer {
				t.Errorf("trace %s holds offers %s and %s: want one trace per offer", id, offer, o)
			}
			if s.Name == spanFetch && (s.ParentSpanID != "" || !linksTo(s, runTrace)) {
				t.Errorf("fetch span of offer %s: parent %q, links %v; want a root span linked to the run's trace %s", offer, s.ParentSpanID, s.Links, runTrace)
			}
		}
		if seen[spanFetch] != 1 || seen[spanFmt] < 1 || seen[spanPush] < 1 {
			if bad++; bad <= 3 {
				t.Errorf("trace %s (offer %q) holds %v; want one fetch, and format and push", id, offer, seen)
			}
			continue
		}
		if prev, dup := perOffer[offer]; dup {
			t.Errorf("offer %s has two traces, %s and %s", offer, prev, id)
		}
		perOffer[offer] = id
	}
	if len(perOffer) != offers {
		t.Errorf("%d offers have a complete trace (fetch, format, push), want %d (%d traces in all, %d incomplete)", len(perOffer), offers, len(traces), bad)
	}
}

func linksTo(s telemetrytest.Span, trace string) bool {
	for _, l := range s.Links {
		if l.TraceID == trace {
			return true
		}
	}
	return false
}
