package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/config"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/natsembed/natstest"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// TestScale measures whole runs as a user runs them: `pulljobs run
// --config` (every stage and the embedded NATS server in one process)
// against `pulljobs sandbox` in a process of its own, no rate limit, for
// each size in PULLJOBS_SCALE. It prints, for each run, the wall time,
// offers/s, peak RSS and CPU time an offer of the pipeline process (and of
// the sandbox: the two share the machine), and, measured in the same
// invocation, a bare two-stream JetStream relay: what the pipeline's
// plumbing alone can move. With PULLJOBS_SCALE_ROUNDS=N it measures the
// sizes N times, in turn, and ends with each size's medians and their
// ratios to the size before: a shared machine's speed drifts by tens of
// percent over minutes, and one run of each size in a row measures the
// drift as much as the sizes. With PULLJOBS_SCALE_NATS=1 the runs use a
// nats-server of their own ($PULLJOBS_NATS_SERVER) instead of the embedded
// one, and its peak RSS is printed apart.
//
//	PULLJOBS_SCALE=20000,200000,1000000 PULLJOBS_SCALE_ROUNDS=3 go test ./cmd/pulljobs -run 'TestScale$' -v -timeout 3h
//
// TESTING.md, beside this file, lists every measurement of the module and
// its knobs.
func TestScale(t *testing.T) {
	sizes := os.Getenv("PULLJOBS_SCALE")
	if sizes == "" {
		t.Skip("set PULLJOBS_SCALE=20000,200000,… to measure runs of those sizes")
	}
	var ns []int
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			t.Fatalf("PULLJOBS_SCALE: %q is not a number of offers", s)
		}
		ns = append(ns, n)
	}
	rounds := 1
	if v := os.Getenv("PULLJOBS_SCALE_ROUNDS"); v != "" {
		var err error
		if rounds, err = strconv.Atoi(v); err != nil || rounds <= 0 {
			t.Fatalf("PULLJOBS_SCALE_ROUNDS: %q is not a number of rounds", v)
		}
	}
	dir := t.TempDir()
	bin := buildBinaries(t, dir)
	// The floor of the plumbing, and the whole product on it, are what each
	// does undisturbed: the best of a few, measured in turn. On a shared
	// machine one run in a few is slowed down by a neighbour, and a relay
	// by a pull that goes astray (see relayPullExpiry).
	relay, sb := 0.0, 0.0
	for range relayRounds {
		relay = max(relay, relayRate(t, relayMessages))
		sb = max(sb, sandboxRate(t, dir, bin, relayMessages))
	}
	t.Logf("two-stream JetStream relay: %.0f msgs/s; pulljobs run --sandbox --synthetic %d: %.0f offers/s (%.2f × the relay); the best of %d each",
		relay, relayMessages, sb, sb/relay, relayRounds)
	got := map[int][]runMeasure{}
	for round := 1; round <= rounds; round++ {
		for _, n := range ns {
			m := measureRun(t, dir, bin, n)
			got[n] = append(got[n], m)
			t.Logf("round %d, %8d offers: %6.1f s, %6.0f offers/s (%.2f × the relay), peak RSS %4d MB%s, CPU an offer %.3f ms (sandbox %.3f ms)",
				round, n, m.wall.Seconds(), m.rate, m.rate/relay, m.peakRSS>>20, m.natsRSS, m.cpu.Seconds()*1e3/float64(n), m.sandboxCPU.Seconds()*1e3/float64(n))
		}
	}
	if rounds == 1 {
		return
	}
	var prev scaleSummary
	for i, n := range ns {
		s := summarize(n, got[n])
		ratio := ""
		if i > 0 {
			ratio = fmt.Sprintf(", offers/s %.2f × and CPU an offer %.2f × %d's", s.rate/prev.rate, s.cpuPerOffer/prev.cpuPerOffer, prev.n)
		}
		t.Logf("median of %d, %8d offers: %6.0f offers/s, CPU an offer %.3f ms (sandbox %.3f ms), peak RSS at most %d MB%s",
			rounds, n, s.rate, s.cpuPerOffer, s.sandboxPerOffer, s.peakRSS>>20, ratio)
		prev = s
	}
}

// scaleSummary is one size's medians over TestScale's rounds.
type scaleSummary struct {
	n                            int
	rate                         float64 // offers per second
	cpuPerOffer, sandboxPerOffer float64 // milliseconds
	peakRSS                      int64   // the largest, in bytes
}

func summarize(n int, ms []runMeasure) scaleSummary {
	median := func(f func(runMeasure) float64) float64 {
		v := make([]float64, len(ms))
		for i, m := range ms {
			v[i] = f(m)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	s := scaleSummary{n: n,
		rate:            median(func(m runMeasure) float64 { return m.rate }),
		cpuPerOffer:     median(func(m runMeasure) float64 { return m.cpu.Seconds() * 1e3 / float64(n) }),
		sandboxPerOffer: median(func(m runMeasure) float64 { return m.sandboxCPU.Seconds() * 1e3 / float64(n) }),
	}
	for _, m := range ms {
		s.peakRSS = max(s.peakRSS, m.peakRSS)
	}
	return s
}

// relayMessages is the size of the relay's measure, and relayPayload its
// messages' size: about an offer's.
const (
	relayMessages = 20000
	relayPayload  = 3 << 10
	relayInFlight = 1024 // the consumers' MaxAckPending
	// relayAckWait bounds the wait for a publish's acknowledgement, as the
	// pipeline's does: one lost under load would stop the relay for good.
	relayAckWait = 10 * time.Second
	relayIndex   = "Relay-Index" // the header numbering the messages
	// relayPullExpiry and relayPullHeartbeat are the pipeline's pullExpiry
	// and pullHeartbeat: a pull request that went astray stalls a consumer
	// until two heartbeats are missing.
	relayPullExpiry    = 5 * time.Second
	relayPullHeartbeat = time.Second
)

// relayTimeout bounds the relay's measure: five minutes, or
// $PULLJOBS_RELAY_TIMEOUT.
func relayTimeout() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("PULLJOBS_RELAY_TIMEOUT")); err == nil {
		return d
	}
	return 5 * time.Minute
}

// relayRounds is how many times TestScale measures the relay and the
// sandbox.
const relayRounds = 3

// relayRate moves n messages through two streams on an embedded server as
// bare as the pipeline's plumbing could be: published asynchronously to
// the first stream, relayed by one pull consumer to the second (published
// asynchronously, acknowledged at once), and acknowledged there. It returns
// messages per second, from the first publish to the last acknowledgement
// of the n distinct messages (a copy whose acknowledgement was lost is
// relayed again).
func relayRate(t *testing.T, n int) float64 {
	t.Helper()
	// The first publisher and the relay have a JetStream context each, as
	// the fetcher and the formatters have: one budget of asynchronous
	// publishes in flight for both would stall the relay while the first
	// publisher fills it.
	nc := natstest.Connect(t, natstest.Server(t))
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(relayAckWait))
	if err != nil {
		t.Fatal(err)
	}
	relayJS, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(relayAckWait))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout())
	defer cancel()
	streams := make([]jetstream.Stream, 2)
	for i, name := range []string{"RELAY_A", "RELAY_B"} {
		s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name)}, Storage: jetstream.FileStorage})
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = s
	}
	var consumers []jetstream.Consumer
	consume := func(s jetstream.Stream, handle func(jetstream.Msg)) jetstream.ConsumeContext {
		// The server deletes a consumer without a pull for a few seconds (the
		// default inactive threshold): a relay slowed down that long would
		// never end.
		c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: relayInFlight, InactiveThreshold: relayTimeout()})
		if err != nil {
			t.Fatal(err)
		}
		consumers = append(consumers, c)
		cc, err := c.Consume(handle, jetstream.PullExpiry(relayPullExpiry), jetstream.PullHeartbeat(relayPullHeartbeat))
		if err != nil {
			t.Fatal(err)
		}
		return cc
	}
	done := make(chan struct{})
	var received atomic.Int64
	seen := make([]bool, n)
	sink := consume(streams[1], func(m jetstream.Msg) {
		_ = m.Ack()
		i, err := strconv.Atoi(m.Headers().Get(relayIndex))
		if err != nil || i < 0 || i >= n || seen[i] {
			return
		}
		seen[i] = true
		if received.Add(1) == int64(n) {
			close(done)
		}
	})
	defer sink.Stop()
	// A relayed message is acknowledged once its copy is stored, not before:
	// a publish that fails is tried again instead of lost. One goroutine
	// waits for the copies in order.
	type relayed struct {
		copy jetstream.PubAckFuture
		m    jetstream.Msg
	}
	inFlight := make(chan relayed, relayInFlight)
	acked := make(chan struct{})
	go func() {
		defer close(acked)
		for r := range inFlight {
			select {
			case <-r.copy.Ok():
				_ = r.m.Ack()
			case <-r.copy.Err():
				_ = r.m.Nak()
			}
		}
	}()
	relay := consume(streams[0], func(m jetstream.Msg) {
		f, err := relayJS.PublishMsgAsync(&nats.Msg{Subject: "relay_b", Header: m.Headers(), Data: m.Data()})
		if err != nil {
			_ = m.Nak() // too many publishes in flight: again, later
			return
		}
		inFlight <- relayed{f, m}
	})
	defer func() { relay.Stop(); close(inFlight); <-acked }()
	payload := make([]byte, relayPayload)
	start := time.Now()
	for i := range n {
		m := nats.NewMsg("relay_a")
		m.Header.Set(relayIndex, strconv.Itoa(i))
		m.Data = payload
		if _, err := js.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		var state []string
		for _, c := range consumers {
			ci, err := c.Info(context.Background())
			if err != nil {
				state = append(state, err.Error())
				continue
			}
			state = append(state, fmt.Sprintf("%s: %d pending, %d acks pending, %d redelivered, %d pulls waiting, delivered %d",
				ci.Stream, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting, ci.Delivered.Stream))
		}
		t.Fatalf("relay: %d of %d messages in %v; %s", received.Load(), n, time.Since(start), strings.Join(state, "; "))
	}
	return float64(n) / time.Since(start).Seconds()
}

// sandboxRate runs `pulljobs run --sandbox --synthetic n`, emulators and
// all in one process, and returns the offers/s its report says.
func sandboxRate(t *testing.T, dir string, bin map[string]string, n int) float64 {
	t.Helper()
	report := filepath.Join(dir, "sandbox-report.json")
	cmd := exec.Command(bin["pulljobs"], "run", "--sandbox", "--synthetic", strconv.Itoa(n), "--report", report, "--log-level", "warn")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pulljobs run --sandbox: %v\n%s", err, out)
	}
	return readReport(t, report).OffersPerSecond
}

// runMeasure is what measureRun saw.
type runMeasure struct {
	wall       time.Duration
	rate       float64       // offers per second
	peakRSS    int64         // bytes
	natsRSS    string        // the separate nats-server's peak, when there is one
	cpu        time.Duration // the pipeline process's, user and system
	sandboxCPU time.Duration // the sandbox's, over its whole life
}

// measureRun runs n synthetic offers through `pulljobs run --config`
// against a sandbox of its own, and checks the run created them all.
func measureRun(t *testing.T, dir string, bin map[string]string, n int) runMeasure {
	t.Helper()
	// A store of its own, removed once measured: a million offers kept for
	// the retention take 4 GB, and each round is a first run.
	sub, err := os.MkdirTemp(dir, strconv.Itoa(n)+"-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = os.RemoveAll(filepath.Join(sub, "data"))
		_ = os.RemoveAll(filepath.Join(sub, "nats"))
	}()
	sb, ftURL, hrURL := spawnSandbox(t, sub, bin, "--synthetic", strconv.Itoa(n), "--seed", "11")
	stopSandbox := func() time.Duration {
		_ = sb.Process.Signal(syscall.SIGTERM)
		_ = wait(sb, 30*time.Second) // killed past it: ProcessState is set either way
		return sb.ProcessState.UserTime() + sb.ProcessState.SystemTime()
	}
	defer func() {
		if sb.ProcessState == nil {
			stopSandbox()
		}
	}()
	cfg := sandboxConfig(t, sub, ftURL, hrURL, "  retention: 1h\n")
	report := filepath.Join(sub, "report.json")
	args := []string{"run", "--config", cfg, "--data-dir", filepath.Join(sub, "data"), "--report", report, "--log-level", "warn"}
	natsPeak := func() string { return "" }
	if os.Getenv("PULLJOBS_SCALE_NATS") != "" {
		port := freePort(t)
		ns := start(t, sub, "nats-server", bin["nats-server"], "-js", "-sd", filepath.Join(sub, "nats"), "-a", "127.0.0.1", "-p", strconv.Itoa(port))
		waitPort(t, port)
		peak := watchPeakRSS(ns.Process.Pid)
		natsPeak = func() string {
			_ = ns.Process.Signal(syscall.SIGTERM)
			_ = wait(ns, 30*time.Second)
			return fmt.Sprintf(" (nats-server apart: peak RSS %d MB)", peak()>>20)
		}
		args = append(args, "--nats", fmt.Sprintf("nats://127.0.0.1:%d", port))
	}
	cmd := exec.Command(bin["pulljobs"], args...)
	cmd.Env = sandboxEnv()
	out, err := os.Create(filepath.Join(sub, "run.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	peak := watchPeakRSS(cmd.Process.Pid)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("pulljobs run of %d offers: %v\n%s", n, err, tail(sub, "run"))
	}
	wall := time.Since(began)
	r := readReport(t, report)
	if r.Events.Created != n {
		t.Errorf("%d offers: report says %d created: %+v", n, r.Events.Created, r.Events)
	}
	return runMeasure{wall: wall, rate: float64(n) / wall.Seconds(), peakRSS: peak(), natsRSS: natsPeak(),
		cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), sandboxCPU: stopSandbox()}
}

// rssPoll is how often watchPeakRSS reads a process's high-water mark.
const rssPoll = 20 * time.Millisecond

// watchPeakRSS follows the resident-memory high-water mark of process pid
// (VmHWM in /proc) until it exits; the returned func waits for that and
// returns it, in bytes. The rusage of the child is no use here: a process
// started from a Go program is forked sharing the test's memory, and its
// maximum RSS counts the test's own.
func watchPeakRSS(pid int) func() int64 {
	var peak int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				return // exited
			}
			for _, line := range strings.Split(string(b), "\n") {
				if kb, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					if v, err := strconv.ParseInt(strings.Fields(kb)[0], 10, 64); err == nil {
						peak = max(peak, v<<10)
					}
				}
				if state, ok := strings.CutPrefix(line, "State:"); ok && strings.Contains(state, "zombie") {
					return
				}
			}
			time.Sleep(rssPoll)
		}
	}()
	return func() int64 { <-done; return peak }
}

// TestRerunAtQuota measures what a run that changes nothing costs against
// HrFlow's default quota: PULLJOBS_RERUN offers are pushed once with no
// rate limit, then run again with every rate_limit at its default (10
// calls/s against HrFlow, 4 against France Travail). It prints the re-run's wall time and HrFlow
// calls, its listing calls among them, beside the floor of a path that
// reads each job (one call an offer at the same quota, what pulljobs did
// before the board index). PULLJOBS_RERUN_SANDBOX adds flags to the
// sandbox, such as "--hrflow-max-page 30" (with --hrflow-refuse-page): an
// HrFlow that serves smaller listing pages, or refuses larger ones;
// PULLJOBS_RERUN_FT_RATE sets France Travail's rate_limit of the re-run.
//
//	PULLJOBS_RERUN=20000 go test ./cmd/pulljobs -run 'TestRerunAtQuota$' -v -timeout 30m
func TestRerunAtQuota(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("PULLJOBS_RERUN"))
	if err != nil || n <= 0 {
		t.Skip("set PULLJOBS_RERUN=20000 to measure an unchanged re-run at the default quota")
	}
	dir := t.TempDir()
	bin := buildBinaries(t, dir)
	sb, ftURL, hrURL := spawnSandbox(t, dir, bin, append([]string{"--synthetic", strconv.Itoa(n), "--seed", "11"},
		strings.Fields(os.Getenv("PULLJOBS_RERUN_SANDBOX"))...)...)
	defer func() { _ = sb.Process.Signal(syscall.SIGTERM); _ = wait(sb, 30*time.Second) }()
	unlimited := sandboxConfig(t, dir, ftURL, hrURL, "  retention: 1h\n")
	b, err := os.ReadFile(unlimited)
	if err != nil {
		t.Fatal(err)
	}
	quota := filepath.Join(dir, "quota.yaml")
	writeFile(t, quota, strings.ReplaceAll(string(b), "  rate_limit: 0\n", "")) // the defaults
	if ft := os.Getenv("PULLJOBS_RERUN_FT_RATE"); ft != "" {
		// France Travail's rate instead of its default: its fetch, not
		// the listing, bounds a large re-run at 4 calls/s.
		writeFile(t, quota, strings.Replace(string(b), "  rate_limit: 0\n", "  rate_limit: "+ft+"\n", 1))
		setHrFlowRate(t, quota, strconv.Itoa(config.DefaultHrFlowRateLimit))
	}
	data := filepath.Join(dir, "data")
	var r runstatus.Report
	runOnce := func(cfg string) (pipelineWall time.Duration, calls int64) {
		t.Helper()
		before := hrCalls(t, hrURL)
		report := filepath.Join(dir, "report.json")
		cmd := exec.Command(bin["pulljobs"], "run", "--config", cfg, "--data-dir", data, "--report", report, "--log-level", "warn")
		cmd.Env = sandboxEnv()
		began := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pulljobs run --config %s: %v\n%s", cfg, err, out)
		}
		wall := time.Since(began)
		if r = readReport(t, report); r.Events.ReadSuccess != n {
			t.Fatalf("report: %+v, want %d offers read", r.Events, n)
		}
		return wall, hrCalls(t, hrURL) - before
	}
	first, firstCalls := runOnce(unlimited)
	t.Logf("first run, no rate limit: %.1f s, %d HrFlow calls (%.3f an offer)", first.Seconds(), firstCalls, float64(firstCalls)/float64(n))
	listed := hrStats(t, hrURL).Total(hrflowtest.RouteListJobs)
	rerun, calls := runOnce(quota)
	listed = hrStats(t, hrURL).Total(hrflowtest.RouteListJobs) - listed
	t.Logf("unchanged re-run at the default quota: %.1f s, %d HrFlow calls (%.3f an offer), %d of them listing the board; a read per offer would take at least %.0f s",
		rerun.Seconds(), calls, float64(calls)/float64(n), listed, float64(n)/config.DefaultHrFlowRateLimit)
	if e := r.Events; r.Status != runstatus.StatusSuccess || e.Created+e.Updated+e.Unarchived != 0 || e.Skipped+e.Unchanged != n {
		t.Errorf("re-run: status %s, events %+v; want success with all %d offers left alone", r.Status, e, n)
	}
	if calls > int64(n)/10 {
		t.Errorf("unchanged re-run made %d HrFlow calls for %d offers, want at most a tenth", calls, n)
	}
}

// hrCalls returns every call the HrFlow emulator has answered.
func hrCalls(t *testing.T, hrURL string) int64 {
	t.Helper()
	st := hrStats(t, hrURL)
	var total int64
	for _, route := range st.Routes() {
		total += st.Total(route)
	}
	return total
}
