package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/ratelimit"
)

// TestChaos runs randomized fault trials against the deployment that
// TestMultiProcess builds: per trial a nats-server of its own, the sandbox,
// two formatters, two pushers and `fetcher run --wait --report`. Each trial
// kills one victim with SIGKILL at a random moment and restarts it with the
// same command line: a formatter, a pusher, the pusher that owns the sync,
// the fetcher before or after its seal, or nats-server (on the same store
// and port). Then it asserts what an undisturbed run gives: the exact board,
// one creation per new offer, one archive per stale job, the exact report
// counters, exit 0, and one run. Every other trial (the even ones) runs a
// second board at once, with a fetcher of its own: the workers serve both
// runs, and both boards must end exact.
//
// It is opt-in, and needs a nats-server binary:
//
//	PULLJOBS_NATS_SERVER=/tmp/x/nats-server PULLJOBS_CHAOS_TRIALS=20 go test ./cmd/pulljobs -run Chaos -v
//
// PULLJOBS_CHAOS_SEED=N replays the trials of seed N (a single one with
// -run 'Chaos/^07-'); PULLJOBS_CHAOS_FAULTS=1 adds 5xx answers and
// connection resets on both APIs; PULLJOBS_CHAOS_VICTIMS=a,b draws the
// victims from that list only; PULLJOBS_CHAOS_CAPACITY=N makes HrFlow
// serve N calls a second in all, and the pushers learn it (rate_limit:
// auto); PULLJOBS_CHAOS_LOGS=DIR keeps the logs of failed trials there.
// Trial 00 is the control: no victim, which checks the expectations
// against an undisturbed run. TESTING.md, beside this file, tells how to
// read a failed trial.
func TestChaos(t *testing.T) {
	o := chaosEnv(t)
	began := time.Now()
	t.Logf("chaos: seed %d, %d trials, api faults %v, victims %s (replay: PULLJOBS_CHAOS_SEED=%d)",
		o.seed, o.trials, o.faults, strings.Join(o.victims, ","), o.seed)
	bin := buildBinaries(t, t.TempDir())
	var results []trialResult
	deadline, hasDeadline := t.Deadline()
	for _, p := range planTrials(o) {
		if hasDeadline && time.Until(deadline) < p.budget() {
			t.Errorf("stopped before trial %02d: the test's -timeout is near; 20 trials want -timeout 30m", p.index)
			break
		}
		var r trialResult
		t.Run(p.name(), func(t *testing.T) { r = runTrial(t, bin, p) })
		if r.plan.name() != "" {
			results = append(results, r)
		}
	}
	logSummary(t, o, results, time.Since(began))
}

// chaosOptions are TestChaos's environment.
type chaosOptions struct {
	trials   int
	seed     uint64
	faults   bool
	victims  []string
	capacity float64 // HrFlow's calls/s in all; 0: none
}

// chaosEnv reads the options, and skips the test unless it is asked for
// and a nats-server binary is given.
func chaosEnv(t *testing.T) chaosOptions {
	t.Helper()
	n, _ := strconv.Atoi(os.Getenv("PULLJOBS_CHAOS_TRIALS"))
	if n <= 0 {
		t.Skip("chaos trials are opt-in: set PULLJOBS_CHAOS_TRIALS=N")
	}
	if os.Getenv("PULLJOBS_NATS_SERVER") == "" {
		t.Skip("chaos trials need PULLJOBS_NATS_SERVER, a nats-server binary (go build -o /tmp/x/nats-server github.com/nats-io/nats-server/v2)")
	}
	o := chaosOptions{trials: n, victims: chaosVictims}
	o.faults, _ = strconv.ParseBool(os.Getenv("PULLJOBS_CHAOS_FAULTS"))
	if s := os.Getenv("PULLJOBS_CHAOS_CAPACITY"); s != "" {
		c, err := strconv.ParseFloat(s, 64)
		if err != nil || c <= 0 {
			t.Fatalf("PULLJOBS_CHAOS_CAPACITY=%s: want calls per second > 0", s)
		}
		o.capacity = c
	}
	if s := os.Getenv("PULLJOBS_CHAOS_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PULLJOBS_CHAOS_SEED=%s: want a non-negative integer", s)
		}
		o.seed = seed
	} else {
		o.seed = 1 + rand.Uint64N(1_000_000_000) // short enough to type
	}
	if s := os.Getenv("PULLJOBS_CHAOS_VICTIMS"); s != "" {
		o.victims = strings.Split(s, ",")
		for _, v := range o.victims {
			if _, ok := victimPhases[v]; !ok {
				t.Fatalf("PULLJOBS_CHAOS_VICTIMS: unknown victim %q; want some of %s", v, strings.Join(chaosVictims, ","))
			}
		}
	}
	return o
}

// Victims of a trial.
const (
	victimNone          = "none" // the control trial
	victimFormatter     = "formatter"
	victimPusher        = "pusher"
	victimSyncOwner     = "sync-owner"
	victimFetcherBefore = "fetcher-before-seal"
	victimFetcherAfter  = "fetcher-after-seal"
	victimNATS          = "nats-server"
)

var chaosVictims = []string{victimFormatter, victimPusher, victimSyncOwner, victimFetcherBefore, victimFetcherAfter, victimNATS}

// Phases of a run, in which a victim is killed. Each has its measure of
// progress, and a trial kills when a drawn share of it is reached.
const (
	phaseNone  = "-"
	phaseFetch = "fetch" // offers in the stream, run not sealed
	phasePush  = "push"  // jobs created on the board
	phaseSync  = "sync"  // final key taken; stale jobs archived
)

// victimPhases lists the phases each victim can be killed in.
var victimPhases = map[string][]string{
	victimFormatter:     {phaseFetch, phasePush},
	victimPusher:        {phaseFetch, phasePush},
	victimSyncOwner:     {phaseSync},
	victimFetcherBefore: {phaseFetch},
	victimFetcherAfter:  {phasePush},
	victimNATS:          {phaseFetch, phasePush, phaseSync},
}

// Sizes of a trial's corpus and board.
const (
	minOffers, maxOffers = 3000, 5000
	minStale, maxStale   = 10, 50
	maxKept              = 40
)

// trialPlan is everything a trial draws from its seed.
type trialPlan struct {
	index  int
	seed   uint64 // the trial's own seed; the corpus's too
	victim string
	which  int     // which formatter or pusher: 1 or 2
	phase  string  // when it is killed
	at     float64 // how far into the phase, in [0, 1)
	offers int     // size of the synthetic corpus
	stale  int     // jobs on the board whose offer is gone
	kept   int     // jobs on the board whose offer is live
	faults bool    // 5xx and resets on both APIs
	// second runs a first run of the corpus on a second, empty board at
	// the same time, with a fetcher of its own (never the victim).
	second bool
	// capacity is HrFlow's calls per second in all, 0 for none; the
	// pushers then learn it.
	capacity float64

	testSeed uint64 // what replays it: the test's seed, trial count and victims
	trials   int
	victims  []string
}

// env is the environment, beside the seed and trial count, that replays
// the trial.
func (p trialPlan) env() string {
	var s string
	if p.faults {
		s += " PULLJOBS_CHAOS_FAULTS=1"
	}
	if !slices.Equal(p.victims, chaosVictims) {
		s += " PULLJOBS_CHAOS_VICTIMS=" + strings.Join(p.victims, ",")
	}
	if p.capacity > 0 {
		s += " PULLJOBS_CHAOS_CAPACITY=" + strconv.FormatFloat(p.capacity, 'g', -1, 64)
	}
	return s
}

// slowdown is how much longer than without a capacity a trial's push may
// take: the offers at the capacity (or the adaptive rate's ceiling, if
// lower), both boards' with a second one, and the climb from the start
// rate.
func (p trialPlan) slowdown() time.Duration {
	if p.capacity == 0 {
		return 0
	}
	offers := float64(maxOffers)
	if p.second {
		offers *= 2
	}
	perSecond := min(p.capacity, ratelimit.DefaultCeiling)
	return time.Duration(offers/perSecond*float64(time.Second)) + capacityClimb
}

// capacityClimb is about how long the adaptive rate takes to climb from
// its start to its ceiling.
const capacityClimb = 20 * time.Second

// momentTimeout bounds the wait for the drawn moment; runTimeout the
// fetcher's exit, from the trial's start; budget the whole trial.
func (p trialPlan) momentTimeout() time.Duration { return momentTimeout + p.slowdown() }
func (p trialPlan) runTimeout() time.Duration    { return runTimeout + p.slowdown() }
func (p trialPlan) budget() time.Duration        { return trialBudget + p.slowdown() }

func (p trialPlan) name() string {
	if p.victim == "" {
		return ""
	}
	return fmt.Sprintf("%02d-%s", p.index, p.victim)
}

func (p trialPlan) String() string {
	v := p.victim
	if p.victim == victimFormatter || p.victim == victimPusher {
		v = fmt.Sprintf("%s-%d", p.victim, p.which)
	}
	boards := "one board"
	if p.second {
		boards = "two boards"
	}
	capacity := ""
	if p.capacity > 0 {
		capacity = fmt.Sprintf("; HrFlow capacity %v calls/s", p.capacity)
	}
	return fmt.Sprintf("trial %02d (seed %d): victim %s, phase %s at %.0f%%; %d offers, %d stale jobs, %d kept, %s; api faults %v%s",
		p.index, p.seed, v, p.phase, 100*p.at, p.offers, p.stale, p.kept, boards, p.faults, capacity)
}

// planTrials draws the control trial and o.trials others. The victims come
// in shuffled rounds of every victim, so that a few trials cover them all.
// A trial's plan depends only on the seed and its index: -run replays one.
func planTrials(o chaosOptions) []trialPlan {
	plans := []trialPlan{planTrial(o, 0, victimNone)}
	order := rand.New(rand.NewPCG(o.seed, 0x5eed))
	var round []string
	for i := 1; i <= o.trials; i++ {
		if len(round) == 0 {
			round = slices.Clone(o.victims)
			order.Shuffle(len(round), func(a, b int) { round[a], round[b] = round[b], round[a] })
		}
		plans = append(plans, planTrial(o, i, round[0]))
		round = round[1:]
	}
	return plans
}

func planTrial(o chaosOptions, index int, victim string) trialPlan {
	seed := splitmix(o.seed + uint64(index))
	seed = 1 + seed%1_000_000_000
	rng := rand.New(rand.NewPCG(seed, 0x7269616c))
	p := trialPlan{index: index, seed: seed, victim: victim, faults: o.faults, capacity: o.capacity, phase: phaseNone,
		testSeed: o.seed, trials: o.trials, victims: o.victims}
	p.offers = minOffers + rng.IntN(maxOffers-minOffers+1)
	p.stale = minStale + rng.IntN(maxStale-minStale+1)
	p.kept = rng.IntN(maxKept + 1)
	p.which = 1 + rng.IntN(2)
	p.second = index > 0 && index%2 == 0
	if phases := victimPhases[victim]; len(phases) > 0 {
		p.phase = phases[rng.IntN(len(phases))]
		p.at = 0.05 + 0.85*rng.Float64()
		if p.phase == phaseSync {
			p.at = 0.9 * rng.Float64() // 0: as soon as the final key is taken
		}
	}
	return p
}

// splitmix spreads consecutive seeds over the whole range.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// trialResult is what the summary shows of a trial.
type trialResult struct {
	plan     trialPlan
	moment   string   // what the harness saw when it killed
	missed   bool     // the phase ended before the drawn moment
	failures []string // the assertions that failed
	took     time.Duration
}

// logSummary prints one line per trial and the totals.
func logSummary(t *testing.T, o chaosOptions, results []trialResult, took time.Duration) {
	var b strings.Builder
	failed, missed := 0, 0
	for _, r := range results {
		verdict := "ok"
		if len(r.failures) > 0 {
			failed++
			verdict = "FAIL: " + strings.Join(r.failures, "; ")
			if len(verdict) > 300 {
				verdict = verdict[:300] + "…"
			}
		}
		if r.missed {
			missed++
		}
		fmt.Fprintf(&b, "  %-24s %-6s %5.1fs  %s\n      %s\n", r.plan.name(), r.plan.phase, r.took.Seconds(), r.moment, verdict)
	}
	t.Logf("chaos summary, seed %d, api faults %v: %d trials, %d passed, %d failed, %d killed late (phase over), %.0fs in all\n%s",
		o.seed, o.faults, len(results), len(results)-failed, failed, missed, took.Seconds(), b.String())
}
