package hrflowtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// Environment of the scale measurement.
const (
	// scaleEnv lists the board sizes to measure, such as
	// "20000,200000,1000000"; unset, TestScale is skipped.
	scaleEnv = "PULLJOBS_EMULATOR_SCALE"
	// serveEnv makes the test binary an emulator process (see init).
	serveEnv = "PULLJOBS_HRFLOWTEST_SERVE"
	// memPath is where that process tells its heap, after a collection.
	memPath = "/_scale/mem"
)

// init turns the test binary into an emulator process when serveEnv is
// set, as the sandbox runs it in a process of its own: it serves the
// sandbox's emulator on a loopback port, prints its address, and exits when
// its standard input closes.
func init() {
	if os.Getenv(serveEnv) == "" {
		return
	}
	em, err := New(Config{})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", em)
	mux.HandleFunc(memPath, func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(w, "%d", ms.HeapAlloc)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go http.Serve(ln, mux)
	fmt.Println(ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// emulatorProcess is an emulator served by a child process.
type emulatorProcess struct {
	cmd  *exec.Cmd
	url  string
	stop io.Closer
}

func startEmulatorProcess(t *testing.T) *emulatorProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serveEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &emulatorProcess{cmd: cmd, stop: stdin}
	t.Cleanup(func() {
		p.stop.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("emulator process: %v", err)
	}
	p.url = "http://" + strings.TrimSpace(line)
	return p
}

// status reads a field of the process's /proc status, in bytes.
func (p *emulatorProcess) status(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc status", field)
	return 0
}

func (p *emulatorProcess) heap(t *testing.T) int64 {
	t.Helper()
	resp, err := http.Get(p.url + memPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n, _ := strconv.ParseInt(string(b), 10, 64)
	return n
}

// scaleFigures are the measures of one board size.
type scaleFigures struct {
	jobs                   int
	createRate             float64 // jobs/s, through the API
	rss, peakRSS, heap     int64   // bytes: after the creates, at the highest, live heap after a collection
	pageFirst, pageLast    time.Duration
	pageLastFull, pageName time.Duration
}

// TestScale measures the emulator in a process of its own, as the sandbox
// runs it, holding boards of the sizes scaleEnv lists, created through the
// API from the sandbox's synthetic offers in the default format: its memory
// (RSS, peak RSS, live heap), and the time a page of the listing takes at
// the start and at the end of the board, which does not grow with the
// board. Opt-in, minutes long:
//
//	PULLJOBS_EMULATOR_SCALE=20000,200000,1000000 go test ./pkg/hrflow/hrflowtest -run TestScale -v -timeout 2h
func TestScale(t *testing.T) {
	sizes := os.Getenv(scaleEnv)
	if sizes == "" {
		t.Skipf("set %s to board sizes, such as 20000,200000,1000000", scaleEnv)
	}
	var figs []scaleFigures
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			t.Fatalf("%s: %q is not a board size", scaleEnv, s)
		}
		t.Run(strconv.Itoa(n), func(t *testing.T) { figs = append(figs, measureScale(t, n)) })
	}
	t.Logf("%9s %10s %9s %9s %9s %8s %11s %11s %13s %13s", "jobs", "creates/s", "RSS MB", "peak MB", "heap MB", "B/job",
		"page 1 µs", "last pg µs", "last full µs", "name filt µs")
	for _, f := range figs {
		t.Logf("%9d %10.0f %9.1f %9.1f %9.1f %8d %11.0f %11.0f %13.0f %13.0f", f.jobs, f.createRate,
			mb(f.rss), mb(f.peakRSS), mb(f.heap), f.heap/int64(f.jobs),
			micros(f.pageFirst), micros(f.pageLast), micros(f.pageLastFull), micros(f.pageName))
	}
	if len(figs) > 1 {
		a, b := figs[0], figs[len(figs)-1]
		t.Logf("from %d to %d jobs (×%.0f): last page ×%.2f, page 1 ×%.2f, heap per job ×%.2f", a.jobs, b.jobs,
			float64(b.jobs)/float64(a.jobs), float64(b.pageLast)/float64(a.pageLast),
			float64(b.pageFirst)/float64(a.pageFirst), float64(b.heap*int64(a.jobs))/float64(a.heap*int64(b.jobs)))
	}
}

func mb(b int64) float64             { return float64(b) / (1 << 20) }
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// scaleWorkers is the number of concurrent creates, as a pusher's.
const scaleWorkers = 8

func measureScale(t *testing.T, n int) scaleFigures {
	p := startEmulatorProcess(t)
	c, err := hrflow.NewClient(hrflow.Config{APISecret: DefaultAPISecret, APIUser: DefaultAPIUser, BaseURL: BaseURL(p.url)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	corpus := francetravailtest.Synthetic(n, 1, francetravailtest.SyntheticOptions{})
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, scaleWorkers)
	start := time.Now()
	for range scaleWorkers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				job, err := format.PoleEmploi(corpus.Offer(i))
				if err == nil {
					_, err = c.CreateRef(context.Background(), DefaultBoardKey, job)
				}
				if err != nil {
					errs <- fmt.Errorf("offer %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	f := scaleFigures{jobs: n, createRate: float64(n) / time.Since(start).Seconds()}
	f.rss, f.peakRSS, f.heap = p.status(t, "VmRSS"), p.status(t, "VmHWM"), p.heap(t)
	last := (n + DefaultListLimit - 1) / DefaultListLimit
	page := func(q string) time.Duration { return timePage(t, p.url, q, n) }
	f.pageFirst = page("page=1&return_job=false")
	f.pageLast = page(fmt.Sprintf("page=%d&return_job=false", last))
	f.pageLastFull = page(fmt.Sprintf("page=%d&return_job=true", last))
	f.pageName = page("name=" + url.QueryEscape("Nothing called so"))
	return f
}

// pageRepeats is how many times a page is read to time it.
const pageRepeats = 50

// timePage returns the mean time of a listing call with query q (besides
// board_keys and limit), checking that it answers a board of n jobs.
func timePage(t *testing.T, base, q string, n int) time.Duration {
	t.Helper()
	target := base + APIPath + "/storing/jobs?board_keys=" + url.QueryEscape(`["`+DefaultBoardKey+`"]`) + "&limit=30&" + q
	get := func() []byte {
		r, _ := http.NewRequest("GET", target, nil)
		r.Header.Set("X-API-KEY", DefaultAPISecret)
		r.Header.Set("X-USER-EMAIL", DefaultAPIUser)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", q, resp.StatusCode, b)
		}
		return b
	}
	var a struct{ Meta struct{ Total int } }
	if err := json.Unmarshal(get(), &a); err != nil || (a.Meta.Total != n && !strings.HasPrefix(q, "name=")) {
		t.Fatalf("%s: total %d, want %d (%v)", q, a.Meta.Total, n, err)
	}
	repeats := pageRepeats
	if strings.HasPrefix(q, "name=") {
		repeats = 3 // a pass over the board
	}
	start := time.Now()
	for range repeats {
		get()
	}
	return time.Since(start) / time.Duration(repeats)
}
