package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/service"
)

// TestFairness measures how runs share one fleet (fair dispatch), on a
// real nats-server with two formatter and two pusher processes and
// HrFlow's quota at its default, 10 calls/s, shared by every pusher. The
// sandbox serves 20 000 synthetic offers (seed 3) to one HrFlow account of
// many boards. A small run is a first run of one département's offers
// (the one nearest 194).
//
//  1. The small run alone, on a board of its own; then a first run of the
//     20 000 offers on another board and, 30 s later, the small run on a
//     third: it must end within 2.5 × its time alone (publish order kept
//     it behind the whole big run).
//  2. Beside the big run, still going, twenty small runs, one a board,
//     triggered together through pulljobs.trigger.<profile> (fetcher
//     serve): all must end success and exact, the slowest within 3 × the
//     fastest, and the big run must go on meanwhile.
//
// It is a measurement, opt-in, of about ten minutes:
//
//	PULLJOBS_FAIRNESS=1 PULLJOBS_NATS_SERVER=/tmp/x/nats-server go test ./cmd/pulljobs -run '^TestFairness$' -v -timeout 30m
func TestFairness(t *testing.T) {
	if os.Getenv("PULLJOBS_FAIRNESS") == "" || os.Getenv("PULLJOBS_NATS_SERVER") == "" {
		t.Skip("a measurement: set PULLJOBS_FAIRNESS=1 and PULLJOBS_NATS_SERVER")
	}
	const smallRuns = 20
	f := newFairFleet(t, 3+smallRuns)
	dept := f.smallDepartement(fairSmall)
	alone := f.run("alone", f.boards[2], dept)
	n := alone.Events.ReadSuccess
	t.Logf("the small run alone, département %s, %d offers: %.1f s", dept, n, alone.DurationSeconds)
	checkSmall(t, "alone", alone, n)

	bigDone := make(chan error, 1)
	big := f.fetcher("big", f.boards[0], "")
	go func() { bigDone <- wait(big, 2*time.Hour) }()
	time.Sleep(fairDelay)
	beside := f.run("beside", f.boards[1], dept)
	checkSmall(t, "beside the big run", beside, n)
	ratio := beside.DurationSeconds / alone.DurationSeconds
	t.Logf("the small run %v after a 20 000-offer first run began: %.1f s, %.2f × its time alone (target: at most %.1f ×)",
		fairDelay, beside.DurationSeconds, ratio, fairTarget)
	if ratio > fairTarget {
		t.Errorf("the small run beside the big one took %.2f × its time alone, over the %.1f × target", ratio, fairTarget)
	}

	bigRun := f.runOf(f.boards[0])
	before := f.done(bigRun)
	reports := f.triggerSmallRuns(f.boards[3:], dept)
	after := f.done(bigRun)
	var fastest, slowest float64
	for i, r := range reports {
		checkSmall(t, fmt.Sprintf("triggered run %d", i), r, n)
		if i == 0 || r.DurationSeconds < fastest {
			fastest = r.DurationSeconds
		}
		slowest = max(slowest, r.DurationSeconds)
	}
	t.Logf("%d small runs triggered together beside the big run: fastest %.1f s, slowest %.1f s (%.2f ×; target at most 3 ×); the big run ended %d items meanwhile",
		len(reports), fastest, slowest, slowest/fastest, after-before)
	if slowest > 3*fastest {
		t.Errorf("the slowest of the triggered runs took %.2f × the fastest, over 3 ×", slowest/fastest)
	}
	if after <= before {
		t.Errorf("the big run ended no item (%d, then %d) while the small runs ran: it must keep going", before, after)
	}
	select {
	case err := <-bigDone:
		t.Errorf("the big run's fetcher exited before the end of the measurement: %v", err)
	default:
	}
}

// The measurement's settings.
const (
	fairOffers = 20000
	fairSeed   = 3
	fairSmall  = 194 // offers of a small run, about
	fairRate   = 10  // HrFlow calls/s, every pusher together: the default
	fairDelay  = 30 * time.Second
	fairTarget = 2.5
)

// fairFleet is the measurement's deployment.
type fairFleet struct {
	t        *testing.T
	dir      string
	bin      map[string]string
	natsURL  string
	ftURL    string
	hrURL    string
	boards   []string
	nc       *nats.Conn
	js       jetstream.JetStream
	profiles string
}

func newFairFleet(t *testing.T, boards int) *fairFleet {
	t.Helper()
	f := &fairFleet{t: t, dir: t.TempDir()}
	f.bin = buildBinaries(t, f.dir)
	natsPort := freePort(t)
	f.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	start(t, f.dir, "nats-server", f.bin["nats-server"], "-js", "-sd", filepath.Join(f.dir, "nats"), "-a", "127.0.0.1", "-p", fmt.Sprint(natsPort))
	waitPort(t, natsPort)
	args := []string{"--synthetic", fmt.Sprint(fairOffers), "--seed", fmt.Sprint(fairSeed)}
	for i := range boards {
		b := fmt.Sprintf("%040x", 0xb0a2d000+i)
		f.boards = append(f.boards, b)
		args = append(args, "--board-key", b)
	}
	_, f.ftURL, f.hrURL = spawnSandbox(t, f.dir, f.bin, args...)
	workers := f.config("workers", f.boards[0], "")
	for _, name := range []string{"formatter-1", "formatter-2", "pusher-1", "pusher-2"} {
		start(t, f.dir, name, f.bin[strings.TrimRight(name, "-12")], "--nats", f.natsURL, "--config", workers, "--log-format", "json")
	}
	var err error
	if f.nc, err = nats.Connect(f.natsURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.nc.Close)
	if f.js, err = jetstream.New(f.nc); err != nil {
		t.Fatal(err)
	}
	f.profiles = filepath.Join(f.dir, "profiles")
	if err := os.Mkdir(f.profiles, 0o700); err != nil {
		t.Fatal(err)
	}
	return f
}

// config writes a configuration of the sandbox for board, restricted to
// dept when set, and returns its path.
func (f *fairFleet) config(name, board, dept string) string {
	f.t.Helper()
	criteria := ""
	if dept != "" {
		criteria = fmt.Sprintf("  departement: %q\n", dept)
	}
	path := filepath.Join(f.dir, name+".yaml")
	writeFile(f.t, path, fmt.Sprintf(`origin_parameters:
  client_id: %s
  client_secret: ${FT_SECRET}
  api_base_url: %s
  token_url: %s
  rate_limit: 0
%starget_parameters:
  api_secret: ${HRFLOW_SECRET}
  api_user: %s
  board_key: %s
  api_base_url: %s
  rate_limit: %d
`, francetravailtest.DefaultClientID, francetravailtest.APIBaseURL(f.ftURL), francetravailtest.TokenURL(f.ftURL), criteria,
		hrflowtest.DefaultAPIUser, board, hrflowtest.BaseURL(f.hrURL), fairRate))
	return path
}

// smallDepartement returns the département whose offers, by their
// commune, are nearest want in number (the emulator's search may find a
// few more: the run's report counts them).
func (f *fairFleet) smallDepartement(want int) string {
	f.t.Helper()
	counts := map[string]int{}
	for _, o := range corpusOffers(f.t, f.ftURL) {
		var v struct {
			Lieu struct {
				Commune string `json:"commune"`
			} `json:"lieuTravail"`
		}
		if json.Unmarshal(o, &v) != nil || len(v.Lieu.Commune) < 3 {
			continue
		}
		d := v.Lieu.Commune[:2]
		if d == "97" {
			d = v.Lieu.Commune[:3]
		}
		counts[d]++
	}
	depts := slices.Collect(func(yield func(string) bool) {
		for d := range counts {
			if !yield(d) {
				return
			}
		}
	})
	slices.SortFunc(depts, func(a, b string) int {
		return cmp.Or(cmp.Compare(abs(counts[a]-want), abs(counts[b]-want)), cmp.Compare(a, b))
	})
	return depts[0]
}

func abs(n int) int { return max(n, -n) }

// fetcher starts `fetcher run --wait` of board (dept when set) as name.
func (f *fairFleet) fetcher(name, board, dept string) *exec.Cmd {
	cfg := f.config(name, board, dept)
	return start(f.t, f.dir, name, f.bin["fetcher"], "run", "--nats", f.natsURL, "--config", cfg, "--wait",
		"--report", filepath.Join(f.dir, name+".report.json"), "--log-format", "json")
}

// run runs a small run of board as name, to its end, and returns its
// report.
func (f *fairFleet) run(name, board, dept string) runstatus.Report {
	f.t.Helper()
	cfg := f.config(name, board, dept)
	report := filepath.Join(f.dir, name+".report.json")
	cmd := start(f.t, f.dir, name, f.bin["fetcher"], "run", "--nats", f.natsURL, "--config", cfg, "--wait", "--report", report, "--log-format", "json")
	if err := wait(cmd, 20*time.Minute); err != nil {
		f.t.Fatalf("%s: %v\n%s", name, err, tail(f.dir, name))
	}
	return readReport(f.t, report)
}

// runOf returns the run of board, the newest.
func (f *fairFleet) runOf(board string) string {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runs, err := runstatus.ListRuns(ctx, f.js, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range runs {
		if r.BoardKey == board {
			return r.RunID
		}
	}
	f.t.Fatalf("no run on board %s", board)
	return ""
}

// done counts the items of run that ended.
func (f *fairFleet) done(run string) int {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := runstatus.GetRun(ctx, f.js, run, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	if d.Progress == nil {
		return d.Events.ReadSuccess
	}
	return d.Progress.Done
}

// triggerSmallRuns writes a profile of a small run for each board, starts
// fetcher serve, publishes a trigger for each profile at once, and returns
// the runs' reports once all ended.
func (f *fairFleet) triggerSmallRuns(boards []string, dept string) []runstatus.Report {
	f.t.Helper()
	for i, b := range boards {
		cfg, err := os.ReadFile(f.config(fmt.Sprintf("small-%02d", i), b, dept))
		if err != nil {
			f.t.Fatal(err)
		}
		writeFile(f.t, filepath.Join(f.profiles, fmt.Sprintf("small-%02d.yaml", i)), string(cfg))
	}
	start(f.t, f.dir, "serve", f.bin["fetcher"], "serve", "--nats", f.natsURL, "--profiles", f.profiles, "--log-format", "json")
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range boards {
		wg.Go(func() {
			// The service declares the triggers' stream: try until it did.
			for {
				_, err := f.js.Publish(ctx, service.TriggerSubjectPrefix+fmt.Sprintf("small-%02d", i), []byte("{}"))
				if err == nil || ctx.Err() != nil {
					if err != nil {
						f.t.Errorf("trigger small-%02d: %v", i, err)
					}
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	var reports []runstatus.Report
	deadline := time.Now().Add(20 * time.Minute)
	for len(reports) < len(boards) {
		if time.Now().After(deadline) {
			f.t.Fatalf("%d of %d triggered runs ended within 20 minutes", len(reports), len(boards))
		}
		time.Sleep(2 * time.Second)
		lctx, lcancel := context.WithTimeout(context.Background(), time.Minute)
		runs, err := runstatus.ListRuns(lctx, f.js, 0)
		lcancel()
		if err != nil {
			f.t.Fatal(err)
		}
		reports = reports[:0]
		for _, r := range runs {
			if r.Trigger == runstatus.TriggerEvent && r.FinishedAt != nil {
				d, err := runstatus.GetRun(context.Background(), f.js, r.RunID, 0)
				if err != nil {
					f.t.Fatal(err)
				}
				reports = append(reports, *d.Report)
			}
		}
	}
	return reports
}

// checkSmall checks a small run ended success with every offer created.
func checkSmall(t *testing.T, what string, r runstatus.Report, n int) {
	t.Helper()
	if r.Status != runstatus.StatusSuccess || r.Events.ReadSuccess != n || r.Events.Created != n {
		t.Errorf("%s: status %s, %d read, %d created; want success with %d created", what, r.Status, r.Events.ReadSuccess, r.Events.Created, n)
	}
}
