package ratelimit

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/pulljobs/pulljobs/pkg/natsembed"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	s, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	nc, err := s.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestNewRejects(t *testing.T) {
	js := newJetStream(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		rate float64
	}{{"hrflow", 0}, {"hrflow", -1}, {"a.b", 10}, {"", 10}, {"a b", 10}} {
		if _, err := New(ctx, js, tt.name, tt.rate); err == nil {
			t.Errorf("New(%q, %v): err = nil, want an error", tt.name, tt.rate)
		}
	}
}

// TestSharedAcrossLimiters checks the quota holds across two limiters, as two
// replicas would have: in every window, never more calls than the window
// holds; for a fixed rate and for an adaptive one (kept at that rate).
func TestSharedAcrossLimiters(t *testing.T) {
	const perSecond = 20
	t.Run("fixed", func(t *testing.T) {
		sharedAcross(t, func(ctx context.Context, js jetstream.JetStream) (*Shared, error) {
			return New(ctx, js, "hrflow", perSecond)
		})
	})
	t.Run("adaptive", func(t *testing.T) {
		sharedAcross(t, func(ctx context.Context, js jetstream.JetStream) (*Shared, error) {
			return NewAdaptive(ctx, js, "hrflow", AdaptiveOptions{Start: perSecond, Ceiling: perSecond})
		})
	})
}

func sharedAcross(t *testing.T, newLimiter func(context.Context, jetstream.JetStream) (*Shared, error)) {
	const perSecond = 20
	js := newJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := newLimiter(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newLimiter(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	perWindow := map[int64]int{}
	var calls atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		// Each caller has a copy of its replica's limiter (the same counter
		// and local limiter) whose clock remembers its last reading: the
		// window in which Wait took its slot, however late it returns.
		l := *a
		if i%2 == 1 {
			l = *b
		}
		var last time.Time
		l.now = func() time.Time { last = time.Now(); return last }
		wg.Go(func() {
			for range 5 {
				if err := l.Wait(ctx); err != nil {
					t.Error(err)
					return
				}
				calls.Add(1)
				w := last.UnixNano() / int64(a.window)
				mu.Lock()
				perWindow[w]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got := calls.Load(); got != 40 {
		t.Fatalf("calls = %d, want 40", got)
	}
	perWin := int(a.slots(perSecond, 0))
	for w, n := range perWindow {
		if n > perWin {
			t.Errorf("window %d granted %d calls, want at most %d", w, n, perWin)
		}
	}
}

// TestSlots: a window holds the calls that fall due in it, so that any
// rate is kept on average, not only multiples of the windows.
func TestSlots(t *testing.T) {
	for _, r := range []float64{0.5, 1, 2.5, 4, 10, 15, 37.5, 60, 100} {
		s := &Shared{window: max(time.Duration(float64(time.Second)/r), minWindow)}
		windows := int64(10 * time.Second / s.window) // ten seconds
		var sum int64
		for w := int64(1_234_567); w < 1_234_567+windows; w++ {
			n := s.slots(r, w)
			if n < 0 || float64(n) > math.Ceil(r*s.window.Seconds()) {
				t.Fatalf("%v calls/s: window %d holds %d, want 0 to %v", r, w, n, math.Ceil(r*s.window.Seconds()))
			}
			sum += n
		}
		if want := 10 * r; math.Abs(float64(sum)-want) > 1 {
			t.Errorf("%v calls/s in windows of %v: %d calls in ten seconds, want %v", r, s.window, sum, want)
		}
	}
}

// TestWaitObeysContext: a caller that finds the window full waits for the
// next one until its context ends. The replicas' clocks stand still, so
// that the next window never comes, whatever the machine's pace.
func TestWaitObeysContext(t *testing.T) {
	js := newJetStream(t)
	frozen := time.Date(2026, 11, 29, 12, 0, 0, int(500*time.Millisecond), time.UTC)
	var replicas []*Shared
	for range 2 {
		l, err := New(context.Background(), js, "slow", 1)
		if err != nil {
			t.Fatal(err)
		}
		l.now = func() time.Time { return frozen }
		replicas = append(replicas, l)
	}
	if err := replicas[0].Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := replicas[1].Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the other replica, in the same window: err = %v, want the context's error", err)
	}
}
