package ratelimit

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock the test moves; a running one also moves with the
// real clock, as a limiter that paces calls needs.
type fakeClock struct {
	mu      sync.Mutex
	t       time.Time
	running bool
	since   time.Time // the real time at which t was read, when running
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return c.t.Add(time.Since(c.since))
	}
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestNewAdaptiveRejects(t *testing.T) {
	js := newJetStream(t)
	for _, o := range []AdaptiveOptions{{Start: 200}, {Start: 0.1}, {Start: 20, Ceiling: 10}} {
		if _, err := NewAdaptive(t.Context(), js, "hrflow", o); err == nil {
			t.Errorf("NewAdaptive(%+v): err = nil, want an error", o)
		}
	}
	if _, err := NewAdaptive(t.Context(), js, "a.b", AdaptiveOptions{}); err == nil {
		t.Error(`NewAdaptive("a.b"): err = nil, want an error`)
	}
}

// TestAdaptiveSharedAcrossReplicas: two replicas follow one curve. It
// starts at the start rate and grows with time; a backoff one of them
// decides reaches the other, and is not repeated by it within the
// cool-down.
func TestAdaptiveSharedAcrossReplicas(t *testing.T) {
	js := newJetStream(t)
	ctx := t.Context()
	clock := &fakeClock{t: time.Now()}
	opts := AdaptiveOptions{Now: clock.now}
	a, err := NewAdaptive(ctx, js, "hrflow", opts)
	if err != nil {
		t.Fatal(err)
	}
	// a makes 100 calls that take 900 ms each, 26 of them throttled: the
	// cool-down is then 1.8 s after the epoch, and the last call, answered
	// then, decides the backoff on all of them.
	start := startCurve(clock.now(), DefaultStart)
	clock.advance(time.Second)
	for i := range 99 {
		status := 201
		if i%4 == 0 {
			status = 429
		}
		a.Observe(ctx, route, status, 900*time.Millisecond, 0)
	}
	if c := a.state.cached(); c.Backoffs != 0 {
		t.Fatalf("backoffs = %d within the cool-down, want 0", c.Backoffs)
	}
	clock.advance(800 * time.Millisecond)
	a.Observe(ctx, route, 429, 900*time.Millisecond, 0)
	want := start.rateAt(clock.now(), a.bounds) * (1 - 26.0/100) * decrease
	if got := a.Rate(); math.Abs(got-want) > 0.01 {
		t.Errorf("rate after the backoff = %v, want %v: the share let through of the rate then, times %v", got, want, decrease)
	}
	// Another replica finds a's curve, not its own start.
	clock.advance(refreshEvery)
	b, err := NewAdaptive(ctx, js, "hrflow", opts)
	if err != nil {
		t.Fatal(err)
	}
	a.state.get(ctx)
	if got := b.Rate(); got == DefaultStart || math.Abs(got-a.Rate()) > 0.01 {
		t.Errorf("second replica's rate = %v, want the first's %v", got, a.Rate())
	}
	// b's own 429s within the cool-down change nothing.
	for range 20 {
		b.Observe(ctx, route, 429, 5*time.Millisecond, 0)
	}
	if c := b.state.cached(); c.Backoffs != 1 {
		t.Errorf("backoffs = %d after the second replica's 429s within the cool-down, want 1", c.Backoffs)
	}
	clock.advance(minCooldown)
	b.Observe(ctx, route, 503, 5*time.Millisecond, 0)
	if c := b.state.cached(); c.Backoffs != 2 {
		t.Errorf("backoffs = %d after a 503 past the cool-down, want 2", c.Backoffs)
	}
	clock.advance(refreshEvery)
	a.state.get(ctx)
	if a.Rate() != b.Rate() {
		t.Errorf("rates differ after the second backoff: %v and %v", a.Rate(), b.Rate())
	}
}

// TestHoldShared: a Retry-After one replica observes pauses every replica
// until it ends; so does an adaptive limiter's.
func TestHoldShared(t *testing.T) {
	js := newJetStream(t)
	ctx := t.Context()
	a, err := NewHold(ctx, js, "francetravail", "app1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewHold(ctx, js, "francetravail", "app1")
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewHold(ctx, js, "francetravail", "app2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewHold(ctx, js, "francetravail", "a.b"); err == nil {
		t.Error(`NewHold(quota "a.b"): err = nil, want an error`)
	}
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	a.Observe(ctx, "GET /offres/search", 200, time.Millisecond, time.Second) // not throttled: no hold
	a.Observe(ctx, "GET /offres/search", 429, time.Millisecond, 0)           // no Retry-After: no hold
	if c := a.state.cached(); !c.Hold.IsZero() {
		t.Fatalf("hold %v after answers that ask for none", c.Hold)
	}
	const retryAfter = 600 * time.Millisecond
	asked := time.Now()
	a.Observe(ctx, "GET /offres/search", 429, time.Millisecond, retryAfter)
	time.Sleep(refreshEvery) // b's copy of the state goes stale
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(asked); waited < retryAfter-50*time.Millisecond {
		t.Errorf("the other replica called %v after the Retry-After of %v, want after it", waited, retryAfter)
	}
	if got := b.Rate(); !math.IsInf(got, 1) {
		t.Errorf("a hold's rate = %v, want +Inf: it paces nothing", got)
	}
	if c := other.state.get(ctx); !c.Hold.IsZero() {
		t.Errorf("another application's quota holds until %v, want no hold", c.Hold)
	}
	// A Retry-After shorter than the hold in force does not shorten it.
	a.Observe(ctx, "GET /offres/search", 429, time.Millisecond, 5*time.Second)
	long := a.state.cached().Hold
	a.Observe(ctx, "GET /offres/search", 429, time.Millisecond, time.Second)
	if got := a.state.cached().Hold; !got.Equal(long) {
		t.Errorf("hold = %v after a shorter Retry-After, want %v", got, long)
	}
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := a.Wait(wctx); err == nil {
		t.Error("Wait during a 5 s hold with a 50 ms context: err = nil, want the context's error")
	}
}

// TestAdaptiveStartsAgainWhenForgotten: a curve the bucket dropped (it
// expires when no backoff rewrote it for an hour, and no replica used it)
// is written again from the start rate.
func TestAdaptiveStartsAgainWhenForgotten(t *testing.T) {
	js := newJetStream(t)
	ctx := t.Context()
	clock := &fakeClock{t: time.Now(), running: true, since: time.Now()}
	a, err := NewAdaptive(ctx, js, "hrflow", AdaptiveOptions{Now: clock.now, Start: 5})
	if err != nil {
		t.Fatal(err)
	}
	clock.advance(20 * time.Second)
	a.state.get(ctx)
	if got := a.Rate(); got <= 5 {
		t.Fatalf("rate after 20 s = %v, want above the start", got)
	}
	if err := a.state.kv.Delete(ctx, "hrflow"); err != nil {
		t.Fatal(err)
	}
	clock.advance(refreshEvery)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	c, rev, _, err := a.state.read(ctx)
	if err != nil || rev == 0 {
		t.Fatalf("state after a Wait: rev %d, err %v; want a curve written again", rev, err)
	}
	if got := c.rateAt(c.Epoch, a.bounds); got != 5 || c.Epoch.Before(clock.now().Add(-10*time.Second)) {
		t.Errorf("curve written again starts at %v with %v calls/s, want now, at the start rate 5", c.Epoch, got)
	}
}

// TestAdaptivePacesAsItClimbs: many callers waiting on a rate that changes
// from window to window get no more calls than its integral allows: each
// window's calls come from the shared curve, not from each caller's
// reading of the rate (which, varying by a hair, once let a call through
// in every window).
func TestAdaptivePacesAsItClimbs(t *testing.T) {
	js := newJetStream(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	l, err := NewAdaptive(ctx, js, "hrflow", AdaptiveOptions{Start: 3})
	if err != nil {
		t.Fatal(err)
	}
	start := l.state.cached()
	var calls atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for l.Wait(ctx) == nil {
				calls.Add(1)
			}
		})
	}
	wg.Wait()
	// What the curve allows over the 3 s, one window more for the one
	// under way, and its first window's calls.
	allowed := start.slots(start.Epoch, time.Now().Add(minWindow), l.bounds) + 1
	if got := calls.Load(); got < 1 || got > allowed {
		t.Errorf("%d calls in 3 s, want 1 to %d: the curve's, climbing from 3 calls/s (30 would be one a window)", got, allowed)
	}
}
