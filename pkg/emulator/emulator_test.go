package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func ok(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusCreated, map[string]string{"path": r.URL.Path})
}

func byPath(r *http.Request) string { return r.Method + " " + r.URL.Path }

func newServer(t *testing.T, cfg Config) (*Faults, *httptest.Server) {
	t.Helper()
	f, err := NewFaults(cfg, func(status int) (string, []byte) {
		return "application/json", []byte(`{"message":"injected"}`)
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(AdminPrefix+"stats", f.AdminHandler())
	mux.Handle(AdminPrefix+"faults", f.AdminHandler())
	mux.HandleFunc("/", ok)
	srv := httptest.NewServer(f.Wrap(byPath, mux))
	t.Cleanup(srv.Close)
	return f, srv
}

func TestWrapCountsAnswers(t *testing.T) {
	f, srv := newServer(t, Config{})
	for range 3 {
		resp, err := http.Get(srv.URL + "/a")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("status = %d, want 201", resp.StatusCode)
		}
	}
	if got := f.Stats().Count("GET /a", http.StatusCreated); got != 3 {
		t.Errorf("count = %d, want 3", got)
	}
	// Admin routes are not counted.
	resp, err := http.Get(srv.URL + AdminPrefix + "stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s Stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Routes(), []string{"GET /a"}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("routes = %v, want %v", got, want)
	}
}

func TestInjectedErrors(t *testing.T) {
	f, srv := newServer(t, Config{ErrorRate: 1, ErrorStatuses: []int{503}, Seed: 1})
	resp, err := http.Get(srv.URL + "/a")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || string(body) != `{"message":"injected"}` {
		t.Errorf("got %d %s, want 503 with the emulator's body", resp.StatusCode, body)
	}
	if err := f.Set(Config{ErrorRate: 1, ErrorStatuses: []int{502}}); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(srv.URL + "/a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 502 || ct != "text/html" {
		t.Errorf("got %d %q, want a 502 HTML gateway page", resp.StatusCode, ct)
	}
	if got := f.Stats().Count("GET /a", 503) + f.Stats().Count("GET /a", 502); got != 2 {
		t.Errorf("counted %d injected errors, want 2", got)
	}
}

func TestInjectedReset(t *testing.T) {
	f, srv := newServer(t, Config{ResetRate: 1})
	_, err := http.Get(srv.URL + "/a")
	if err == nil {
		t.Fatal("err = nil, want a reset connection")
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
		t.Logf("reset surfaced as %v", err)
	}
	if got := f.Stats().Count("GET /a", 0); got != 1 {
		t.Errorf("resets counted = %d, want 1", got)
	}
}

// TestLatency checks that the latency holds each answer back: a request
// whose client gives up during it never reaches the API and is not
// counted, and the wait ends with the client, a request with a body (a
// token's POST) included. Latency of an hour, so that only the client can
// end it; a wait that outlived its client would hang the server's Close.
func TestLatency(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			f, err := NewFaults(Config{Latency: Duration(time.Hour)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			arrived := make(chan struct{}, 1)
			var reached atomic.Int64
			route := func(r *http.Request) string {
				select {
				case arrived <- struct{}{}:
				default:
				}
				return byPath(r)
			}
			api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached.Add(1)
				ok(w, r)
			})
			request := func(ctx context.Context, url string) (*http.Response, error) {
				req, _ := http.NewRequestWithContext(ctx, method, url+"/a", strings.NewReader("grant_type=client_credentials"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return http.DefaultClient.Do(req)
			}

			srv := httptest.NewServer(f.Wrap(route, api))
			ctx, cancel := context.WithCancel(context.Background())
			answered := make(chan error, 1)
			go func() {
				resp, err := request(ctx, srv.URL)
				if err == nil {
					resp.Body.Close()
				}
				answered <- err
			}()
			<-arrived
			cancel()
			if err := <-answered; !errors.Is(err, context.Canceled) {
				t.Errorf("request given up during the latency: %v, want the client's context.Canceled", err)
			}
			srv.Close() // waits for the handler
			if n := reached.Load(); n != 0 {
				t.Errorf("the API answered %d requests during the latency, want none", n)
			}
			if got := f.Stats().Routes(); len(got) != 0 {
				t.Errorf("counted %v, want nothing for a request given up during the latency", got)
			}

			// A latency that ends lets the request through, body and all.
			if err := f.Set(Config{Latency: Duration(time.Millisecond)}); err != nil {
				t.Fatal(err)
			}
			srv = httptest.NewServer(f.Wrap(route, api))
			defer srv.Close()
			resp, err := request(context.Background(), srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated || reached.Load() != 1 || f.Stats().Count(method+" /a", http.StatusCreated) != 1 {
				t.Errorf("after the latency: status %d, %d reached the API, counted %v; want 201, 1, 1",
					resp.StatusCode, reached.Load(), f.Stats().Requests)
			}
		})
	}
}

func TestAdminFaults(t *testing.T) {
	f, srv := newServer(t, Config{})
	put := func(body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, srv.URL+AdminPrefix+"faults", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := put(`{"error_rate":0.02,"latency":"5ms"}`); resp.StatusCode != 200 {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	if got := f.Config(); got.ErrorRate != 0.02 || time.Duration(got.Latency) != 5*time.Millisecond {
		t.Errorf("config = %+v, want error_rate 0.02 and latency 5ms", got)
	}
	for _, bad := range []string{`{"error_rate":2}`, `{"typo":1}`, `{"latency":"fast"}`, `{"error_statuses":[200]}`} {
		if resp := put(bad); resp.StatusCode != 400 {
			t.Errorf("PUT %s: status = %d, want 400", bad, resp.StatusCode)
		}
	}
	if got := f.Config(); got.ErrorRate != 0.02 {
		t.Errorf("a refused PUT changed the config to %+v", got)
	}
}

func TestDurationJSON(t *testing.T) {
	var d Duration
	if err := json.Unmarshal([]byte(`50`), &d); err != nil || time.Duration(d) != 50*time.Millisecond {
		t.Errorf("50 → %v, %v; want 50ms", time.Duration(d), err)
	}
	b, _ := json.Marshal(Duration(time.Second))
	if string(b) != `"1s"` {
		t.Errorf("marshal = %s, want \"1s\"", b)
	}
}

// TestCapacity: past the capacity, calls are answered 429 in the API's
// shape, without Retry-After unless asked, and counted; the capacity can
// change while the emulator runs, through PUT /_emulator/faults.
func TestCapacity(t *testing.T) {
	f, srv := newServer(t, Config{Capacity: 2})
	get := func() *http.Response {
		t.Helper()
		resp, err := http.Get(srv.URL + "/a")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	var statuses []int
	for range 6 {
		resp := get()
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			if ra := resp.Header.Get("Retry-After"); ra != "" {
				t.Errorf("429 with Retry-After %q, want none unless asked", ra)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("429 Content-Type %q, want the API's error shape", ct)
			}
		}
	}
	// A bucket of two calls, filling at two a second: the first two pass,
	// the next ones, made at once, find it empty.
	if statuses[0] != 201 || statuses[1] != 201 || statuses[5] != 429 {
		t.Errorf("statuses %v, want 201 201 then 429s", statuses)
	}
	if ok, throttled := f.Stats().Count("GET /a", 201), f.Stats().Count("GET /a", 429); ok+throttled != 6 || throttled < 3 {
		t.Errorf("counted %d answered and %d throttled, want 6 in all, at least 3 throttled", ok, throttled)
	}
	req, _ := http.NewRequest(http.MethodPut, srv.URL+AdminPrefix+"faults", strings.NewReader(`{"capacity":0.5,"retry_after":true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := f.Config(); resp.StatusCode != 200 || got.Capacity != 0.5 || !got.RetryAfter {
		t.Fatalf("PUT capacity: %d, config %+v", resp.StatusCode, got)
	}
	// The bucket keeps what it held (nothing): at half a call a second, a
	// call is two seconds away.
	if resp := get(); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("after the change: %d Retry-After %q, want 429 with Retry-After 2", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if err := f.Set(Config{}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if resp := get(); resp.StatusCode != 201 {
			t.Fatalf("capacity removed: status %d, want 201", resp.StatusCode)
		}
	}
	for _, bad := range []float64{-1, math.NaN(), math.Inf(1)} {
		if err := f.Set(Config{Capacity: bad}); err == nil {
			t.Errorf("capacity %v: err = nil, want an error", bad)
		}
	}
}
