// Package retry runs calls to remote APIs again when they fail for a reason
// that may pass: network errors, time-outs, 429 and 5xx answers. Both API
// clients of pulljobs share it, so that both retry the same way: exponential
// backoff with jitter (github.com/cenkalti/backoff/v4), a server's Retry-After
// honoured, permanent errors returned at once.
package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Defaults of a zero Policy.
const (
	DefaultInitialInterval = 200 * time.Millisecond
	DefaultMaxInterval     = 10 * time.Second
	DefaultMaxElapsed      = 2 * time.Minute
	DefaultMaxAttempts     = 10
	// jitter spreads the waits of replicas that failed together, so that they
	// do not come back together.
	jitter     = 0.5
	multiplier = 2
)

// Policy says how often and how long a call is tried. The zero value is usable
// and means the defaults above.
type Policy struct {
	// InitialInterval is the wait after the first failure, before jitter.
	InitialInterval time.Duration
	// MaxInterval caps the wait between two attempts (a Retry-After may ask
	// for longer, and is obeyed).
	MaxInterval time.Duration
	// MaxElapsed bounds the time spent retrying one call; negative means no bound.
	MaxElapsed time.Duration
	// MaxAttempts bounds the number of attempts, the first included; negative
	// means no bound.
	MaxAttempts int
	// Name labels the retries made under this policy in the metric
	// pulljobs_retries_total{client}: the client or operation, such as
	// "hrflow". Keep it to a fixed set; empty counts as "other".
	Name string
}

// Retryable is implemented by errors that know whether trying again may help,
// such as the API clients' typed errors.
type Retryable interface {
	Retryable() bool
}

// Delayer is implemented by errors that carry the server's Retry-After.
type Delayer interface {
	RetryAfter() time.Duration
}

// ErrExhausted wraps the last error of a call that was tried as often or as
// long as its Policy allows.
var ErrExhausted = errors.New("retries exhausted")

// Do calls op until it returns nil, returns an error that IsRetryable rejects,
// the policy is exhausted, or ctx ends. It returns nil on success; the
// permanent error as is; the last error wrapped with ErrExhausted and the
// attempt count; or the last error joined with ctx's error when ctx ends while
// waiting.
//
// Between attempts Do waits the backoff interval, or the error's RetryAfter
// when it asks for longer. notify, when not nil, is called before each wait
// with the error and the wait; it must not block.
func Do(ctx context.Context, p Policy, op func(context.Context) error, notify func(err error, wait time.Duration)) error {
	b := p.backOff()
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if !IsRetryable(err) {
			return err
		}
		maxAttempts := p.MaxAttempts
		if maxAttempts == 0 {
			maxAttempts = DefaultMaxAttempts
		}
		wait := b.NextBackOff()
		if wait == backoff.Stop || (maxAttempts > 0 && attempt >= maxAttempts) {
			return fmt.Errorf("%w after %d attempts: %w", ErrExhausted, attempt, err)
		}
		var d Delayer
		if errors.As(err, &d) && d.RetryAfter() > wait {
			wait = d.RetryAfter()
		}
		if notify != nil {
			notify(err, wait)
		}
		p.countRetry(ctx)
		if serr := Sleep(ctx, wait); serr != nil {
			return errors.Join(err, serr)
		}
	}
}

// Sleep waits d, or until ctx ends, whichever comes first; it returns ctx's
// error in the second case. It is the wait between two tries of anything
// that polls or retries.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (p Policy) backOff() *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.InitialInterval,
		RandomizationFactor: jitter,
		Multiplier:          multiplier,
		MaxInterval:         p.MaxInterval,
		MaxElapsedTime:      p.MaxElapsed,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	if b.InitialInterval <= 0 {
		b.InitialInterval = DefaultInitialInterval
	}
	if b.MaxInterval <= 0 {
		b.MaxInterval = DefaultMaxInterval
	}
	switch {
	case p.MaxElapsed == 0:
		b.MaxElapsedTime = DefaultMaxElapsed
	case p.MaxElapsed < 0:
		b.MaxElapsedTime = 0 // backoff's "never stop"
	}
	b.Reset()
	return b
}

// IsRetryable reports whether err may pass if the call is made again: an error
// that implements Retryable says so itself; otherwise network time-outs,
// refused and reset connections, and bodies cut short are retryable, and
// everything else, cancellation included, is not.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var r Retryable
	if errors.As(err, &r) {
		return r.Retryable()
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// A connection that failed while a request was written or its answer
	// read (reset, closed, broken): the transport's own wrapping varies
	// ("readfrom tcp …: write tcp …"), the cause does not. A host that
	// does not exist will not start existing.
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTemporary || dnsErr.IsTimeout
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) || errors.Is(err, net.ErrClosed) {
		return true
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), // a per-call time-out
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, io.EOF):
		return true
	}
	return false
}

// IsRetryableStatus reports whether an HTTP status is worth another attempt:
// 408, 429 and every 5xx but 501 and 505.
func IsRetryableStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests:
		return true
	case http.StatusNotImplemented, http.StatusHTTPVersionNotSupported:
		return false
	}
	return status >= 500 && status <= 599
}

// ParseRetryAfter reads a Retry-After header value, in seconds or as an HTTP
// date relative to now. It returns 0 when the value is empty, malformed or in
// the past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
