package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// TestRunSandboxRangeCap: against a France Travail whose range cap is 1000,
// not the 3000 the client guesses first, a run reads every offer of a
// query matching 5 000: the client learns the cap from the API's 400 and
// cuts its windows to fit.
func TestRunSandboxRangeCap(t *testing.T) {
	if testing.Short() {
		t.Skip("a run of 5 000 offers")
	}
	const offers = 5000
	report := filepath.Join(t.TempDir(), "report.json")
	code, out, errOut := pulljobs(t, "run", "--sandbox", "--synthetic", strconv.Itoa(offers), "--francetravail-max-start", "1000",
		"--report", report, "--log-level", "warn")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	r := readReport(t, report)
	want := runstatus.Events{ReadSuccess: offers, Created: offers - sandboxKeptJobs, Skipped: sandboxKeptJobs, Archived: sandboxStaleJobs}
	if r.Status != runstatus.StatusSuccess || r.Events != want || r.Truncated || r.Fetch == nil || r.Fetch.Total != offers {
		t.Fatalf("report = %+v (fetch %+v)\nwant success with events %+v, nothing truncated", r, r.Fetch, want)
	}
	if !strings.Contains(errOut, "caps range starts lower than documented") || !strings.Contains(errOut, "1000") {
		t.Errorf("the log does not say the cap learned:\n%s", errOut)
	}
	t.Logf("%d of %d offers read in %d windows, %d search calls (%.1f s)", r.Events.ReadSuccess, r.Fetch.Total, r.Fetch.Windows, r.Fetch.Requests, r.DurationSeconds)
}

// TestRunSandboxCapacity: against an HrFlow that serves fewer calls a
// second than the adaptive rate starts at, a run writes every job once,
// and its report says the rate it reached and the calls throttled.
func TestRunSandboxCapacity(t *testing.T) {
	if testing.Short() {
		t.Skip("a run at 8 calls a second")
	}
	const offers = 120
	report := filepath.Join(t.TempDir(), "report.json")
	code, out, errOut := pulljobs(t, "run", "--sandbox", "--synthetic", strconv.Itoa(offers), "--hrflow-capacity", "8",
		"--report", report, "--log-level", "warn")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	r := readReport(t, report)
	want := runstatus.Events{ReadSuccess: offers, Created: offers - sandboxKeptJobs, Skipped: sandboxKeptJobs, Archived: sandboxStaleJobs}
	if r.Status != runstatus.StatusSuccess || r.Events != want {
		t.Fatalf("report = %+v\nwant success with events %+v", r, want)
	}
	// The rate starts at 10 and the bucket of 8 calls empties within 4 s:
	// calls are throttled, and the rate backs off.
	h := r.HrFlow
	if h == nil || h.RatePeak < 10 || h.Throttled == 0 {
		t.Fatalf("report's hrflow = %+v, want the rate from 10 up, and calls throttled", h)
	}
	if !strings.Contains(out, "calls throttled") {
		t.Errorf("table does not say the calls throttled:\n%s", out)
	}
	t.Logf("%d jobs at capacity 8: rate %.1f at most, %.1f at the end; %d calls throttled; %.1f s", want.Created, h.RatePeak, h.RateLast, h.Throttled, r.DurationSeconds)
}

// TestLimitsRate measures the HrFlow rate limit against an account's
// capacity, as a deployment runs: a real nats-server, `pulljobs sandbox
// --hrflow-capacity`, one formatter, two pushers and `fetcher run --wait`,
// PULLJOBS_LIMITS synthetic offers. Each capacity of
// PULLJOBS_LIMITS_CAPACITY (comma-separated; "60/15@40" drops from 60 to
// 15 calls/s 40 s after the start, through PUT /_emulator/faults) is run
// with each rate_limit of PULLJOBS_LIMITS_RATE (default "auto,10"), in
// turn. It prints each run's time, the creations per second between 20
// and 40 s after the start and after the drop, the share of all HrFlow
// calls throttled in each and in all, and what the report says. It fails
// only when a run is not exact: success, every job created once.
//
//	PULLJOBS_NATS_SERVER=/work/bin/nats-server PULLJOBS_LIMITS=5000 PULLJOBS_LIMITS_CAPACITY=60/15@40,60,10,5 go test ./cmd/pulljobs -run 'TestLimitsRate$' -v -timeout 4h
func TestLimitsRate(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("PULLJOBS_LIMITS"))
	if err != nil || n <= 0 {
		t.Skip("set PULLJOBS_LIMITS=5000 (and PULLJOBS_LIMITS_CAPACITY, PULLJOBS_LIMITS_RATE) to measure the HrFlow rate limit against a capacity")
	}
	capacities := strings.Split(cmpOr(os.Getenv("PULLJOBS_LIMITS_CAPACITY"), "60/15@40"), ",")
	rates := strings.Split(cmpOr(os.Getenv("PULLJOBS_LIMITS_RATE"), "auto,10"), ",")
	dir := t.TempDir()
	bin := buildBinaries(t, dir)
	for _, c := range capacities {
		plan, err := parseCapacity(c)
		if err != nil {
			t.Fatalf("PULLJOBS_LIMITS_CAPACITY: %v", err)
		}
		for _, rate := range rates {
			m := measureLimits(t, dir, bin, n, plan, strings.TrimSpace(rate))
			t.Logf("capacity %s, rate_limit %s: %s", c, rate, m)
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// capacityPlan is a capacity, and its drop, of TestLimitsRate.
type capacityPlan struct {
	before, after float64       // calls per second
	dropAt        time.Duration // 0: no drop
}

// parseCapacity reads "60" or "60/15@40".
func parseCapacity(s string) (capacityPlan, error) {
	var p capacityPlan
	s = strings.TrimSpace(s)
	before, rest, drop := strings.Cut(s, "/")
	var err error
	if p.before, err = strconv.ParseFloat(before, 64); err != nil || p.before <= 0 {
		return p, fmt.Errorf("%q: want calls per second, or before/after@seconds", s)
	}
	p.after = p.before
	if !drop {
		return p, nil
	}
	after, at, ok := strings.Cut(rest, "@")
	secs, err2 := strconv.Atoi(at)
	if p.after, err = strconv.ParseFloat(after, 64); !ok || err != nil || err2 != nil || p.after <= 0 || secs <= 0 {
		return p, fmt.Errorf("%q: want before/after@seconds, such as 60/15@40", s)
	}
	p.dropAt = time.Duration(secs) * time.Second
	return p, nil
}

// limitsSample is the HrFlow emulator's counters at one moment of a run.
type limitsSample struct {
	at                        time.Duration // since the start
	created, calls, throttled int64
}

// limitsMeasure is what measureLimits saw.
type limitsMeasure struct {
	wall                      time.Duration
	samples                   []limitsSample
	dropAt                    time.Duration
	report                    runstatus.Report
	created, calls, throttled int64
}

// between returns the creations per second and the share of calls
// throttled between from and to (to ≤ 0: the end of creations).
func (m limitsMeasure) between(from, to time.Duration) (perSecond, throttled float64) {
	at := func(d time.Duration) limitsSample {
		s := m.samples[0]
		for _, x := range m.samples {
			if x.at > d {
				break
			}
			s = x
		}
		return s
	}
	a := at(from)
	b := m.samples[len(m.samples)-1]
	if to > 0 {
		b = at(to)
	} else {
		for i := len(m.samples) - 1; i > 0 && m.samples[i-1].created == b.created; i-- {
			b = m.samples[i-1] // the last creation, not the sync after it
		}
	}
	if b.at <= a.at || b.calls == a.calls {
		return 0, 0
	}
	return float64(b.created-a.created) / (b.at - a.at).Seconds(), float64(b.throttled-a.throttled) / float64(b.calls-a.calls)
}

func (m limitsMeasure) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%.1f s; 20-40 s: ", m.wall.Seconds())
	r, th := m.between(20*time.Second, 40*time.Second)
	fmt.Fprintf(&b, "%.1f creations/s, %.1f %% of calls throttled", r, 100*th)
	if m.dropAt > 0 {
		r, th = m.between(m.dropAt, 0)
		fmt.Fprintf(&b, "; after the drop: %.1f creations/s, %.1f %% throttled", r, 100*th)
	}
	fmt.Fprintf(&b, "; in all %d of %d calls throttled (%.1f %%)", m.throttled, m.calls, 100*float64(m.throttled)/float64(max(m.calls, 1)))
	if h := m.report.HrFlow; h != nil {
		fmt.Fprintf(&b, "; report: rate %.1f at most, %.1f at the end, %d throttled", h.RatePeak, h.RateLast, h.Throttled)
	}
	return b.String()
}

// limitsPoll is how often measureLimits reads the emulator's counters.
const limitsPoll = 500 * time.Millisecond

// measureLimits runs n offers through a deployment against an HrFlow of
// capacity c, with target_parameters.rate_limit set to rate, and checks
// the run is exact.
func measureLimits(t *testing.T, dir string, bin map[string]string, n int, c capacityPlan, rate string) limitsMeasure {
	t.Helper()
	sub, err := os.MkdirTemp(dir, "limits-")
	if err != nil {
		t.Fatal(err)
	}
	natsPort := freePort(t)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	ns := start(t, sub, "nats-server", bin["nats-server"], "-js", "-sd", filepath.Join(sub, "nats"), "-a", "127.0.0.1", "-p", strconv.Itoa(natsPort))
	defer stopProcess(ns)
	waitPort(t, natsPort)
	sb, ftURL, hrURL := spawnSandbox(t, sub, bin, "--synthetic", strconv.Itoa(n), "--seed", "13", "--hrflow-capacity", strconv.FormatFloat(c.before, 'g', -1, 64))
	defer stopProcess(sb)
	cfg := sandboxConfig(t, sub, ftURL, hrURL, "  retention: 1h\n")
	setHrFlowRate(t, cfg, rate)
	var workers []*exec.Cmd
	for _, w := range []struct{ name, bin string }{{"formatter", "formatter"}, {"pusher-1", "pusher"}, {"pusher-2", "pusher"}} {
		workers = append(workers, start(t, sub, w.name, bin[w.bin], "--nats", natsURL, "--config", cfg, "--log-format", "json"))
	}
	defer func() {
		for _, w := range workers {
			stopProcess(w)
		}
	}()
	report := filepath.Join(sub, "report.json")
	began := time.Now()
	fetcher := start(t, sub, "fetcher", bin["fetcher"], "run", "--nats", natsURL, "--config", cfg, "--wait", "--report", report, "--log-format", "json")
	var (
		mu      sync.Mutex
		samples []limitsSample
		stop    = make(chan struct{})
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		dropped := c.dropAt == 0
		tick := time.NewTicker(limitsPoll)
		defer tick.Stop()
		for {
			if st, err := readStats(hrURL); err == nil {
				s := limitsSample{at: time.Since(began), created: st.Count("POST /job/indexing", 201)}
				for _, route := range st.Routes() {
					s.calls += st.Total(route)
					s.throttled += st.Count(route, 429)
				}
				mu.Lock()
				samples = append(samples, s)
				mu.Unlock()
				if !dropped && s.at >= c.dropAt {
					dropped = putFaults(hrURL, emulator.Config{Capacity: c.after}) == nil
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	err = wait(fetcher, 2*time.Hour)
	wall := time.Since(began)
	close(stop)
	<-done
	if err != nil {
		t.Fatalf("fetcher run --wait: %v\n%s", err, tail(sub, "fetcher"))
	}
	if len(samples) == 0 {
		t.Fatal("the HrFlow emulator's counters could not be read")
	}
	m := limitsMeasure{wall: wall, samples: samples, dropAt: c.dropAt, report: readReport(t, report)}
	st := hrStats(t, hrURL)
	m.created = st.Count("POST /job/indexing", 201)
	for _, route := range st.Routes() {
		m.calls += st.Total(route)
		m.throttled += st.Count(route, 429)
	}
	if e := m.report.Events; m.report.Status != runstatus.StatusSuccess || e.Created != n || m.created != int64(n) {
		t.Errorf("capacity %v, rate_limit %s: status %s, %d created by the report and %d by HrFlow; want success and %d exactly",
			c, rate, m.report.Status, e.Created, m.created, n)
	}
	return m
}

// setHrFlowRate rewrites target_parameters.rate_limit of the configuration
// that sandboxConfig wrote.
func setHrFlowRate(t *testing.T, path, rate string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "target_parameters:")
	j := strings.Index(s[i:], "  rate_limit: 0\n")
	if i < 0 || j < 0 {
		t.Fatalf("%s has no target_parameters.rate_limit", path)
	}
	s = s[:i+j] + "  rate_limit: " + rate + "\n" + s[i+j+len("  rate_limit: 0\n"):]
	writeFile(t, path, s)
}

// stopProcess stops a process start started, before the test ends: SIGTERM,
// then SIGKILL after 10 s.
func stopProcess(cmd *exec.Cmd) {
	if cmd.ProcessState == nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = wait(cmd, 10*time.Second)
	}
}
