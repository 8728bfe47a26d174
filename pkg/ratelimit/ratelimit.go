// Package ratelimit enforces a calls-per-second quota shared by every process
// of a fleet, through JetStream: the HrFlow quota belongs to the account,
// not to one pusher, so replicas must draw from one budget.
//
// Time is cut into windows; a call takes a slot by incrementing the window's
// counter (one atomic server-side increment, no compare-and-set race); when
// the window is full the caller sleeps until the next one. A local limiter at
// the same rate keeps one process from hammering the counter while it waits.
//
// The rate is fixed (New), or learned (NewAdaptive): an adaptive limiter
// backs off when the API throttles (429, 503) or slows down, and probes up
// while calls succeed, along a curve every replica reads from a key-value
// bucket (see curve.go). Adaptive limiters, and those of NewHold, also obey
// a Retry-After on behalf of every replica: one process's 429 pauses them
// all. Callers tell a limiter how each call went with Observe.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"

	"github.com/pulljobs/pulljobs/pkg/declare"
)

const (
	// StreamName is the counter stream every limiter of a fleet shares.
	StreamName    = "PULLJOBS_RATELIMIT"
	subjectPrefix = "pulljobs.ratelimit."
	// minWindow keeps windows long enough that clocks a few milliseconds apart
	// agree on which window is current. An adaptive limiter's windows are
	// this long.
	minWindow = 100 * time.Millisecond
	// counterRetention drops windows long past.
	counterRetention = time.Minute
	incrHeader       = "Nats-Incr"
	// slotCycle keeps the window numbers that the slots are computed from
	// small enough for a float64 to count them exactly.
	slotCycle = 1 << 20
	// localSlack is how far an adaptive rate moves before the local
	// limiter follows it.
	localSlack = 0.05
)

// Bounds of an adaptive rate, in calls per second.
const (
	// DefaultStart is where an adaptive rate starts: HrFlow's fixed
	// default.
	DefaultStart = 10
	// DefaultCeiling is the most an adaptive rate probes up to: more than
	// a pusher fleet has needed, and less than a fleet of two pushers at
	// their default concurrency could send.
	DefaultCeiling = 100
	// floorRate is the least an adaptive rate falls to.
	floorRate = 0.5
)

// Shared is a rate limiter shared by every Shared with the same name on the
// same NATS system. Its zero value is not usable; see New, NewAdaptive and
// NewHold. It is safe for concurrent use.
type Shared struct {
	js      jetstream.JetStream
	subject string
	window  time.Duration
	// fixed is the rate of New; 0 for an adaptive limiter (whose rate
	// comes from state) or a hold alone.
	fixed    float64
	adaptive bool
	bounds   bounds
	state    *sharedState  // nil for New's
	signals  *signals      // an adaptive limiter's
	local    *rate.Limiter // nil for a hold alone
	now      func() time.Time
	api      metric.MeasurementOption // the api label of the metrics
}

// New returns a limiter allowing perSecond calls per second in total, across
// processes, for the quota called name (a subject token: letters, digits, -
// and _). It declares the counter stream idempotently. Its rate never
// changes, and Observe only counts throttled calls.
func New(ctx context.Context, js jetstream.JetStream, name string, perSecond float64) (*Shared, error) {
	if perSecond <= 0 {
		return nil, fmt.Errorf("rate limit %q: %v calls/s: want a positive rate", name, perSecond)
	}
	// Windows long enough to hold at least one call.
	window := max(time.Duration(float64(time.Second)/perSecond), minWindow)
	s, err := newShared(ctx, js, name, window)
	if err != nil {
		return nil, err
	}
	s.fixed = perSecond
	s.local = rate.NewLimiter(rate.Limit(perSecond), s.burst(perSecond))
	rateGauge.Record(ctx, perSecond, s.api)
	return s, nil
}

// AdaptiveOptions tune NewAdaptive; the zero value is the defaults.
type AdaptiveOptions struct {
	// Start is the rate of a fleet whose curve is not written yet, or was
	// forgotten; default DefaultStart.
	Start float64
	// Ceiling is the most the rate probes up to; default DefaultCeiling.
	Ceiling float64
	// Now is the clock of the curve and of the windows; nil means
	// time.Now. Every replica's clock must agree within a window's length.
	Now func() time.Time
}

// NewAdaptive returns a limiter whose rate, shared by every limiter called
// name, is learned from the answers Observe reports: it starts at
// opts.Start, backs off on 429, 503 and latency rising well above its
// floor, and probes up to opts.Ceiling while calls succeed. It declares the
// counter stream and Bucket idempotently.
func NewAdaptive(ctx context.Context, js jetstream.JetStream, name string, opts AdaptiveOptions) (*Shared, error) {
	b := bounds{start: opts.Start, floor: floorRate, ceiling: opts.Ceiling}
	if b.start == 0 {
		b.start = DefaultStart
	}
	if b.ceiling == 0 {
		b.ceiling = DefaultCeiling
	}
	if b.start < floorRate || b.ceiling < b.start {
		return nil, fmt.Errorf("rate limit %q: start %v and ceiling %v calls/s: want %v ≤ start ≤ ceiling", name, b.start, b.ceiling, floorRate)
	}
	s, err := newShared(ctx, js, name, minWindow)
	if err != nil {
		return nil, err
	}
	if opts.Now != nil {
		s.now = opts.Now
	}
	if s.state, err = openState(ctx, js, name, s.now); err != nil {
		return nil, fmt.Errorf("rate limit %q: %w", name, err)
	}
	s.adaptive, s.bounds, s.signals = true, b, new(signals)
	if _, err := s.curve(ctx); err != nil {
		return nil, fmt.Errorf("rate limit %q: %w", name, err)
	}
	r := s.Rate()
	s.local = rate.NewLimiter(rate.Limit(r), s.burst(r))
	return s, nil
}

// NewHold returns a limiter that paces nothing but obeys, on behalf of
// every hold of the same quota, the Retry-After of a throttled answer that
// any of them observed: the France Travail quota belongs to the
// application, and a 429 to one replica is meant for all. name is the API
// (the metrics' label), quota names the quota among the API's (letters,
// digits, - and _; such as a digest of the application's client id).
func NewHold(ctx context.Context, js jetstream.JetStream, name, quota string) (*Shared, error) {
	if !validName(name) || !validName(quota) {
		return nil, fmt.Errorf("rate limit %q, quota %q: want letters, digits, - and _ only", name, quota)
	}
	s := &Shared{js: js, now: time.Now, api: metric.WithAttributeSet(attribute.NewSet(apiKey.String(name)))}
	var err error
	if s.state, err = openState(ctx, js, name+"-"+quota, s.now); err != nil {
		return nil, fmt.Errorf("rate limit %q: %w", name, err)
	}
	return s, nil
}

func newShared(ctx context.Context, js jetstream.JetStream, name string, window time.Duration) (*Shared, error) {
	if !validName(name) {
		return nil, fmt.Errorf("rate limit %q: want letters, digits, - and _ only", name)
	}
	_, err := declare.Stream(ctx, js, jetstream.StreamConfig{
		Name:              StreamName,
		Description:       "pulljobs: per-window call counters of quotas shared by all replicas",
		Subjects:          []string{subjectPrefix + ">"},
		Storage:           jetstream.FileStorage,
		AllowMsgCounter:   true,
		MaxMsgsPerSubject: 1,
		MaxAge:            counterRetention,
	})
	if err != nil {
		return nil, fmt.Errorf("rate limit %q: %w", name, err)
	}
	return &Shared{
		js:      js,
		subject: subjectPrefix + name + ".",
		window:  window,
		now:     time.Now,
		api:     metric.WithAttributeSet(attribute.NewSet(apiKey.String(name))),
	}, nil
}

// curve returns the adaptive limiter's curve. When there is none, being
// the first of its fleet or finding the curve forgotten (stateTTL), it
// writes one that starts now, unless another replica just did.
func (s *Shared) curve(ctx context.Context) (curve, error) {
	c := s.state.get(ctx)
	if c.Max > 0 {
		return c, nil
	}
	now := s.now()
	err := s.state.change(ctx, func(c curve) (curve, bool) {
		if c.Max > 0 {
			return c, false
		}
		start := startCurve(now, s.bounds.start)
		start.Hold = c.Hold
		return start, true
	})
	return s.state.cached(), err
}

// burst is the local limiter's burst at rate r: a window's calls.
func (s *Shared) burst(r float64) int {
	return max(1, int(math.Ceil(r*s.window.Seconds())))
}

// Rate returns the calls per second the limiter allows now, across the
// fleet: the fixed rate, the adaptive curve's, or +Inf for a hold alone.
func (s *Shared) Rate() float64 {
	switch {
	case s.fixed > 0:
		return s.fixed
	case s.adaptive:
		return s.state.cached().rateAt(s.now(), s.bounds)
	}
	return math.Inf(1)
}

// Wait blocks until the caller may make one call, or ctx ends. It fails when
// ctx ends or NATS cannot be reached; callers treat that like a failed call.
// The time a limiter that paces takes is added to
// pulljobs_ratelimit_wait_seconds_total, with the limiter's name as the api
// label; a hold's, to its caller's (the France Travail client counts its
// waits itself).
func (s *Shared) Wait(ctx context.Context) error {
	if s.local != nil || s.adaptive {
		start := time.Now()
		defer func() { waitSeconds.Add(ctx, time.Since(start).Seconds(), s.api) }()
	}
	r := s.fixed
	if s.state != nil {
		c := s.state.get(ctx)
		if s.adaptive && c.Max <= 0 {
			c, _ = s.curve(ctx) // failed: the start rate, until NATS answers
		}
		if d := c.Hold.Sub(s.now()); d > 0 {
			if err := sleep(ctx, min(d, maxHold)); err != nil {
				return err
			}
		}
		if !s.adaptive {
			return nil // a hold alone
		}
		r = c.rateAt(s.now(), s.bounds)
		rateGauge.Record(ctx, r, s.api)
		// The local limiter follows the rate only when it moved by more
		// than localSlack: each change is a write every waiter contends
		// on, and the windows, not it, hold the rate.
		if old := float64(s.local.Limit()); math.Abs(r-old) > localSlack*old {
			now := time.Now()
			s.local.SetLimitAt(now, rate.Limit(r))
			s.local.SetBurstAt(now, s.burst(r))
		}
	}
	if err := s.local.Wait(ctx); err != nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	for {
		now := s.now()
		win := now.UnixNano() / int64(s.window)
		var allowed int64
		if s.adaptive {
			from := time.Unix(0, win*int64(s.window))
			allowed = s.state.get(ctx).slots(from, from.Add(s.window), s.bounds)
		} else {
			allowed = s.slots(r, win)
		}
		if allowed > 0 {
			n, err := s.take(ctx, win)
			if err != nil {
				return err
			}
			if n <= allowed {
				return nil
			}
		}
		// Full: sleep to the next window, with a little jitter so that the
		// waiters of every replica do not all knock at the same instant.
		next := time.Unix(0, (win+1)*int64(s.window))
		d := next.Sub(now) + time.Duration(rand.Int64N(int64(s.window)/10+1))
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// slots returns how many calls window win holds at a fixed r calls per
// second: the whole calls that fall due in it when they fall due evenly,
// so that a rate that is not a multiple of the windows (15 calls/s in
// windows of 100 ms) is kept on average, and every replica counts the
// same. (An adaptive rate counts its calls from its curve: curve.slots.)
func (s *Shared) slots(r float64, win int64) int64 {
	per := r * s.window.Seconds()
	k := float64(win % slotCycle)
	return int64(math.Floor(per*(k+1)) - math.Floor(per*k))
}

// take increments window win's counter and returns its new value.
func (s *Shared) take(ctx context.Context, win int64) (int64, error) {
	msg := nats.NewMsg(s.subject + strconv.FormatInt(win, 10))
	msg.Header.Set(incrHeader, "1")
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, fmt.Errorf("rate limit: take a slot: %w", err)
	}
	n, err := strconv.ParseInt(ack.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("rate limit: counter value %q: %w", ack.Value, err)
	}
	return n, nil
}

// Observe tells the limiter how one call went: the route it called (a
// bounded set of names, such as "GET /storing/jobs"), the HTTP status of
// the answer (0 for none), the time from sending the request to the answer,
// and the answer's Retry-After (0 for none). Throttled answers (429, 503)
// are counted in pulljobs_ratelimit_throttled_total. An adaptive limiter
// backs off on them and on rising latency; it and a hold obey a
// Retry-After for every replica. Observe writes to NATS only when it
// changes the shared state, at most once per cool-down, and a failure to
// write is given up silently: the next sign of overload tries again.
func (s *Shared) Observe(ctx context.Context, route string, status int, latency, retryAfter time.Duration) {
	a := answer{route: route, status: status, latency: latency, retryAfter: retryAfter}
	if a.throttled() {
		throttledCalls.Add(ctx, 1, s.api)
	}
	if s.state == nil {
		return
	}
	now := s.now()
	hold := a.throttled() && retryAfter > 0
	var v verdict
	if s.adaptive {
		v = s.signals.observe(s.state.cached(), a, now)
		if v.backoff {
			defer s.signals.done()
		}
	}
	if !hold && !v.backoff {
		return
	}
	until := now.Add(min(retryAfter, maxHold))
	_ = s.state.change(ctx, func(c curve) (curve, bool) {
		changed := false
		if v.backoff && now.Sub(c.Epoch) >= v.cooldown {
			c, changed = c.backoff(now, v.calls, v.throttle, s.bounds), true
		}
		if hold && until.After(c.Hold) {
			c.Hold, changed = until, true
		}
		return c, changed
	})
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("rate limit: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

func validName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// The package's instruments, through the global MeterProvider: no-ops
// unless the program installed one.
var (
	meter = otel.Meter("github.com/pulljobs/pulljobs/pkg/ratelimit")
	// waitSeconds adds up the time callers spent in Wait.
	waitSeconds = must(meter.Float64Counter("pulljobs_ratelimit_wait_seconds_total",
		metric.WithUnit("s"), metric.WithDescription("Time spent waiting for a rate limit's permission to call an API, by API.")))
	// rateGauge is the rate a limiter allowed at its last Wait.
	rateGauge = must(meter.Float64Gauge("pulljobs_ratelimit_rate",
		metric.WithDescription("Calls per second a rate limit allows across the fleet, as this process last saw it, by API: the fixed rate, or the adaptive one's current rate.")))
	// throttledCalls counts the answers that said the API was overloaded.
	throttledCalls = must(meter.Int64Counter("pulljobs_ratelimit_throttled_total",
		metric.WithDescription("Calls the API answered 429 or 503, by API.")))
)

func must[T any](instrument T, err error) T {
	if err != nil {
		otel.Handle(err)
	}
	return instrument
}

var apiKey = attribute.Key("api")
