package ratelimit

import (
	"math"
	"time"
)

// How an adaptive limiter finds the rate an API allows.
//
// The rate follows a curve of time, CUBIC's (RFC 9438, as the AWS SDKs'
// adaptive retry mode uses it), shared by every replica: it starts at Low
// at Epoch, climbs quickly and then ever more slowly to Max, where trouble
// began last time, stays near it a while, and then probes beyond it ever
// faster, up to the ceiling. The curve is a pure function of its state
// (Epoch, Low, Max), so replicas that read the same state allow the same
// rate at the same instant, and growth needs no writes: only a backoff
// changes the state.
//
// A backoff starts a new curve at the instant of the signal. Its Max is the
// rate the API let through: the rate allowed then, times the share of the
// recent calls (answered in the last two seconds, made since the last
// backoff) that were not throttled. Its Low is a
// little under that. After a mild overshoot the new Max is about the rate
// allowed; after a drop of the API's capacity to a quarter, about a quarter
// of it: one backoff finds the new capacity, where halving steps would take
// several, each costing throttled calls. Backoffs are at least a cool-down
// apart, so that the throttled answers of calls made before one do not
// cause another.

// Tuning of the curve. growth is CUBIC's C relative to Max: the probe
// beyond Max adds growth × Max × t³ after t seconds, so it is as cautious
// at 5 calls/s as at 60 (a fixed C would overshoot a small capacity by
// half within two seconds).
const (
	growth = 0.003
	// decrease is CUBIC's β: Low is this share of the new Max.
	decrease = 0.85
	// maxThrottledShare bounds the share of throttled calls a backoff
	// believes: the rate never falls below a tenth of what it was in one
	// step.
	maxThrottledShare = 0.9
	// minShareSample is the number of recent calls under which their
	// throttled share says too little; a backoff then keeps Max where the
	// rate was.
	minShareSample = 4
)

// curve is the shared state of an adaptive limiter: the curve the rate
// follows since the last backoff (Epoch, Low, Max), and the time before
// which no call may be made (Hold, a Retry-After). Its zero value is no
// curve: a limiter without one allows its start rate.
type curve struct {
	Epoch time.Time `json:"epoch"`
	Low   float64   `json:"low,omitempty"`
	Max   float64   `json:"max,omitempty"`
	// Hold is when the last Retry-After ends; the zero time for none.
	Hold time.Time `json:"hold,omitzero"`
	// Backoffs counts the backoffs since the curve was first written.
	Backoffs int64 `json:"backoffs,omitempty"`
}

// bounds are the limits of an adaptive rate: where it starts, how low and
// how high it may go.
type bounds struct {
	start, floor, ceiling float64
}

// rateAt returns the rate the curve allows at t, in calls per second,
// within b's floor and ceiling; b's start rate for a curve not yet written.
func (c curve) rateAt(t time.Time, b bounds) float64 {
	if c.Max <= 0 {
		return b.start
	}
	dt := max(t.Sub(c.Epoch).Seconds(), 0)
	k := math.Cbrt((c.Max - c.Low) / (growth * c.Max))
	r := c.Max + growth*c.Max*math.Pow(dt-k, 3)
	return min(max(r, b.floor), b.ceiling)
}

// slots returns how many calls fall due between from and to at the
// curve's rate: the whole calls its integral since the epoch passes in
// that span. Every replica that reads the same curve counts the same
// calls in the same window, and a rate that changes from window to window
// is kept, not rounded to the windows.
func (c curve) slots(from, to time.Time, b bounds) int64 {
	return int64(math.Floor(c.calls(to, b)) - math.Floor(c.calls(from, b)))
}

// calls returns the integral of the rate from the curve's epoch to t: the
// calls due by then (0 before the epoch). The rate climbs from Low, which
// is never below the floor, so only the ceiling clamps it: from the
// instant tc the curve reaches it.
func (c curve) calls(t time.Time, b bounds) float64 {
	if c.Max <= 0 {
		return b.start * max(t.Sub(time.Unix(0, 0)).Seconds(), 0)
	}
	dt := max(t.Sub(c.Epoch).Seconds(), 0)
	k := math.Cbrt((c.Max - c.Low) / (growth * c.Max))
	tc := max(k+math.Cbrt((b.ceiling-c.Max)/(growth*c.Max)), 0)
	below := min(dt, tc)
	// ∫ Max + growth·Max·(s-K)³ ds from 0 to below.
	n := c.Max*below + growth*c.Max/4*(math.Pow(below-k, 4)-math.Pow(k, 4))
	return n + b.ceiling*max(dt-tc, 0)
}

// backoff returns the curve after a sign of overload at t. throttled of
// the recent calls (made since the curve's epoch) were refused as too many: their
// share, when there are enough of them to tell, says how much of the rate
// the API let through.
func (c curve) backoff(t time.Time, calls, throttled int, b bounds) curve {
	share := 0.0
	if calls >= minShareSample {
		share = min(float64(throttled)/float64(calls), maxThrottledShare)
	}
	through := c.rateAt(t, b) * (1 - share)
	return curve{
		Epoch:    t,
		Max:      max(through, b.floor),
		Low:      max(through*decrease, b.floor),
		Hold:     c.Hold,
		Backoffs: c.Backoffs + 1,
	}
}

// startCurve is the curve of a limiter that starts at rate r at t.
func startCurve(t time.Time, r float64) curve {
	return curve{Epoch: t, Low: r, Max: r}
}
