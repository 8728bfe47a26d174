package ratelimit

import (
	"testing"
	"time"
)

const route = "POST /job/indexing"

func ok(latency time.Duration) answer { return answer{route: route, status: 201, latency: latency} }

func TestSignalsBackOffOnThrottling(t *testing.T) {
	c := startCurve(t0, 10)
	for _, status := range []int{429, 503} {
		var s signals
		// Within the cool-down of the curve's epoch: no backoff.
		if v := s.observe(c, answer{route: route, status: status, latency: 5 * time.Millisecond}, at(0.5)); v.backoff {
			t.Errorf("%d half a second after the epoch: backoff, want none within the cool-down", status)
		}
		for i := range 20 {
			s.observe(c, ok(5*time.Millisecond), at(1+float64(i)/100))
		}
		v := s.observe(c, answer{route: route, status: status, latency: 5 * time.Millisecond}, at(2))
		if !v.backoff || v.calls != 22 || v.throttle != 2 {
			t.Errorf("%d after the cool-down: %+v, want a backoff counting 22 calls, 2 throttled", status, v)
		}
		// One backoff at a time in a process.
		if v := s.observe(c, answer{route: route, status: status, latency: 5 * time.Millisecond}, at(2.1)); v.backoff {
			t.Errorf("%d while a backoff is written: another backoff, want none", status)
		}
		s.done()
		if v := s.observe(c, answer{route: route, status: status, latency: 5 * time.Millisecond}, at(2.2)); !v.backoff {
			t.Errorf("%d once the backoff is done: no backoff (the curve was not changed by it), want one", status)
		}
	}
	var s signals
	for _, a := range []answer{{route: route, status: 500}, {route: route, status: 400}, {route: route, status: 0, latency: time.Minute}} {
		if v := s.observe(c, a, at(10)); v.backoff {
			t.Errorf("answer %+v: backoff, want none", a)
		}
	}
}

// TestSignalsCountSinceTheEpoch: a backoff is decided on the calls made at
// the curve's rate, not on those made before it began and answered after.
func TestSignalsCountSinceTheEpoch(t *testing.T) {
	var s signals
	old := startCurve(t0, 10)
	s.observe(old, ok(time.Millisecond), at(1))
	c := old.backoff(at(5), 10, 5, testBounds)
	// Sent at 4.5 s, answered at 5.5 s: made at the old rate.
	s.observe(c, answer{route: route, status: 429, latency: time.Second}, at(5.5))
	for i := range 10 {
		s.observe(c, ok(time.Millisecond), at(6+float64(i)/10))
	}
	v := s.observe(c, answer{route: route, status: 429, latency: time.Millisecond}, at(7.5))
	if !v.backoff || v.calls != 11 || v.throttle != 1 {
		t.Errorf("verdict %+v, want a backoff counting the 11 calls made since the epoch, 1 throttled", v)
	}
	// A slow answer waits twice its latency after the epoch.
	var s2 signals
	if v := s2.observe(c, answer{route: route, status: 429, latency: 2 * time.Second}, at(8)); v.backoff {
		t.Errorf("429 after 2 s, 3 s after the epoch: backoff, want none until 4 s")
	}
	if v := s2.observe(c, answer{route: route, status: 429, latency: 2 * time.Second}, at(9)); !v.backoff || v.cooldown != 4*time.Second {
		t.Errorf("429 after 2 s, 4 s after the epoch: %+v, want a backoff with a 4 s cool-down", v)
	}
}

func TestSignalsBackOffOnLatency(t *testing.T) {
	var s signals
	c := startCurve(t0, 10)
	now := at(10)
	tick := func() time.Time { now = now.Add(10 * time.Millisecond); return now }
	for range 100 {
		if v := s.observe(c, ok(20*time.Millisecond), tick()); v.backoff {
			t.Fatal("answers at their floor: backoff, want none")
		}
	}
	// Another route is slower by nature: no sign of overload.
	for range 100 {
		if v := s.observe(c, answer{route: "GET /storing/jobs", status: 200, latency: 600 * time.Millisecond}, tick()); v.backoff {
			t.Fatal("a slow route at its own floor: backoff, want none")
		}
	}
	// Twice the floor, or the floor plus less than the margin: not "well above".
	for range 100 {
		if v := s.observe(c, ok(200*time.Millisecond), tick()); v.backoff {
			t.Fatal("answers at 10 × a 20 ms floor, but only 180 ms above it: backoff, want none")
		}
	}
	// Then the latency rises to 50 × its floor, and stays there.
	slowly := func(d time.Duration, n int) (backoffs int) {
		for range n {
			now = now.Add(100 * time.Millisecond)
			if v := s.observe(c, ok(d), now); v.backoff {
				backoffs++
				c = c.backoff(now, v.calls, v.throttle, testBounds)
				s.done()
			}
		}
		return backoffs
	}
	if n := slowly(time.Second, 100); n < 1 || n > 4 {
		t.Errorf("latency rising to 50 × its floor: %d backoffs, want 1 to 4 (while it rises)", n)
	}
	if n := slowly(time.Second, 100); n != 0 {
		t.Errorf("latency steady at 50 × its floor: %d more backoffs, want none: the API may be slower for good", n)
	}
	if n := slowly(3*time.Second, 100); n < 1 {
		t.Errorf("latency rising again: %d backoffs, want at least 1", n)
	}
	// Two floor windows later the floor is the new latency: no backoff.
	now = now.Add(2 * floorWindow)
	for range 200 {
		if v := s.observe(c, ok(3*time.Second), tick()); v.backoff {
			t.Fatal("an API slower for good, after two floor windows: backoff, want none")
		}
	}
}

// TestSignalsShareIsRecent: a backoff after seconds of success judges the
// rate by the calls of the last shareWindow, not by all since the epoch: a
// probe that emptied the API's bucket only just now shows in them.
func TestSignalsShareIsRecent(t *testing.T) {
	var s signals
	c := startCurve(t0, 10)
	for i := range 90 { // 9 s of success, 10 calls a second
		if v := s.observe(c, ok(time.Millisecond), at(0.1+float64(i)/10)); v.backoff {
			t.Fatal("backoff on a success")
		}
	}
	v := s.observe(c, answer{route: route, status: 429, latency: time.Millisecond}, at(9.1))
	if !v.backoff || v.throttle != 1 || v.calls > 25 || v.calls < 15 {
		t.Errorf("verdict %+v, want a backoff on the calls of the last %v (about 20, 1 throttled), not the 91 since the epoch", v, shareWindow)
	}
}
