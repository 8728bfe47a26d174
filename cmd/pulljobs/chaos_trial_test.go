package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
)

// chaosPipeline is the pipeline section of a trial's configuration: short
// enough leases and acknowledgement waits that a killed process is replaced
// within seconds, long enough that a busy 2-core machine does not make a
// live one look dead.
var chaosPipeline = fmt.Sprintf(`
  ack_wait: 2s
  lease_ttl: 4s
  drain_timeout: 2s
  stall_after: 30s
  concurrency: %d
`, chaosConcurrency)

// chaosConcurrency is how many calls a pusher makes at once, its sync's
// archives included: they come in bursts of that many.
const chaosConcurrency = 16

// Latencies every trial adds to the APIs: they widen the fetch and the sync
// enough for a kill to land inside them, at a poll every pollInterval. A
// trial that kills during the sync slows HrFlow down further once every job
// is created: the sync then lasts a few hundred milliseconds, not a few tens.
const (
	ftLatency   = 20 * time.Millisecond
	hrLatency   = 2 * time.Millisecond
	syncLatency = 25 * time.Millisecond
)

// Faults of PULLJOBS_CHAOS_FAULTS, on both APIs.
const (
	faultErrorRate = 0.02
	faultResetRate = 0.01
)

const (
	pollInterval  = 5 * time.Millisecond
	momentTimeout = 60 * time.Second                            // for the drawn moment to come
	runTimeout    = 90 * time.Second                            // for the fetcher to exit, from the trial's start
	settleTimeout = 30 * time.Second                            // for every run to end once the fetcher exited
	trialBudget   = runTimeout + settleTimeout + 30*time.Second // the most a trial takes
	tailLines     = 20
)

// chaosTrial is one trial's deployment, and what the harness saw of it.
type chaosTrial struct {
	t     *testing.T
	plan  trialPlan
	dir   string
	bin   map[string]string
	began time.Time

	natsPort              int
	natsURL, ftURL, hrURL string
	sec                   *secured // NATS's users: each process runs as its role
	cfg, report           string
	secondReport          string           // the second board's fetcher's, with plan.second
	procs                 map[string]*proc // the current process of each name
	all                   []*proc          // every process started, killed ones too
	obs                   *observer
	base                  emulator.Stats // HrFlow's counters before the run
	corpus, stale, kept   []string       // offer ids; references of the board's jobs
	run                   string         // the first run's id, once seen
}

// runTrial runs one trial and returns what it saw; a failed assertion fails t.
func runTrial(t *testing.T, bin map[string]string, p trialPlan) trialResult {
	t.Logf("%s", p)
	tr := &chaosTrial{t: t, plan: p, dir: t.TempDir(), bin: bin, began: time.Now(), procs: map[string]*proc{}}
	tr.setUp()
	tr.startPipeline()
	res := trialResult{plan: p, moment: "undisturbed"}
	var failures []string
	if p.victim != victimNone {
		var err error
		res.moment, res.missed, err = tr.strike()
		if err != nil {
			failures = append(failures, "harness: "+err.Error())
		}
	}
	exit, err := tr.finish()
	if err != nil {
		failures = append(failures, err.Error())
	}
	res.failures = append(failures, tr.verify(exit)...)
	res.took = time.Since(tr.began)
	if len(res.failures) > 0 {
		t.Errorf("%s\nkilled: %s\nreplay: PULLJOBS_CHAOS_SEED=%d PULLJOBS_CHAOS_TRIALS=%d%s go test ./cmd/pulljobs -run 'Chaos/^%02d-' -v\nfailures:\n  %s\n%s",
			p, res.moment, p.testSeed, p.trials, p.env(), p.index, strings.Join(res.failures, "\n  "), tr.logTails())
		tr.keepLogs(os.Getenv("PULLJOBS_CHAOS_LOGS"))
	} else {
		t.Logf("ok in %.1fs: %s", res.took.Seconds(), res.moment)
	}
	return res
}

// spawn starts a process of the trial under name, as its role on NATS; a
// restart's log is name.2.log.
func (tr *chaosTrial) spawn(name string, argv ...string) *proc {
	logName := name
	if _, ok := tr.procs[name]; ok {
		n := 1
		for _, p := range tr.all {
			if p.name == name {
				n++
			}
		}
		logName = fmt.Sprintf("%s.%d", name, n)
	}
	env := tr.sec.as(roleOf(name))
	if name == "nats-server" {
		env = tr.sec.serverEnv()
	}
	p := spawn(tr.t, tr.dir, name, logName, env, argv...)
	tr.procs[name] = p
	tr.all = append(tr.all, p)
	return p
}

// setUp starts nats-server and the sandbox, seeds the board, puts the
// faults in force and notes HrFlow's counters.
func (tr *chaosTrial) setUp() {
	t, p := tr.t, tr.plan
	tr.natsPort = freePort(t)
	ftPort, hrPort := freePort(t), freePort(t)
	tr.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", tr.natsPort)
	tr.ftURL, tr.hrURL = fmt.Sprintf("http://127.0.0.1:%d", ftPort), fmt.Sprintf("http://127.0.0.1:%d", hrPort)
	tr.sec = newSecured(t, tr.dir, false)
	tr.sec.watchLogs("nats-server")
	tr.spawn("nats-server", tr.bin["nats-server"], "--config", tr.sec.standalone(t, tr.natsPort, freePort(t)))
	sandbox := []string{tr.bin["pulljobs"], "sandbox", "--francetravail-addr", fmt.Sprintf("127.0.0.1:%d", ftPort),
		"--hrflow-addr", fmt.Sprintf("127.0.0.1:%d", hrPort), "--synthetic", fmt.Sprint(p.offers), "--seed", fmt.Sprint(p.seed),
		"--stale-jobs", fmt.Sprint(p.stale), "--log-format", "json"}
	if p.second {
		sandbox = append(sandbox, "--board-key", hrflowtest.DefaultBoardKey, "--board-key", secondBoard)
	}
	tr.spawn("sandbox", sandbox...)
	for _, port := range []int{tr.natsPort, ftPort, hrPort} {
		waitPort(t, port)
	}
	tr.seedBoard()

	setFaults(t, tr.ftURL, tr.faults(ftLatency, 0))
	setFaults(t, tr.hrURL, tr.faults(hrLatency, hrflowSalt))
	tr.base = hrStats(t, tr.hrURL)
	tr.obs = newObserver(t, tr.natsURL, nats.UserInfo(roleStatus, tr.sec.passwords[roleStatus]))
	tr.cfg = sandboxConfig(t, tr.dir, tr.ftURL, tr.hrURL, chaosPipeline)
	if p.capacity > 0 {
		setHrFlowRate(t, tr.cfg, "auto")
	}
}

// faults is the fault injection of an emulator: latency, and the API faults
// when the trial asks for them, drawn from the trial's seed (plus salt, one
// per emulator).
func (tr *chaosTrial) faults(latency time.Duration, salt uint64) emulator.Config {
	c := emulator.Config{Latency: emulator.Duration(latency)}
	if tr.plan.faults {
		c.ErrorRate, c.ResetRate, c.Seed = faultErrorRate, faultResetRate, tr.plan.seed+salt
	}
	if salt == hrflowSalt {
		c.Capacity = tr.plan.capacity
	}
	return c
}

// hrflowSalt is the salt of the HrFlow emulator's faults.
const hrflowSalt = 1

// seedBoard adds the kept jobs, as a user would through the API: jobs of
// live offers, formatted as the run formats them, so that the run skips
// them. The sandbox put the stale ones. It then reads the board back.
func (tr *chaosTrial) seedBoard() {
	t := tr.t
	offers := corpusOffers(t, tr.ftURL)
	tr.corpus = slices.Sorted(maps.Keys(offers))
	rng := rand.New(rand.NewPCG(tr.plan.seed, 0x6b657074))
	c := hrClient(t, tr.hrURL)
	defer c.CloseIdleConnections()
	for _, i := range rng.Perm(len(tr.corpus))[:min(tr.plan.kept, len(tr.corpus))] {
		job, err := format.PoleEmploi(offers[tr.corpus[i]])
		if err != nil {
			t.Fatalf("format kept offer %s: %v", tr.corpus[i], err)
		}
		if _, err := c.CreateJob(context.Background(), hrflowtest.DefaultBoardKey, job); err != nil {
			t.Fatalf("seed kept job: %v", err)
		}
	}
	live, archived := board(t, tr.hrURL)
	if len(archived) > 0 {
		t.Fatalf("the seeded board has %d archived jobs, want none", len(archived))
	}
	for _, ref := range live {
		if _, ok := slices.BinarySearch(tr.corpus, ref); ok {
			tr.kept = append(tr.kept, ref)
		} else {
			tr.stale = append(tr.stale, ref)
		}
	}
}

// secondBoard is the board of a trial's second run.
const secondBoard = "5ec0d5ec0d5ec0d5ec0d5ec0d5ec0d5ec0d5ec0d"

// startPipeline starts two formatters, two pushers and the fetcher, and
// the second board's fetcher with plan.second.
func (tr *chaosTrial) startPipeline() {
	for _, name := range []string{"formatter-1", "formatter-2", "pusher-1", "pusher-2"} {
		tr.spawn(name, tr.bin[roleOf(name)], "--nats", tr.natsURL, "--config", tr.cfg, "--log-format", "json")
	}
	tr.report = filepath.Join(tr.dir, "report.json")
	tr.spawn("fetcher", tr.bin["fetcher"], "run", "--nats", tr.natsURL, "--config", tr.cfg, "--wait", "--report", tr.report, "--log-format", "json")
	if tr.plan.second {
		cfg, err := os.ReadFile(tr.cfg)
		if err != nil {
			tr.t.Fatal(err)
		}
		second := filepath.Join(tr.dir, "second.yaml")
		writeFile(tr.t, second, strings.Replace(string(cfg), "board_key: "+hrflowtest.DefaultBoardKey, "board_key: "+secondBoard, 1))
		tr.secondReport = filepath.Join(tr.dir, "second-report.json")
		tr.spawn("fetcher-second", tr.bin["fetcher"], "run", "--nats", tr.natsURL, "--config", second, "--wait", "--report", tr.secondReport, "--log-format", "json")
	}
}

// runState is where the run is, as the harness sees it from outside.
type runState struct {
	published         uint64 // offers in the stream (fetch phase only)
	sealed, reported  bool
	final             []byte // the final key's value; nil before
	created, archived int64  // HrFlow's 201s and archive 200s since the run began
}

func (s runState) String() string {
	var b strings.Builder
	if s.published > 0 {
		fmt.Fprintf(&b, "%d offers published, ", s.published)
	}
	fmt.Fprintf(&b, "%d jobs created, %d archived", s.created, s.archived)
	for _, f := range []struct {
		on   bool
		name string
	}{{s.sealed, "sealed"}, {s.final != nil, "final key taken"}, {s.reported, "reported"}} {
		if f.on {
			b.WriteString(", " + f.name)
		} else {
			b.WriteString(", not " + f.name)
		}
	}
	return b.String()
}

// look reads the run's state.
func (tr *chaosTrial) look() runState {
	var s runState
	if tr.run == "" {
		tr.run = tr.obs.runOf(hrflowtest.DefaultBoardKey)
	}
	if tr.plan.phase == phaseFetch {
		s.published, _ = tr.obs.published()
	}
	if tr.run != "" {
		_, s.sealed = tr.obs.get(tr.run + ".seal")
		s.final, _ = tr.obs.get(tr.run + ".final")
		_, s.reported = tr.obs.get(tr.run + ".report")
	}
	st := hrStats(tr.t, tr.hrURL)
	s.created = st.Count(hrflowtest.RouteCreateJob, 201) - tr.base.Count(hrflowtest.RouteCreateJob, 201)
	s.archived = st.Count(hrflowtest.RouteArchiveJob, 200) - tr.base.Count(hrflowtest.RouteArchiveJob, 200)
	return s
}

// reached reports whether the drawn moment has come, or passed.
func (tr *chaosTrial) reached(s runState) bool {
	p := tr.plan
	switch p.phase {
	case phaseFetch:
		return s.sealed || s.published >= uint64(p.at*float64(p.offers))
	case phasePush:
		return s.final != nil || s.created >= int64(p.at*float64(p.offers-len(tr.kept))) && (p.victim != victimFetcherAfter || s.sealed)
	case phaseSync:
		// Archives come in bursts: a kill after the last one would find
		// the run reported. So the moment leaves at least one burst to go.
		return s.final != nil && s.archived >= int64(p.at*float64(max(len(tr.stale)-chaosConcurrency, 0)))
	}
	return true
}

// late reports whether the drawn phase was over when the harness looked.
func (tr *chaosTrial) late(s runState) bool {
	switch tr.plan.phase {
	case phaseFetch:
		return s.sealed || s.reported
	case phasePush:
		return s.final != nil || s.reported
	}
	return s.reported
}

// awaitMoment polls the run until the drawn moment comes, the run ends, or
// the fetcher exits.
func (tr *chaosTrial) awaitMoment() (runState, error) {
	deadline := time.Now().Add(tr.plan.momentTimeout())
	slowed := false
	for {
		s := tr.look()
		if tr.plan.phase == phaseSync && !slowed && s.created >= int64(len(tr.corpus)-len(tr.kept)) {
			setFaults(tr.t, tr.hrURL, tr.faults(syncLatency, hrflowSalt))
			slowed = true
		}
		if tr.reached(s) || s.reported || tr.procs["fetcher"].exited() {
			return s, nil
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("the drawn moment did not come within %v: %s", tr.plan.momentTimeout(), s)
		}
		time.Sleep(pollInterval)
	}
}

// victimName names the process to kill at state s.
func (tr *chaosTrial) victimName(s runState) (string, error) {
	switch p := tr.plan; p.victim {
	case victimFormatter, victimPusher:
		return fmt.Sprintf("%s-%d", p.victim, p.which), nil
	case victimFetcherBefore, victimFetcherAfter:
		return "fetcher", nil
	case victimNATS:
		return "nats-server", nil
	case victimSyncOwner:
		if s.final == nil {
			return "", fmt.Errorf("no sync owner to kill: the run has no final key (%s)", s)
		}
		pid, owner, err := ownerPID(s.final)
		if err != nil {
			return "", err
		}
		for _, name := range []string{"pusher-1", "pusher-2"} {
			if tr.procs[name].pid() == pid {
				return name, nil
			}
		}
		return "", fmt.Errorf("the final key's owner %s is none of the pushers", owner)
	}
	return "", fmt.Errorf("unknown victim %q", tr.plan.victim)
}

// strike waits for the drawn moment, kills the victim with SIGKILL, and
// starts it again with the same command line. It describes what it saw.
func (tr *chaosTrial) strike() (moment string, late bool, err error) {
	s, err := tr.awaitMoment()
	if err != nil {
		return s.String(), false, err
	}
	late = tr.late(s)
	name, err := tr.victimName(s)
	if err != nil {
		return s.String(), late, err
	}
	v := tr.procs[name]
	if v.exited() {
		return fmt.Sprintf("nothing killed: %s had exited with %d at %s", name, v.exitCode(), s), true, nil
	}
	at := time.Since(tr.began)
	v.kill()
	moment = fmt.Sprintf("SIGKILL %s (pid %d) at %.1fs: %s", name, v.pid(), at.Seconds(), s)
	if late {
		moment += " [late: the phase was over]"
	}
	if name == "fetcher" && !s.sealed {
		// Was the seal written between the look and the kill?
		if after := tr.look(); after.sealed {
			moment += " [sealed before the kill landed]"
		}
	}
	tr.spawn(name, v.argv...)
	if name == "nats-server" {
		waitPort(tr.t, tr.natsPort)
	}
	return moment, late, nil
}

// finish waits for the fetcher command to exit, then for every run to end:
// a fetcher that exited early leaves its run to the workers, and the board
// is final only then.
func (tr *chaosTrial) finish() (exit int, err error) {
	f := tr.procs["fetcher"]
	if !f.waitExit(time.Until(tr.began.Add(tr.plan.runTimeout()))) {
		f.kill()
		return -1, fmt.Errorf("the fetcher did not exit within %v of the trial's start (killed)", tr.plan.runTimeout())
	}
	if s := tr.procs["fetcher-second"]; s != nil && !s.waitExit(time.Until(tr.began.Add(runTimeout))) {
		s.kill()
		return f.exitCode(), fmt.Errorf("the second board's fetcher did not exit within %v of the trial's start (killed)", runTimeout)
	}
	deadline := time.Now().Add(settleTimeout)
	for {
		ids, err := tr.obs.runIDs()
		var unsealed, going []string
		for _, id := range ids {
			_, sealed := tr.obs.get(id + ".seal")
			_, reported := tr.obs.get(id + ".report")
			final, _ := tr.obs.get(id + ".final")
			switch {
			case !sealed:
				unsealed = append(unsealed, id) // no fetcher left to seal it: it never ends
			case !reported && !strings.Contains(string(final), `"abandoned"`):
				going = append(going, id)
			}
		}
		switch {
		case err == nil && len(going) == 0 && len(unsealed) > 0:
			return f.exitCode(), fmt.Errorf("run %s never sealed: no fetcher left to finish it; the board stays tied to it", strings.Join(unsealed, ", "))
		case err == nil && len(going) == 0:
			return f.exitCode(), nil
		case time.Now().After(deadline):
			return f.exitCode(), fmt.Errorf("runs %v not ended %v after the fetcher exited", going, settleTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// keepLogs copies the logs of every process of a failed trial into
// dir/<trial>/, when dir is set: the trial's own directory goes with it.
func (tr *chaosTrial) keepLogs(dir string) {
	if dir == "" {
		return
	}
	dst := filepath.Join(dir, tr.plan.name())
	if err := os.MkdirAll(dst, 0o755); err != nil {
		tr.t.Logf("keep logs: %v", err)
		return
	}
	for _, p := range tr.all {
		b, err := os.ReadFile(p.log)
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, filepath.Base(p.log)), b, 0o644)
		}
		if err != nil {
			tr.t.Logf("keep logs: %v", err)
		}
	}
	tr.t.Logf("logs kept in %s", dst)
}
