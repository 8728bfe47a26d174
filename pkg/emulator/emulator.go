// Package emulator holds what the France Travail and HrFlow emulators share:
// fault injection (error answers, connection resets, latency, a capacity
// past which calls are throttled) that can be changed while they run, counters of requests by route and status, and the
// admin routes under /_emulator/ that expose both.
//
// An emulator wraps its API handler with a Faults middleware:
//
//	f := emulator.NewFaults(cfg, errorBody)
//	mux.Handle("/_emulator/faults", f.AdminHandler())
//	handler := f.Wrap(route, apiHandler)
package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// AdminPrefix is where every emulator serves its admin routes; it is never a
// path of a real API.
const AdminPrefix = "/_emulator/"

// maxAdminBody bounds an admin request body that is not a corpus.
const maxAdminBody = 1 << 20

// Config is the fault injection in force. The zero value injects nothing.
type Config struct {
	// ErrorRate is the probability, in [0, 1], that a request is answered with
	// one of ErrorStatuses instead of reaching the API.
	ErrorRate float64 `json:"error_rate"`
	// ErrorStatuses are drawn from uniformly; empty means 500, 502 and 503.
	ErrorStatuses []int `json:"error_statuses,omitempty"`
	// ResetRate is the probability that the connection is reset before any answer.
	ResetRate float64 `json:"reset_rate"`
	// Latency is added to every API request, before any answer.
	Latency Duration `json:"latency"`
	// Capacity, when > 0, is the calls per second the API serves in all,
	// whoever makes them: a token bucket filling at that rate and holding
	// at most that many calls (at least one). A call that finds it empty
	// is answered 429 "Too Many Requests", in the API's shape, at once
	// (before Latency), and does not reach the API. A change keeps the
	// calls the bucket holds, up to its new size.
	Capacity float64 `json:"capacity,omitempty"`
	// RetryAfter adds to those 429s a Retry-After header: the seconds
	// until the bucket holds a call again, rounded up.
	RetryAfter bool `json:"retry_after,omitempty"`
	// Seed makes the draws repeatable; 0 draws a random seed.
	Seed uint64 `json:"seed,omitempty"`
}

// Validate reports a rate outside [0, 1], a negative latency or a status that
// is not an HTTP error.
func (c Config) Validate() error {
	if c.ErrorRate < 0 || c.ErrorRate > 1 {
		return fmt.Errorf("error_rate %v: want a probability in [0, 1]", c.ErrorRate)
	}
	if c.ResetRate < 0 || c.ResetRate > 1 {
		return fmt.Errorf("reset_rate %v: want a probability in [0, 1]", c.ResetRate)
	}
	if c.Latency < 0 {
		return fmt.Errorf("latency %v: want a duration ≥ 0", time.Duration(c.Latency))
	}
	if !(c.Capacity >= 0) || math.IsInf(c.Capacity, 1) {
		return fmt.Errorf("capacity %v: want calls per second ≥ 0 (0: none)", c.Capacity)
	}
	for _, s := range c.ErrorStatuses {
		if s < 400 || s > 599 {
			return fmt.Errorf("error_statuses: %d is not an HTTP error status", s)
		}
	}
	return nil
}

// Duration is a time.Duration that reads and writes JSON as "50ms", and also
// reads a number of milliseconds.
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads "50ms" or 50 (milliseconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("duration: want a string like \"50ms\" or milliseconds, got %s", b)
	}
	*d = Duration(ms * float64(time.Millisecond))
	return nil
}

// ErrorBody renders the body of an injected error answer with the given
// status, in the emulated API's own shape.
type ErrorBody func(status int) (contentType string, body []byte)

// Faults injects faults into an emulator and counts its requests. It is safe
// for concurrent use; its configuration can change while requests are served.
type Faults struct {
	body ErrorBody

	mu       sync.Mutex
	cfg      Config
	rng      *rand.Rand
	counts   map[string]map[int]int64 // route → status → requests
	capacity *rate.Limiter            // nil without Capacity
}

// NewFaults returns a Faults with cfg in force. body renders injected errors;
// nil renders a plain-text body. A 502 answer is always an HTML gateway page,
// as real gateways send, whatever body says.
func NewFaults(cfg Config, body ErrorBody) (*Faults, error) {
	f := &Faults{body: body, counts: make(map[string]map[int]int64)}
	if err := f.Set(cfg); err != nil {
		return nil, err
	}
	return f, nil
}

// Set replaces the configuration in force.
func (f *Faults) Set(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg = cfg
	f.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	switch {
	case cfg.Capacity == 0:
		f.capacity = nil
	case f.capacity == nil:
		f.capacity = rate.NewLimiter(rate.Limit(cfg.Capacity), bucketSize(cfg.Capacity))
	default:
		now := time.Now()
		f.capacity.SetLimitAt(now, rate.Limit(cfg.Capacity))
		f.capacity.SetBurstAt(now, bucketSize(cfg.Capacity))
	}
	return nil
}

// bucketSize is the most calls a bucket filling at capacity calls per
// second holds: a second's worth, at least one.
func bucketSize(capacity float64) int { return max(1, int(capacity)) }

// admit takes a call from the capacity's bucket. When there is none, it
// returns false and the Retry-After to send ("" for none).
func (f *Faults) admit() (ok bool, retryAfter string) {
	f.mu.Lock()
	lim, withRetryAfter := f.capacity, f.cfg.RetryAfter
	f.mu.Unlock()
	if lim == nil {
		return true, ""
	}
	now := time.Now()
	if lim.AllowN(now, 1) {
		return true, ""
	}
	if !withRetryAfter {
		return false, ""
	}
	wait := math.Ceil((1 - lim.TokensAt(now)) / float64(lim.Limit()))
	return false, strconv.Itoa(max(int(wait), 1))
}

// Config returns the configuration in force.
func (f *Faults) Config() Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg
}

// Stats is a snapshot of the request counters.
type Stats struct {
	// Requests counts answers by route ("GET /offres/search") and status;
	// a reset connection counts as status 0.
	Requests map[string]map[int]int64 `json:"requests"`
}

// Count returns the number of answers on route with status; status 0 counts
// the connections reset.
func (s Stats) Count(route string, status int) int64 {
	return s.Requests[route][status]
}

// Total returns the number of requests on route, whatever their answer.
func (s Stats) Total(route string) int64 {
	var n int64
	for _, c := range s.Requests[route] {
		n += c
	}
	return n
}

// Stats returns a copy of the counters.
func (f *Faults) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]map[int]int64, len(f.counts))
	for r, byStatus := range f.counts {
		m := make(map[int]int64, len(byStatus))
		for s, n := range byStatus {
			m[s] = n
		}
		out[r] = m
	}
	return Stats{Requests: out}
}

// Record counts one answer; Wrap calls it, and an emulator calls it for the
// requests it answers outside Wrap.
func (f *Faults) Record(route string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.counts[route]
	if m == nil {
		m = make(map[int]int64)
		f.counts[route] = m
	}
	m[status]++
}

type draw struct {
	latency time.Duration
	reset   bool
	status  int
}

func (f *Faults) draw() draw {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := draw{latency: time.Duration(f.cfg.Latency)}
	if f.cfg.ResetRate > 0 && f.rng.Float64() < f.cfg.ResetRate {
		d.reset = true
		return d
	}
	if f.cfg.ErrorRate > 0 && f.rng.Float64() < f.cfg.ErrorRate {
		statuses := f.cfg.ErrorStatuses
		if len(statuses) == 0 {
			statuses = defaultErrorStatuses
		}
		d.status = statuses[f.rng.IntN(len(statuses))]
	}
	return d
}

var defaultErrorStatuses = []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}

// Wrap returns a handler that applies the faults in force to each request,
// then passes the survivors to next, and counts every answer under the route
// that route names for the request. Requests under AdminPrefix pass untouched
// and uncounted.
func (f *Faults) Wrap(route func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, AdminPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		name := route(r)
		if ok, retryAfter := f.admit(); !ok {
			f.Record(name, http.StatusTooManyRequests)
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			f.writeError(w, http.StatusTooManyRequests)
			return
		}
		d := f.draw()
		if d.latency > 0 {
			// The server sees a client give up only once the request's
			// body is read: read it first, or a POST would wait out the
			// whole latency for a client long gone.
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			t := time.NewTimer(d.latency)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if d.reset {
			f.Record(name, 0)
			reset(w)
			return
		}
		if d.status != 0 {
			f.Record(name, d.status)
			f.writeError(w, d.status)
			return
		}
		// Counted when the status is written, before the client can read
		// the answer: a client that counts its answers finds them counted.
		sw := &statusWriter{ResponseWriter: w, record: func(status int) { f.Record(name, status) }}
		next.ServeHTTP(sw, r)
		sw.setStatus(http.StatusOK)
	})
}

func (f *Faults) writeError(w http.ResponseWriter, status int) {
	if status == http.StatusBadGateway || f.body == nil {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html><head><title>%d %s</title></head><body><center><h1>%d %s</h1></center><hr><center>nginx</center></body></html>\n",
			status, http.StatusText(status), status, http.StatusText(status))
		return
	}
	ct, body := f.body(status)
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	w.Write(body)
}

// reset closes the client's connection abruptly (RST), as a crashed proxy
// would. Without a hijackable connection it aborts the handler.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

type statusWriter struct {
	http.ResponseWriter
	status int
	record func(status int) // called once, with the first status
}

// setStatus notes the answer's status, unless one was noted.
func (w *statusWriter) setStatus(status int) {
	if w.status == 0 {
		w.status = status
		w.record(status)
	}
}

func (w *statusWriter) WriteHeader(status int) {
	w.setStatus(status)
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.setStatus(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// AdminHandler serves, relative to AdminPrefix:
//
//	GET /_emulator/stats   the counters as JSON (Stats)
//	GET /_emulator/faults  the configuration in force (Config)
//	PUT /_emulator/faults  replace it with the JSON Config in the body
//
// Mount it for those two paths; other admin routes are the emulator's own.
func (f *Faults) AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == AdminPrefix+"stats" && r.Method == http.MethodGet:
			WriteJSON(w, http.StatusOK, f.Stats())
		case r.URL.Path == AdminPrefix+"faults" && r.Method == http.MethodGet:
			WriteJSON(w, http.StatusOK, f.Config())
		case r.URL.Path == AdminPrefix+"faults" && r.Method == http.MethodPut:
			var cfg Config
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&cfg); err != nil {
				WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "faults: " + err.Error()})
				return
			}
			if err := f.Set(cfg); err != nil {
				WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "faults: " + err.Error()})
				return
			}
			WriteJSON(w, http.StatusOK, f.Config())
		case r.URL.Path == AdminPrefix+"stats" || r.URL.Path == AdminPrefix+"faults":
			w.Header().Set("Allow", "GET, PUT")
			WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": r.Method + " not allowed"})
		default:
			WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no admin route " + r.URL.Path})
		}
	})
}

// WriteJSON writes v as the JSON body of an answer with status and
// Content-Type exactly "application/json".
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// Routes lists the routes that have counts, sorted; handy in test failures.
func (s Stats) Routes() []string {
	out := make([]string, 0, len(s.Requests))
	for r := range s.Requests {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}
