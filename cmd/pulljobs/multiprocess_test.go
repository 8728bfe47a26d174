package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// TestMultiProcess runs pulljobs as a deployment would: a real nats-server
// process, the sandbox emulators with injected API faults, two formatters,
// two pushers and a fetcher, each its own process. Mid-run one pusher is
// killed (SIGKILL) and one formatter stopped (SIGTERM). The run must
// complete with the board holding exactly the live offers, every job created
// once, and sync run once.
//
// It builds the binaries and nats-server from the module; set
// PULLJOBS_NATS_SERVER to use a prebuilt nats-server. -short skips it.
func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: builds five binaries and runs for a minute")
	}
	const (
		offers    = 5000
		staleJobs = 20
	)
	dir := t.TempDir()
	bin := buildBinaries(t, dir)

	natsPort := freePort(t)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	start(t, dir, "nats-server", bin["nats-server"], "-js", "-sd", filepath.Join(dir, "nats"), "-a", "127.0.0.1", "-p", fmt.Sprint(natsPort))
	waitPort(t, natsPort)
	_, ftURL, hrURL := spawnSandbox(t, dir, bin,
		"--synthetic", fmt.Sprint(offers), "--seed", "7", "--stale-jobs", fmt.Sprint(staleJobs), "--error-rate", "0.02")

	cfg := sandboxConfig(t, dir, ftURL, hrURL, `
  ack_wait: 5s
  lease_ttl: 10s
  drain_timeout: 5s
  concurrency: 8
`)
	worker := func(name, binary string) *exec.Cmd {
		return start(t, dir, name, binary, "--nats", natsURL, "--config", cfg, "--log-format", "json")
	}
	formatter1 := worker("formatter-1", bin["formatter"])
	worker("formatter-2", bin["formatter"])
	pusher1 := worker("pusher-1", bin["pusher"])
	worker("pusher-2", bin["pusher"])

	report := filepath.Join(dir, "report.json")
	fetcher := start(t, dir, "fetcher", bin["fetcher"], "run", "--nats", natsURL, "--config", cfg, "--wait", "--report", report, "--log-format", "json")

	// Mid-run: kill a pusher, stop a formatter.
	deadline := time.Now().Add(3 * time.Minute)
	for creations(t, hrURL) < offers/5 {
		if time.Now().After(deadline) {
			t.Fatal("no progress: fewer than a fifth of the jobs created after 3 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d jobs created: SIGKILL pusher-1, SIGTERM formatter-1", creations(t, hrURL))
	if err := pusher1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := formatter1.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := wait(formatter1, 30*time.Second); err != nil {
		t.Errorf("formatter stopped with SIGTERM: %v, want a clean exit\n%s", err, tail(dir, "formatter-1"))
	}
	if err := wait(fetcher, 4*time.Minute); err != nil {
		t.Fatalf("fetcher --wait: %v\n%s", err, tail(dir, "fetcher"))
	}

	var r runstatus.Report
	if b, err := os.ReadFile(report); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	// A pusher killed between a job's creation and its record leaves the job
	// to another pusher, which finds it on the board: skipped, not created
	// twice. So created + skipped, not created alone, counts every offer.
	if e := r.Events; r.Status != runstatus.StatusSuccess || e.ReadSuccess != offers || e.Created+e.Skipped != offers {
		t.Errorf("report: status %s, events %+v; want success with %d offers read and created or found", r.Status, r.Events, offers)
	}
	if !r.Sync.Performed || r.Sync.Archived != staleJobs {
		t.Errorf("sync = %+v, want performed with %d archived", r.Sync, staleJobs)
	}

	// The board holds exactly the live offers; the stale jobs are archived.
	live, archived := board(t, hrURL)
	want := corpusIDs(t, ftURL)
	if len(want) != offers {
		t.Fatalf("corpus has %d offers, want %d", len(want), offers)
	}
	if !slices.Equal(live, want) {
		t.Errorf("board holds %d live jobs, want the %d live offers exactly", len(live), len(want))
	}
	if len(archived) != staleJobs {
		t.Errorf("board has %d archived jobs, want the %d stale ones", len(archived), staleJobs)
	}
	stats := hrStats(t, hrURL)
	t.Logf("run %s: %s in %.1fs; HrFlow answered %d injected 5xx", r.RunID, r.Status, r.DurationSeconds,
		stats.Count("POST /job/indexing", 500)+stats.Count("POST /job/indexing", 502)+stats.Count("POST /job/indexing", 503)+
			stats.Count("GET /job/indexing", 500)+stats.Count("GET /job/indexing", 502)+stats.Count("GET /job/indexing", 503))
	if got := stats.Count("POST /job/indexing", 201); got != offers {
		t.Errorf("jobs created %d times, want %d: nothing created twice", got, offers)
	}
	if got := stats.Count("PATCH /job/indexing/archive", 200); got != staleJobs {
		t.Errorf("archive calls that succeeded: %d, want %d: sync ran once", got, staleJobs)
	}
	// Faults were injected, and survived.
	if got := stats.Count("POST /job/indexing", 500) + stats.Count("POST /job/indexing", 502) + stats.Count("POST /job/indexing", 503); got == 0 {
		t.Error("no fault was injected on job creation; the test proves less than it says")
	}
}

// sandboxConfig writes a configuration pointing at the sandbox emulators,
// with the given pipeline section, and returns its path. The secrets come
// from the environment, as start sets it.
func sandboxConfig(t *testing.T, dir, ftURL, hrURL, pipeline string) string {
	t.Helper()
	cfg := filepath.Join(dir, "pulljobs.yaml")
	writeFile(t, cfg, fmt.Sprintf(`origin_parameters:
  client_id: %s
  client_secret: ${FT_SECRET}
  api_base_url: %s
  token_url: %s
  rate_limit: 0
target_parameters:
  api_secret: ${HRFLOW_SECRET}
  api_user: %s
  board_key: %s
  api_base_url: %s
  rate_limit: 0
pipeline:
%s`, francetravailtest.DefaultClientID, francetravailtest.APIBaseURL(ftURL), francetravailtest.TokenURL(ftURL),
		hrflowtest.DefaultAPIUser, hrflowtest.DefaultBoardKey, hrflowtest.BaseURL(hrURL), pipeline))
	return cfg
}

// spawnSandbox starts `pulljobs sandbox` in dir with args (corpus, board,
// faults), its emulators on loopback ports the system picks, waits until
// it says where they listen, and returns the process and the emulators'
// URLs. start stops it when the test ends. A port picked beforehand could
// be taken meanwhile, by a connection of another process of the test.
func spawnSandbox(t *testing.T, dir string, bin map[string]string, args ...string) (sb *exec.Cmd, ftURL, hrURL string) {
	t.Helper()
	sb = start(t, dir, "sandbox", bin["pulljobs"], append([]string{"sandbox",
		"--francetravail-addr", "127.0.0.1:0", "--hrflow-addr", "127.0.0.1:0"}, args...)...)
	deadline := time.Now().Add(sandboxStart)
	for {
		// It prints each emulator's admin URLs, France Travail's first.
		b, _ := os.ReadFile(filepath.Join(dir, "sandbox.log"))
		var roots []string
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "admin "); ok {
				if root, _, ok := strings.Cut(strings.TrimSpace(rest), "/_emulator/"); ok {
					roots = append(roots, root)
				}
			}
		}
		if len(roots) == 2 {
			return sb, roots[0], roots[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("pulljobs sandbox did not say where it listens within %v", sandboxStart)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sandboxStart bounds the start of a sandbox: a corpus of a million offers
// takes seconds to make.
const sandboxStart = 2 * time.Minute

// buildBinaries builds the four commands and nats-server into dir.
func buildBinaries(t *testing.T, dir string) map[string]string {
	t.Helper()
	bin := map[string]string{}
	pkgs := map[string]string{
		"fetcher": "./cmd/fetcher", "formatter": "./cmd/formatter", "pusher": "./cmd/pusher", "pulljobs": "./cmd/pulljobs",
		"nats-server": "github.com/nats-io/nats-server/v2",
	}
	if p := os.Getenv("PULLJOBS_NATS_SERVER"); p != "" {
		bin["nats-server"] = p
		delete(pkgs, "nats-server")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for name, pkg := range pkgs {
		out := filepath.Join(dir, "bin", name)
		wg.Go(func() {
			cmd := exec.Command("go", "build", "-o", out, pkg)
			cmd.Dir = root
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("build %s: %v\n%s", pkg, err, b)
				return
			}
			mu.Lock()
			bin[name] = out
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return bin
}

// start starts a process whose output goes to dir/name.log; it is killed
// at the end of the test if still running.
func start(t *testing.T, dir, name, binary string, args ...string) *exec.Cmd {
	t.Helper()
	return startEnv(t, dir, name, nil, binary, args...)
}

// startEnv is start with env added to the process's environment: a NATS
// role's credentials, a server's passwords.
func startEnv(t *testing.T, dir, name string, env []string, binary string, args ...string) *exec.Cmd {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(sandboxEnv(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			if wait(cmd, 10*time.Second) != nil {
				_ = cmd.Process.Kill()
			}
		}
		log.Close()
		if t.Failed() {
			t.Logf("--- %s (last lines)\n%s", name, tail(dir, name))
		}
	})
	return cmd
}

// sandboxEnv is the environment of a process: the secrets that
// sandboxConfig's configuration reads, those the sandbox accepts.
func sandboxEnv() []string {
	return append(os.Environ(), "FT_SECRET="+francetravailtest.DefaultClientSecret, "HRFLOW_SECRET="+hrflowtest.DefaultAPISecret)
}

// wait waits for cmd to exit, at most d.
func wait(cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not exit within %v", filepath.Base(cmd.Path), d)
	}
}

func tail(dir, name string) string {
	b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return strings.Join(lines, "\n")
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitPort(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on port %d after 30s", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func hrStats(t *testing.T, hrURL string) emulator.Stats {
	t.Helper()
	s, err := readStats(hrURL)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readStats reads an emulator's counters; it may run outside the test's
// goroutine.
func readStats(baseURL string) (emulator.Stats, error) {
	resp, err := http.Get(baseURL + emulator.AdminPrefix + "stats")
	if err != nil {
		return emulator.Stats{}, err
	}
	defer resp.Body.Close()
	var s emulator.Stats
	err = json.NewDecoder(resp.Body).Decode(&s)
	return s, err
}

func creations(t *testing.T, hrURL string) int64 {
	return hrStats(t, hrURL).Count("POST /job/indexing", 201)
}

// board lists the default board through the HrFlow API, as a user would.
func board(t *testing.T, hrURL string) (live, archived []string) {
	t.Helper()
	return boardOf(t, hrURL, hrflowtest.DefaultBoardKey)
}

// boardOf lists board key through the HrFlow API.
func boardOf(t *testing.T, hrURL, key string) (live, archived []string) {
	t.Helper()
	c := hrClient(t, hrURL)
	defer c.CloseIdleConnections()
	for j, err := range c.Jobs(context.Background(), key, hrflow.ListOptions{Limit: 100}) {
		if err != nil {
			t.Fatal(err)
		}
		if j.ArchivedAt != "" {
			archived = append(archived, j.Reference)
		} else {
			live = append(live, j.Reference)
		}
	}
	sort.Strings(live)
	sort.Strings(archived)
	return live, archived
}

// hrClient is an HrFlow client of the sandbox's emulator.
func hrClient(t *testing.T, hrURL string) *hrflow.Client {
	t.Helper()
	c, err := hrflow.NewClient(hrflow.Config{APISecret: hrflowtest.DefaultAPISecret, APIUser: hrflowtest.DefaultAPIUser, BaseURL: hrflowtest.BaseURL(hrURL)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// corpusIDs searches the France Travail emulator for every live offer.
func corpusIDs(t *testing.T, ftURL string) []string {
	t.Helper()
	return slices.Sorted(maps.Keys(corpusOffers(t, ftURL)))
}

// corpusOffers searches the France Travail emulator for every live offer,
// by id.
func corpusOffers(t *testing.T, ftURL string) map[string]francetravail.Offer {
	t.Helper()
	c, err := francetravail.NewClient(francetravail.Config{ClientID: francetravailtest.DefaultClientID, ClientSecret: francetravailtest.DefaultClientSecret,
		APIBaseURL: francetravailtest.APIBaseURL(ftURL), TokenURL: francetravailtest.TokenURL(ftURL), RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	offers := map[string]francetravail.Offer{}
	if _, err := c.Search(context.Background(), francetravail.Query{}, func(o francetravail.Offer) error {
		id, err := o.ID()
		offers[id] = slices.Clone(o) // the search reuses its page
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return offers
}
