package hrflow

import (
	"context"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/pulljobs/pulljobs/pkg/retry"
)

// Observer learns from the API's answers, such as ratelimit.Shared's
// adaptive rate (Config.Observer, or a Limiter that is one): after every
// HTTP attempt the client tells it the route ("POST /job/indexing"), the
// status (0 when no answer came), the time from sending the request to
// reading the answer, and the answer's Retry-After (0 for none). Observe
// must not block for long: it runs before the call returns or is tried
// again.
type Observer interface {
	Observe(ctx context.Context, route string, status int, latency, retryAfter time.Duration)
}

// Rater is an Observer or a Limiter that says how many calls per second
// it allows now; a Tally keeps the highest rate its calls were allowed.
type Rater interface {
	Rate() float64
}

// Tally counts what the calls made with a context from WithTally cost:
// their HTTP attempts, those the API throttled (429 or 503), and the
// highest rate the client's limiter allowed them (when it is a Rater). It
// is safe for concurrent use; its zero value is ready.
type Tally struct {
	attempts, throttled atomic.Int64
	rate                atomic.Uint64 // math.Float64bits
}

type tallyKey struct{}

// WithTally returns a context whose calls t counts.
func WithTally(ctx context.Context, t *Tally) context.Context {
	return context.WithValue(ctx, tallyKey{}, t)
}

// Attempts returns the HTTP attempts counted, retries included.
func (t *Tally) Attempts() int64 { return t.attempts.Load() }

// Throttled returns the attempts the API answered 429 or 503.
func (t *Tally) Throttled() int64 { return t.throttled.Load() }

// Rate returns the highest calls per second the limiter allowed the
// attempts; 0 without a Rater.
func (t *Tally) Rate() float64 { return math.Float64frombits(t.rate.Load()) }

func (t *Tally) noteRate(r float64) {
	if math.IsInf(r, 0) || math.IsNaN(r) {
		return
	}
	for {
		old := t.rate.Load()
		if r <= math.Float64frombits(old) || t.rate.CompareAndSwap(old, math.Float64bits(r)) {
			return
		}
	}
}

// throttledStatus reports a status that says the API is overloaded or
// over its quota.
func throttledStatus(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// observe reports one attempt to the limiter and to the context's tally.
// resp is nil when no answer came.
func (c *Client) observe(ctx context.Context, route string, resp *http.Response, latency time.Duration) {
	status := 0
	var retryAfter time.Duration
	if resp != nil {
		status = resp.StatusCode
		if throttledStatus(status) {
			retryAfter = retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
	}
	if c.observer != nil {
		c.observer.Observe(ctx, route, status, latency, retryAfter)
	}
	if t, ok := ctx.Value(tallyKey{}).(*Tally); ok {
		t.attempts.Add(1)
		if throttledStatus(status) {
			t.throttled.Add(1)
		}
		if r, ok := c.observer.(Rater); ok {
			t.noteRate(r.Rate())
		} else if r, ok := c.limiter.(Rater); ok {
			t.noteRate(r.Rate())
		}
	}
}
