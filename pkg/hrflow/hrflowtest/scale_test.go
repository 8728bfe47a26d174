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
	pageFirst, pageLast    pageCost
	pageLastFull, pageName pageCost
}

// pageCost is what a listing call costs: its wall time, seen by the
// client, and the CPU time of the emulator's process, which the load of
// other processes on the machine does not inflate.
type pageCost struct{ wall, cpu time.Duration }

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
	t.Logf("listing pages of 30, µs per call: wall time / CPU time of the emulator")
	t.Logf("%9s %10s %8s %8s %8s %6s %13s %13s %15s %17s", "jobs", "creates/s", "RSS MB", "peak MB", "heap MB", "B/job",
		"page 1", "last page", "last, full jobs", "name filter")
	for _, f := range figs {
		t.Logf("%9d %10.0f %8.1f %8.1f %8.1f %6d %13s %13s %15s %17s", f.jobs, f.createRate,
			mb(f.rss), mb(f.peakRSS), mb(f.heap), f.heap/int64(f.jobs), f.pageFirst, f.pageLast, f.pageLastFull, f.pageName)
	}
	if len(figs) > 1 {
		a, b := figs[0], figs[len(figs)-1]
		ratio := func(x, y pageCost) float64 { return float64(y.cpu) / float64(x.cpu) }
		t.Logf("from %d to %d jobs (×%.0f): emulator CPU per page ×%.2f (page 1), ×%.2f (last page), ×%.2f (last, full jobs); heap per job ×%.2f",
			a.jobs, b.jobs, float64(b.jobs)/float64(a.jobs), ratio(a.pageFirst, b.pageFirst), ratio(a.pageLast, b.pageLast),
			ratio(a.pageLastFull, b.pageLastFull), float64(b.heap*int64(a.jobs))/float64(a.heap*int64(b.jobs)))
	}
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

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
	page := func(q string) pageCost { return p.timePage(t, q, n) }
	f.pageFirst = page("page=1&return_job=false")
	f.pageLast = page(fmt.Sprintf("page=%d&return_job=false", last))
	f.pageLastFull = page(fmt.Sprintf("page=%d&return_job=true", last))
	f.pageName = page("name=" + url.QueryEscape("Nothing called so"))
	return f
}

// pageRepeats is how many times a page is read to time it: enough CPU time
// for the 10 ms ticks of /proc to measure within a few percent.
const pageRepeats = 1000

// cpu returns the CPU time the process has used, user and system, from
// /proc (in ticks of 10 ms).
func (p *emulatorProcess) cpu(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// Fields after the command's closing parenthesis: state is field 3,
	// utime and stime fields 14 and 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * tick
}

// timePage returns the mean cost of a listing call with query q (besides
// board_keys and limit), checking that it answers a board of n jobs.
func (p *emulatorProcess) timePage(t *testing.T, q string, n int) pageCost {
	t.Helper()
	target := p.url + APIPath + "/storing/jobs?board_keys=" + url.QueryEscape(`["`+DefaultBoardKey+`"]`) + "&limit=30&" + q
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
	cpu, start := p.cpu(t), time.Now()
	for range repeats {
		get()
	}
	return pageCost{wall: time.Since(start) / time.Duration(repeats), cpu: (p.cpu(t) - cpu) / time.Duration(repeats)}
}

func (c pageCost) String() string {
	return fmt.Sprintf("%.0f / %.0f", float64(c.wall)/float64(time.Microsecond), float64(c.cpu)/float64(time.Microsecond))
}
