package ratelimit

import (
	"math"
	"testing"
	"time"
)

var (
	t0         = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	testBounds = bounds{start: DefaultStart, floor: floorRate, ceiling: DefaultCeiling}
)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func TestCurveProbesUpFromTheStart(t *testing.T) {
	c := startCurve(t0, DefaultStart)
	if got := c.rateAt(t0, testBounds); got != DefaultStart {
		t.Errorf("rate at the start = %v, want %v", got, float64(DefaultStart))
	}
	if got := c.rateAt(t0.Add(-time.Second), testBounds); got != DefaultStart {
		t.Errorf("rate before the start (a clock behind) = %v, want %v", got, float64(DefaultStart))
	}
	prev := 0.0
	for s := 0.0; s <= 30; s += 0.5 {
		r := c.rateAt(at(s), testBounds)
		if r < prev {
			t.Fatalf("rate fell from %v to %v at %vs without a backoff", prev, r, s)
		}
		if r > DefaultCeiling {
			t.Fatalf("rate %v at %vs, above the ceiling %v", r, s, float64(DefaultCeiling))
		}
		prev = r
	}
	if prev != DefaultCeiling {
		t.Errorf("rate after 30 s of success = %v, want the ceiling %v", prev, float64(DefaultCeiling))
	}
	if got := (curve{}).rateAt(t0, testBounds); got != DefaultStart {
		t.Errorf("rate of no curve = %v, want the start rate", got)
	}
}

func TestBackoff(t *testing.T) {
	// Ten seconds into a start curve the rate is 40 calls/s.
	c := startCurve(t0, DefaultStart)
	r := c.rateAt(at(10), testBounds)
	if math.Abs(r-40) > 0.01 {
		t.Fatalf("rate at 10 s = %v, want 40", r)
	}
	for _, tt := range []struct {
		name              string
		calls, throttled  int
		wantMax, wantLow  float64
		wantBackoffsAfter int64
	}{
		{"a mild overshoot keeps Max where the rate was", 200, 4, 40 * 0.98, 40 * 0.98 * decrease, 1},
		{"a drop to a quarter finds the quarter", 100, 75, 10, 10 * decrease, 1},
		{"too few calls to tell: Max where the rate was", minShareSample - 1, minShareSample - 1, 40, 40 * decrease, 1},
		{"never below a tenth in one step", 100, 100, 40 * (1 - maxThrottledShare), 40 * (1 - maxThrottledShare) * decrease, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := c.backoff(at(10), tt.calls, tt.throttled, testBounds)
			if !b.Epoch.Equal(at(10)) || math.Abs(b.Max-tt.wantMax) > 1e-9 || math.Abs(b.Low-tt.wantLow) > 1e-9 || b.Backoffs != tt.wantBackoffsAfter {
				t.Errorf("backoff = %+v, want epoch %v, max %v, low %v, %d backoffs", b, at(10), tt.wantMax, tt.wantLow, tt.wantBackoffsAfter)
			}
			if got := b.rateAt(at(10), testBounds); math.Abs(got-tt.wantLow) > 1e-9 {
				t.Errorf("rate right after the backoff = %v, want Low %v", got, tt.wantLow)
			}
		})
	}
	floor := bounds{start: 1, floor: floorRate, ceiling: 5}
	if b := startCurve(t0, 1).backoff(t0.Add(time.Minute), 100, 100, floor); b.Max != floorRate || b.Low != floorRate {
		t.Errorf("backoff near the floor = %+v, want max and low at %v", b, floorRate)
	}
	hold := curve{Epoch: t0, Low: 10, Max: 10, Hold: at(3)}
	if b := hold.backoff(at(2), 10, 5, testBounds); !b.Hold.Equal(at(3)) {
		t.Errorf("backoff dropped the hold: %v, want %v", b.Hold, at(3))
	}
}

// TestCurveLevelsOffThenProbes: after a backoff the rate climbs back to
// Max, stays near it (within 5 % for a few seconds), and then goes beyond.
func TestCurveLevelsOffThenProbes(t *testing.T) {
	c := curve{Epoch: t0, Low: 60 * decrease, Max: 60}
	k := math.Cbrt((1 - decrease) / growth)
	if got := c.rateAt(at(k), testBounds); math.Abs(got-60) > 1e-9 {
		t.Errorf("rate at K = %.3f s: %v, want Max 60", k, got)
	}
	near := 0.0
	for s := 0.0; s < 30; s += 0.1 {
		if r := c.rateAt(at(s), testBounds); math.Abs(r-60) <= 3 {
			near += 0.1
		}
	}
	if near < 3 {
		t.Errorf("the rate stayed within 5 %% of Max for %.1f s, want at least 3 s", near)
	}
	if got := c.rateAt(at(30), testBounds); got <= 60 {
		t.Errorf("rate 30 s after the backoff = %v, want beyond Max", got)
	}
}

// TestControlLoop runs the controller against a simulated API in virtual
// time: a token bucket of the given capacity (burst equal to it), and a
// fleet that always has calls to make (throttled ones among them), each
// answered after a few milliseconds, the calls of each window of the
// shared limiter made as it begins. It checks what the curve is
// for: the calls let through are at least nine tenths of the capacity,
// and few calls are throttled, at a capacity below the start rate, at it,
// above it, and after a drop.
func TestControlLoop(t *testing.T) {
	for _, tt := range []struct {
		name                string
		before, after       float64 // capacity, before and after the drop at 60 s
		wantShareBelow      float64 // of the calls, throttled
		minBefore, minAfter float64 // of the capacity, let through
	}{
		{"capacity 5", 5, 5, 0.10, 0.9, 0.9},
		{"capacity 10", 10, 10, 0.05, 0.9, 0.9},
		{"capacity 60", 60, 60, 0.05, 0.8, 0.9}, // the first 20 s climb from 10
		{"60 then 15", 60, 15, 0.10, 0.8, 0.9},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := simulate(tt.before, tt.after, 60, 180)
			if share := float64(s.throttled) / float64(s.calls); share > tt.wantShareBelow {
				t.Errorf("%d of %d calls throttled (%.1f %%), want below %.0f %%", s.throttled, s.calls, 100*share, 100*tt.wantShareBelow)
			}
			if got := s.okBefore / 60; got < tt.minBefore*tt.before {
				t.Errorf("%.1f calls/s let through in the first minute at capacity %v, want at least %.1f", got, tt.before, tt.minBefore*tt.before)
			}
			if got := s.okAfter / 120; got < tt.minAfter*tt.after {
				t.Errorf("%.1f calls/s let through after the drop to %v, want at least %.1f", got, tt.after, tt.minAfter*tt.after)
			}
			t.Logf("%d calls, %d throttled (%.1f %%), %.1f calls/s then %.1f, %d backoffs",
				s.calls, s.throttled, 100*float64(s.throttled)/float64(s.calls), s.okBefore/60, s.okAfter/120, s.backoffs)
		})
	}
}

type simResult struct {
	calls, throttled  int
	okBefore, okAfter float64
	backoffs          int64
}

// simulate runs the loop for total seconds of virtual time, the capacity
// dropping from before to after at drop seconds. The shared state is a
// plain curve here: one replica, no NATS.
func simulate(before, after, drop, total float64) simResult {
	const (
		step    = time.Millisecond
		latency = 3 * time.Millisecond
	)
	var (
		res      simResult
		c        = startCurve(t0, DefaultStart)
		sig      signals
		tokens   = before
		capacity = before
		credit   float64
		inFlight []struct {
			done, sent time.Time
			ok         bool
		}
	)
	for now := t0; now.Before(at(total)); now = now.Add(step) {
		if now.Sub(t0).Seconds() >= drop && capacity != after {
			capacity, tokens = after, min(tokens, after)
		}
		tokens = min(capacity, tokens+capacity*step.Seconds())
		if now.Sub(t0)%minWindow == 0 { // a window begins: its calls fall due
			credit += float64(c.slots(now, now.Add(minWindow), testBounds))
		}
		keep := inFlight[:0]
		for _, f := range inFlight {
			if f.done.After(now) {
				keep = append(keep, f)
				continue
			}
			status := 200
			if !f.ok {
				status = 429
			} else if now.Sub(t0).Seconds() < drop {
				res.okBefore++
			} else {
				res.okAfter++
			}
			if v := sig.observe(c, answer{route: "POST /job/indexing", status: status, latency: now.Sub(f.sent)}, now); v.backoff {
				if now.Sub(c.Epoch) >= v.cooldown {
					c = c.backoff(now, v.calls, v.throttle, testBounds)
				}
				sig.done()
			}
		}
		inFlight = keep
		for credit >= 1 {
			credit--
			ok := tokens >= 1
			if ok {
				tokens--
			} else {
				res.throttled++
			}
			res.calls++
			inFlight = append(inFlight, struct {
				done, sent time.Time
				ok         bool
			}{now.Add(latency), now, ok})
		}
	}
	res.backoffs = c.Backoffs
	return res
}

// TestCurveSlots: the calls a curve allows in windows add up to the
// integral of its rate, the ceiling included, window after window; so an
// adaptive rate is kept as it changes, whoever counts.
func TestCurveSlots(t *testing.T) {
	for _, c := range []curve{
		startCurve(t0, DefaultStart),                          // climbs to the ceiling within 15 s
		{Epoch: t0, Low: 60 * decrease, Max: 60},              // back to Max, then beyond
		{Epoch: t0, Low: 0.5, Max: 0.5},                       // the floor
		{Epoch: t0, Low: DefaultCeiling, Max: DefaultCeiling}, // at the ceiling from the start
	} {
		var sum int64
		integral := 0.0
		const step = time.Millisecond
		for w := t0; w.Before(at(30)); w = w.Add(minWindow) {
			n := c.slots(w, w.Add(minWindow), testBounds)
			if limit := int64(math.Ceil(c.rateAt(w.Add(minWindow), testBounds)*minWindow.Seconds())) + 1; n < 0 || n > limit {
				t.Fatalf("curve %+v: window at %v holds %d calls, want 0 to %d", c, w.Sub(t0), n, limit)
			}
			sum += n
			for s := w; s.Before(w.Add(minWindow)); s = s.Add(step) {
				integral += c.rateAt(s.Add(step/2), testBounds) * step.Seconds()
			}
		}
		if math.Abs(float64(sum)-integral) > 1.01 {
			t.Errorf("curve %+v: %d calls in 30 s of windows, want the integral of its rate, %.2f", c, sum, integral)
		}
	}
	if got := (curve{}).slots(t0, t0.Add(10*time.Second), testBounds); got != 10*DefaultStart {
		t.Errorf("no curve: %d calls in 10 s, want %d at the start rate", got, 10*DefaultStart)
	}
	if got := startCurve(t0, 10).slots(t0.Add(-time.Second), t0, testBounds); got != 0 {
		t.Errorf("%d calls before the epoch, want 0", got)
	}
}
