package ratelimit

import (
	"net/http"
	"sync"
	"time"
)

// Signs of overload, as one process reads them from the API's answers.
const (
	// minCooldown is the least time between two backoffs; a backoff also
	// waits twice the latency of the answer that asks for it, so that the
	// calls made at the old rate have come back first.
	minCooldown = time.Second
	// Latency is a sign of overload when its moving average, over the
	// answers of one route, is at least latencyFactor times the route's
	// floor (its fastest answer over the last one or two floorWindows)
	// and at least latencyMargin above it, after minLatencySamples
	// answers. A backoff it caused is followed by another only if the
	// average rises latencyRerise times higher still: an API that became
	// slower for good, whatever the rate, is not backed off from to
	// nothing, and the floor follows it within two windows.
	latencyFactor     = 4
	latencyMargin     = 250 * time.Millisecond
	latencyRerise     = 1.5
	minLatencySamples = 20
	floorWindow       = time.Minute
	// smoothing is the weight of the newest answer in the moving average.
	smoothing = 0.1
	// shareWindow is how far back a backoff looks for the share of calls
	// throttled, in shareBuckets: far enough to hold a few calls at a low
	// rate, near enough that a probe that emptied the API's bucket only
	// just now is not hidden by the seconds of success before it.
	shareWindow  = 2 * time.Second
	shareBuckets = 8
)

// answer is what a limiter learns from one HTTP attempt: the route it
// called, the status of the answer (0 for none), the time from sending
// the request to the answer, and the answer's Retry-After (0 for none).
type answer struct {
	route      string
	status     int
	latency    time.Duration
	retryAfter time.Duration
}

// throttled reports an answer that says the API is overloaded or over its
// quota: 429, or 503.
func (a answer) throttled() bool {
	return a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable
}

// signals tallies the answers one process got since the curve's last
// backoff, and the latency of each route, and says when to back off. It
// is safe for concurrent use.
type signals struct {
	mu sync.Mutex
	// epoch is the epoch of the curve that recent counts calls since: the
	// calls made at or after it, by when they were answered.
	epoch  time.Time
	recent [shareBuckets]shareBucket
	routes map[string]*latency
	busy   bool // a backoff is being written
}

// shareBucket counts the calls answered in one shareWindow/shareBuckets
// from start, and those throttled.
type shareBucket struct {
	start           time.Time
	calls, throttle int
}

// count counts a call answered at now.
func (s *signals) count(now time.Time, throttled bool) {
	span := shareWindow / shareBuckets
	start := now.Truncate(span)
	b := &s.recent[(now.UnixNano()/int64(span))%shareBuckets]
	if !b.start.Equal(start) {
		*b = shareBucket{start: start}
	}
	b.calls++
	if throttled {
		b.throttle++
	}
}

// share returns the calls answered within shareWindow of now, and those
// throttled.
func (s *signals) share(now time.Time) (calls, throttle int) {
	for _, b := range s.recent {
		if now.Sub(b.start) < shareWindow {
			calls, throttle = calls+b.calls, throttle+b.throttle
		}
	}
	return calls, throttle
}

// verdict is what signals make of an answer.
type verdict struct {
	// backoff asks for a backoff of the curve, at least cooldown after
	// its epoch; calls and throttled are what the curve's rate gave
	// lately (made since the epoch, answered within shareWindow). done
	// must be called once the backoff is written or given up.
	backoff         bool
	calls, throttle int
	cooldown        time.Duration
}

// observe counts a, answered at now, against cur, the curve as the process
// knows it, and says whether to back off.
func (s *signals) observe(cur curve, a answer, now time.Time) verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !cur.Epoch.Equal(s.epoch) {
		s.epoch, s.recent = cur.Epoch, [shareBuckets]shareBucket{}
	}
	if a.status == 0 {
		return verdict{} // no answer: says nothing of the API's load
	}
	if !now.Add(-a.latency).Before(cur.Epoch) {
		s.count(now, a.throttled())
	}
	slow := false
	if !a.throttled() && a.status < http.StatusInternalServerError {
		slow = s.track(a.route, now).add(a.latency, now)
	}
	cooldown := max(minCooldown, 2*a.latency)
	if !a.throttled() && !slow || s.busy || now.Sub(cur.Epoch) < cooldown {
		return verdict{}
	}
	if slow {
		s.routes[a.route].backedOff()
	}
	s.busy = true
	calls, throttle := s.share(now)
	return verdict{backoff: true, calls: calls, throttle: throttle, cooldown: cooldown}
}

// done ends the backoff a verdict asked for.
func (s *signals) done() {
	s.mu.Lock()
	s.busy = false
	s.mu.Unlock()
}

func (s *signals) track(route string, now time.Time) *latency {
	l := s.routes[route]
	if l == nil {
		if s.routes == nil {
			s.routes = make(map[string]*latency)
		}
		l = &latency{since: now}
		s.routes[route] = l
	}
	return l
}

// latency follows the latency of one route: its floor and its moving
// average.
type latency struct {
	floor, prevFloor time.Duration // the fastest answer of this window and of the one before; 0 for none
	since            time.Time     // when this window began
	average          float64       // seconds
	samples          int
	ref              float64 // the average at the last backoff it caused; 0 for none
}

// add counts an answer that took d, at now, and reports whether the
// route's latency is now a sign of overload.
func (l *latency) add(d time.Duration, now time.Time) bool {
	switch elapsed := now.Sub(l.since); {
	case elapsed >= 2*floorWindow:
		l.prevFloor, l.floor, l.since = 0, 0, now
	case elapsed >= floorWindow:
		l.prevFloor, l.floor, l.since = l.floor, 0, now
	}
	if l.floor == 0 || d < l.floor {
		l.floor = d
	}
	if l.samples == 0 {
		l.average = d.Seconds()
	} else {
		l.average += smoothing * (d.Seconds() - l.average)
	}
	l.samples++
	floor := l.floor
	if l.prevFloor > 0 && l.prevFloor < floor {
		floor = l.prevFloor
	}
	threshold := max(latencyFactor*floor.Seconds(), (floor + latencyMargin).Seconds())
	if l.average < threshold {
		l.ref = 0
		return false
	}
	return l.samples >= minLatencySamples && (l.ref == 0 || l.average >= latencyRerise*l.ref)
}

// backedOff notes that the route's latency caused a backoff.
func (l *latency) backedOff() { l.ref = l.average }
