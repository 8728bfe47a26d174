package francetravail_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
)

// Environment of the scale measurement.
const (
	// scaleEnv lists the corpus sizes to measure, comma-separated.
	scaleEnv = "PULLJOBS_SCALE"
	// scaleChildEnv makes the test binary the emulator's process, serving
	// a synthetic corpus of that many offers.
	scaleChildEnv = "PULLJOBS_SCALE_EMULATOR"
	// scaleURLEnv points the measurement at an emulator already serving
	// (pulljobs sandbox --synthetic N --seed 1) instead of starting one.
	scaleURLEnv = "PULLJOBS_SCALE_URL"
)

// TestScale measures a nationwide search against an emulator in a process
// of its own, with no rate limit: for each size, the client's peak heap,
// the size of its set of ids, its offers/s, and the same pages fetched by a
// bare HTTP loop (the baseline: what the emulator and loopback HTTP allow),
// then the emulator's own memory. It prints the figures and asserts only
// that every offer came, once. Run it with
//
//	PULLJOBS_SCALE=20000,200000,1000000 go test ./pkg/francetravail -run 'TestScale$' -v -timeout 30m
//
// or, against the sandbox's emulator (started with the same size and seed
// 1), with PULLJOBS_SCALE=1000000 PULLJOBS_SCALE_URL=<its URL>.
func TestScale(t *testing.T) {
	v := os.Getenv(scaleEnv)
	if v == "" {
		t.Skip("set " + scaleEnv + " to corpus sizes (e.g. 20000,200000,1000000) to measure")
	}
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want sizes", scaleEnv, v)
		}
		t.Run(strconv.Itoa(n), func(t *testing.T) { measureScale(t, n) })
	}
}

// TestScaleEmulator is the emulator's process of TestScale: it serves a
// synthetic corpus on loopback, prints "url <URL>" once ready, serves
// until its stdin closes, then prints its memory.
func TestScaleEmulator(t *testing.T) {
	v := os.Getenv(scaleChildEnv)
	if v == "" {
		t.Skip("the emulator's process of TestScale")
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	emu, err := francetravailtest.New(francetravailtest.Config{Corpus: francetravailtest.Synthetic(n, 1, francetravailtest.SyntheticOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	ready := time.Since(start)
	runtime.GC()
	indexed := heapBytes()
	peak := sampleHeap()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: emu}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Printf("url http://%s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	srv.Shutdown(context.Background())
	<-done
	p := peak()
	fmt.Printf("emulator: indexed in %v, heap %.1f MiB once indexed, %.1f MiB at most while serving, peak RSS %.1f MiB\n",
		ready.Round(time.Millisecond), mib(indexed), mib(p), mib(rssPeak()))
}

func measureScale(t *testing.T, n int) {
	if base := os.Getenv(scaleURLEnv); base != "" {
		searchScale(t, n, strings.TrimSuffix(base, "/"))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestScaleEmulator$")
	cmd.Env = append(os.Environ(), scaleChildEnv+"="+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	lines := bufio.NewScanner(stdout)
	var base string
	for lines.Scan() {
		if u, ok := strings.CutPrefix(lines.Text(), "url "); ok {
			base = u
			break
		}
	}
	if base == "" {
		t.Fatal("the emulator's process printed no url")
	}
	searchScale(t, n, base)
	stdin.Close()
	for lines.Scan() {
		if line := lines.Text(); strings.HasPrefix(line, "emulator: ") {
			t.Logf("%s, %d offers", line, n)
		}
	}
}

// searchScale searches every offer of the emulator at base, a synthetic
// corpus of n offers of seed 1, and logs the figures.
func searchScale(t *testing.T, n int, base string) {
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer hc.CloseIdleConnections()
	c, err := francetravail.NewClient(francetravail.Config{
		ClientID: francetravailtest.DefaultClientID, ClientSecret: francetravailtest.DefaultClientSecret,
		APIBaseURL: francetravailtest.APIBaseURL(base), TokenURL: francetravailtest.TokenURL(base),
		RateLimit: -1, HTTPClient: hc,
	})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	before := heapBytes()
	peak := sampleHeap()
	// The offers are checked against the corpus by count and by a sum of
	// hashes of their ids (equal sums of a multiset of a million 64-bit
	// hashes by chance: never), so that the check holds no memory.
	var got uint64
	yielded := 0
	cpu0 := cpuTime()
	start := time.Now()
	sum, err := c.Search(context.Background(), francetravail.Query{}, func(o francetravail.Offer) error {
		yielded++
		got += idHash(leadingID(o))
		return nil
	})
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	clientPeak := peak()
	if err != nil {
		t.Fatalf("search: %v (summary %+v)", err, sum)
	}
	var want uint64
	corpus := francetravailtest.Synthetic(n, 1, francetravailtest.SyntheticOptions{})
	for i := range n {
		want += idHash(corpus.Entry(i).ID)
	}
	if sum.Fetched != n || yielded != n || got != want || sum.Truncated {
		t.Errorf("summary %+v, %d offers: want each of the %d offers once", sum, yielded, n)
	}
	rate := float64(n) / elapsed.Seconds()
	baseline, baseCPU := rawPageRate(t, base, hc, sum.Requests)
	t.Logf("client: %d offers in %v, %.0f offers/s (%.2f × a bare HTTP loop over as many pages, %.0f offers/s); "+
		"CPU %.1f µs an offer (bare loop %.1f); %d windows, %d requests; peak heap %.1f MiB (%.1f MiB above the heap before the search)",
		n, elapsed.Round(time.Millisecond), rate, rate/baseline, baseline, float64(cpu.Microseconds())/float64(n), baseCPU,
		sum.Windows, sum.Requests, mib(clientPeak), mib(clientPeak-min(before, clientPeak)))
}

// leadingID reads the id of a synthetic offer, which comes first, without
// parsing the offer: parsing would cost more than the search measured.
func leadingID(o francetravail.Offer) string {
	const prefix = `{"id":"`
	if rest, ok := bytes.CutPrefix(o, []byte(prefix)); ok {
		if end := bytes.IndexByte(rest, '"'); end >= 0 {
			return string(rest[:end])
		}
	}
	id, _ := o.ID()
	return id
}

// idHash is FNV-1a, 64 bits.
func idHash(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// rawPageRate fetches pages pages of 150 offers of the whole corpus (ranges
// 0-149 to 3000-3149, again and again) with a bare HTTP client and no
// parsing, and returns the offers/s and the CPU µs an offer.
func rawPageRate(t *testing.T, base string, hc *http.Client, pages int) (rate, cpuPerOffer float64) {
	cc := clientcredentials.Config{ClientID: francetravailtest.DefaultClientID, ClientSecret: francetravailtest.DefaultClientSecret,
		TokenURL: francetravailtest.TokenURL(base), Scopes: francetravail.Scopes, AuthStyle: oauth2.AuthStyleInParams}
	client := cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, hc))
	offers := 0
	cpu0 := cpuTime()
	start := time.Now()
	for k := range pages {
		first := k % (francetravail.MaxRangeStart/francetravail.PageSize + 1) * francetravail.PageSize
		resp, err := client.Get(fmt.Sprintf("%s/offres/search?range=%d-%d", francetravailtest.APIBaseURL(base), first, first+francetravail.PageSize-1))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		offers += francetravail.PageSize
	}
	elapsed := time.Since(start)
	return float64(offers) / elapsed.Seconds(), float64((cpuTime() - cpu0).Microseconds()) / float64(offers)
}

// sampleHeap samples the live heap every millisecond until the returned
// function is called, which returns the highest sample.
func sampleHeap() func() uint64 {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peak uint64
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, heapBytes())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(stop)
		wg.Wait()
		return max(peak, heapBytes())
	}
}

// heapBytes is the memory of heap objects, live or not yet swept.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// rssPeak is the process's peak resident set (VmHWM), 0 where /proc is
// missing.
func rssPeak() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
