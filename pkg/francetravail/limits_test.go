package francetravail_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
)

// TestRangeCapLearned searches an API whose range cap is 1000, not the
// documented 3000, for queries of every size around it: every offer is
// read once, nothing is truncated, no query fails, and the client keeps
// the cap it learned from the API's 400.
func TestRangeCapLearned(t *testing.T) {
	for _, tt := range []struct {
		name           string
		offers         int
		wantCapLearned bool
	}{
		{"within the cap: never asks past it", 1000, false},
		{"past the cap, within its last page", 1100, true},
		{"past what the cap reaches, within 3 150", 2000, true},
		{"past 3 150: split from the start", 5000, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			corpus := francetravailtest.Synthetic(tt.offers, 20, francetravailtest.SyntheticOptions{Departements: []string{"74"}})
			e := newEnv(t, francetravailtest.Config{Corpus: corpus, MaxStart: 1000}, nil)
			ids, sum := e.searchAll(t, francetravail.Query{Departement: "74"})
			want := make([]string, tt.offers)
			for i := range want {
				want[i] = corpus.Entry(i).ID
			}
			slices.Sort(want)
			slices.Sort(ids)
			if !slices.Equal(ids, want) {
				t.Errorf("read %d offers, want the %d of the corpus, each once", len(ids), tt.offers)
			}
			if sum.Truncated || sum.Unreached != 0 || sum.Duplicates != 0 || sum.Total != tt.offers || sum.Fetched != tt.offers {
				t.Errorf("summary %+v, want %d fetched, none truncated, unreached or duplicated", sum, tt.offers)
			}
			refused := int(e.emu.Stats().Count("GET /offres/search", 400))
			if got := e.c.RangeCap(); tt.wantCapLearned && (got != 1000 || refused != 1) {
				t.Errorf("range cap %d after %d refusals, want 1000 learned from one", got, refused)
			} else if !tt.wantCapLearned && (got != francetravail.MaxRangeStart || refused != 0) {
				t.Errorf("range cap %d after %d refusals, want the first guess %d and none", got, refused, francetravail.MaxRangeStart)
			}
			// Another search of the same client starts from the cap learned.
			before := e.emu.Stats().Count("GET /offres/search", 400)
			if again, _ := e.searchAll(t, francetravail.Query{Departement: "74"}); len(again) != tt.offers {
				t.Errorf("second search read %d offers, want %d", len(again), tt.offers)
			}
			if after := e.emu.Stats().Count("GET /offres/search", 400); after != before {
				t.Errorf("second search refused %d times, want none: the cap is known", after-before)
			}
			t.Logf("%d offers: %d windows, %d requests, %d overlaps", tt.offers, sum.Windows, sum.Requests, sum.Overlaps)
		})
	}
}

// recorder is a Limiter that records what the client tells it.
type recorder struct {
	mu      sync.Mutex
	waits   int
	answers []string
}

func (r *recorder) Wait(context.Context) error {
	r.mu.Lock()
	r.waits++
	r.mu.Unlock()
	return nil
}

func (r *recorder) Observe(_ context.Context, route string, status int, _, retryAfter time.Duration) {
	r.mu.Lock()
	r.answers = append(r.answers, fmt.Sprintf("%s %d %v", route, status, retryAfter))
	r.mu.Unlock()
}

// TestLimiterHearsRetryAfter: the shared Limiter is waited before every
// call and told every answer, the quota's 429 with its Retry-After
// included, so that it can pause every replica.
func TestLimiterHearsRetryAfter(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, francetravailtest.Config{Quota: 1, Corpus: francetravailtest.Synthetic(300, 1, francetravailtest.SyntheticOptions{})},
		func(c *francetravail.Config) { c.RateLimit = 100; c.Limiter = rec })
	ids, _ := e.searchAll(t, francetravail.Query{})
	if len(ids) != 300 {
		t.Fatalf("%d offers, want 300", len(ids))
	}
	if _, err := e.c.Offer(t.Context(), ids[0]); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	st := e.emu.Stats()
	calls := int(st.Total("GET /offres/search") + st.Total("GET /offres/{id}"))
	if rec.waits != calls || len(rec.answers) != calls {
		t.Errorf("limiter waited %d times and heard %d answers, want one of each for the %d calls", rec.waits, len(rec.answers), calls)
	}
	for _, want := range []string{"GET /offres/search 429 1s", "GET /offres/search 206 0s", "GET /offres/{id} 200 0s"} {
		if !slices.Contains(rec.answers, want) {
			t.Errorf("heard %q, want %q among them", rec.answers, want)
		}
	}
}
