package hrflow_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
)

// TestJobsLargestPage lists a board of 250 jobs from emulators that serve
// pages of every size, cap them silently, or refuse larger limits: every
// job is listed once, in as few calls as the API allows, and the client
// asks for the size that works from then on.
func TestJobsLargestPage(t *testing.T) {
	const n = 250
	for _, tt := range []struct {
		name        string
		maxPage     int
		refuse      bool
		wantAsked   string // the pages asked, page/limit, in order
		wantLimit   int    // the client's page size afterwards
		wantRelists int    // calls of a second listing
	}{
		{"pages of 100 served", 0, false, "1/100 2/100 3/100", 100, 3},
		{"capped at 30", 30, false, "1/100 2/30 3/30 4/30 5/30 6/30 7/30 8/30 9/30", 30, 9},
		{"refused past 30", 30, true, "1/100 1/30 2/30 3/30 4/30 5/30 6/30 7/30 8/30 9/30", 30, 9},
		{"capped at 50", 50, false, "1/100 2/30 3/30 4/30 5/30 6/30 7/30 8/30 9/30", 30, 9},
		{"capped at 20", 20, false, "1/100 2/20 3/20 4/20 5/20 6/20 7/20 8/20 9/20 10/20 11/20 12/20 13/20", 20, 13},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var asked []string
			e := newEnv(t, envOptions{
				emulator: hrflowtest.Config{MaxPage: tt.maxPage, RefuseLargePage: tt.refuse},
				transport: func(next http.RoundTripper) http.RoundTripper {
					return hook{next, func(r *http.Request) {
						if r.URL.Path == "/v1/storing/jobs" {
							mu.Lock()
							asked = append(asked, r.URL.Query().Get("page")+"/"+r.URL.Query().Get("limit"))
							mu.Unlock()
						}
					}}
				},
			})
			for i := range n {
				if _, err := e.em.SeedJob(board, job(fmt.Sprintf("R%03d", i), "created_at", fmt.Sprintf("2025-08-01T10:%02d:%02dZ", i/60, i%60)), false); err != nil {
					t.Fatal(err)
				}
			}
			list := func() []string {
				t.Helper()
				var refs []string
				for ref, err := range e.client.Jobs(t.Context(), board, hrflow.ListOptions{Concurrency: 1}) {
					if err != nil {
						t.Fatal(err)
					}
					refs = append(refs, ref.Reference)
				}
				return refs
			}
			refs := list()
			if len(refs) != n || refs[0] != fmt.Sprintf("R%03d", n-1) || refs[n-1] != "R000" {
				t.Errorf("listed %d jobs (first %s), want the %d, newest first, each once", len(refs), refs[0], n)
			}
			mu.Lock()
			if got := strings.Join(asked, " "); got != tt.wantAsked {
				t.Errorf("pages asked %q, want %q", got, tt.wantAsked)
			}
			asked = nil
			mu.Unlock()
			if got := e.client.ListLimit(); got != tt.wantLimit {
				t.Errorf("page size afterwards = %d, want %d", got, tt.wantLimit)
			}
			if len(list()) != n {
				t.Error("the second listing missed jobs")
			}
			mu.Lock()
			if len(asked) != tt.wantRelists {
				t.Errorf("second listing asked %v, want %d pages of %d", asked, tt.wantRelists, tt.wantLimit)
			}
			mu.Unlock()
		})
	}
}

// TestJobsFallBackOnlyWhenServedLess: a last page shorter than the limit,
// a limit of the caller's own, and a 400 about the board change nothing
// of the client's page size.
func TestJobsFallBackOnlyWhenServedLess(t *testing.T) {
	e := newEnv(t, envOptions{emulator: hrflowtest.Config{MaxPage: 30}})
	for i := range 150 {
		if _, err := e.em.SeedJob(board, job(fmt.Sprintf("R%03d", i)), false); err != nil {
			t.Fatal(err)
		}
	}
	count := func(opts hrflow.ListOptions, boardKey string) (n int, err error) {
		for _, err := range e.client.Jobs(t.Context(), boardKey, opts) {
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}
	if n, err := count(hrflow.ListOptions{Limit: 60}, board); err != nil || n != 150 {
		t.Fatalf("Limit 60 on pages of 30: %d jobs, %v; want 150", n, err)
	}
	if got := e.client.ListLimit(); got != hrflow.DefaultListLimit {
		t.Errorf("a caller's own limit changed the client's page size to %d", got)
	}
	if _, err := count(hrflow.ListOptions{}, strings.Repeat("2", 40)); err == nil {
		t.Fatal("unknown board: no error")
	}
	if got := e.client.ListLimit(); got != hrflow.DefaultListLimit {
		t.Errorf("a missing board changed the page size to %d", got)
	}
	small := newEnv(t, envOptions{})
	for i := range 150 {
		if _, err := small.em.SeedJob(board, job(fmt.Sprintf("R%03d", i)), false); err != nil {
			t.Fatal(err)
		}
	}
	for range small.client.Jobs(t.Context(), board, hrflow.ListOptions{}) {
	}
	if got := small.client.ListLimit(); got != hrflow.DefaultListLimit {
		t.Errorf("a short last page changed the page size to %d", got)
	}
}

// recorder is a Limiter that records what the client observes.
type recorder struct {
	mu      sync.Mutex
	answers []string
}

func (r *recorder) Wait(context.Context) error { return nil }
func (r *recorder) Rate() float64              { return 42 }
func (r *recorder) Observe(_ context.Context, route string, status int, latency, retryAfter time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if latency <= 0 {
		status = -1 // never: an attempt takes time
	}
	r.answers = append(r.answers, fmt.Sprintf("%s %d %v", route, status, retryAfter))
}

// TestObserved: every HTTP attempt is told to an Observer limiter, with its
// route, status and Retry-After, and counted by the context's Tally: the
// emulator's 429s past its capacity, with and without Retry-After, and
// 503s.
func TestObserved(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults emulator.Config
		wrap   func() func(http.Handler) http.Handler // a fresh one for each subtest
		want   []string                               // among the attempts observed, in any order
	}{
		{"429 without Retry-After", emulator.Config{Capacity: 1}, nil,
			[]string{"POST /job/indexing 201 0s", "POST /job/indexing 429 0s"}},
		{"429 with Retry-After", emulator.Config{Capacity: 1, RetryAfter: true}, nil,
			[]string{"POST /job/indexing 201 0s", "POST /job/indexing 429 1s"}},
		{"503", emulator.Config{}, func() func(http.Handler) http.Handler {
			return failFirst(1, hrflowtest.RouteCreateJob, 503, "text/html", "<title>busy</title>", map[string]string{"Retry-After": "0"})
		},
			[]string{"POST /job/indexing 503 0s", "POST /job/indexing 201 0s"}},
	} {
		for _, wrapped := range []bool{false, true} {
			name := tt.name
			if wrapped {
				name += ", the limiter behind a gate"
			}
			var wrap func(http.Handler) http.Handler
			if tt.wrap != nil {
				wrap = tt.wrap()
			}
			t.Run(name, func(t *testing.T) { observed(t, tt.faults, wrap, tt.want, wrapped) })
		}
	}
}

// observed is TestObserved for one emulator: the recorder is the client's
// Limiter, or, wrapped, its Observer behind a Limiter that is neither.
func observed(t *testing.T, faults emulator.Config, wrap func(http.Handler) http.Handler, want []string, wrapped bool) {
	rec := &recorder{}
	e := newEnv(t, envOptions{emulator: hrflowtest.Config{Faults: faults}, wrap: wrap,
		config: func(c *hrflow.Config) {
			if wrapped {
				c.Limiter, c.Observer = rate.NewLimiter(rate.Inf, 1), rec
			} else {
				c.Limiter = rec
			}
		}})
	var tally hrflow.Tally
	ctx := hrflow.WithTally(t.Context(), &tally)
	// Two creations at once: with a capacity of one call a second,
	// the second is throttled, then tried again until it passes.
	var wg sync.WaitGroup
	for _, ref := range []string{"A", "B"} {
		wg.Go(func() {
			if _, err := e.client.CreateJob(ctx, board, job(ref)); err != nil && faults.Capacity == 0 {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, w := range want {
		if !slices.Contains(rec.answers, w) {
			t.Errorf("observed %q, want them to include %q", rec.answers, w)
		}
	}
	if got := tally.Attempts(); got != int64(len(rec.answers)) {
		t.Errorf("tally counted %d attempts, the limiter heard %d", got, len(rec.answers))
	}
	throttled := 0
	for _, a := range rec.answers {
		if strings.Contains(a, " 429 ") || strings.Contains(a, " 503 ") {
			throttled++
		}
	}
	if got := tally.Throttled(); got != int64(throttled) || got == 0 {
		t.Errorf("tally counted %d throttled, want %d (and some)", got, throttled)
	}
	if got := tally.Rate(); got != 42 {
		t.Errorf("tally rate = %v, want the limiter's 42", got)
	}
}
