package ratelimit

import (
	"context"
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
// replicas would have: in every window, never more calls than the window holds.
func TestSharedAcrossLimiters(t *testing.T) {
	js := newJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const perSecond = 20
	a, err := New(ctx, js, "hrflow", perSecond)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, js, "hrflow", perSecond)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	perWindow := map[int64]int{}
	var calls atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() {
			for range 5 {
				if err := l.Wait(ctx); err != nil {
					t.Error(err)
					return
				}
				calls.Add(1)
				w := time.Now().UnixNano() / int64(a.window)
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
	// Calls are counted in the window of their return; a call granted at the
	// very end of a window may return in the next, so allow one extra.
	for w, n := range perWindow {
		if n > int(a.perWin)+1 {
			t.Errorf("window %d saw %d calls, want at most %d", w, n, a.perWin+1)
		}
	}
	if len(perWindow) < int(40/a.perWin)-1 {
		t.Errorf("40 calls spread over %d windows of %d; the quota did not hold", len(perWindow), a.perWin)
	}
}

func TestWaitObeysContext(t *testing.T) {
	js := newJetStream(t)
	l, err := New(context.Background(), js, "slow", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.Wait(ctx); err == nil {
		t.Error("second call within the same second: err = nil, want the context's error")
	}
}
