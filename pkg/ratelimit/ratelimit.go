// Package ratelimit enforces a calls-per-second quota shared by every process
// of a fleet, through a JetStream counter stream: the HrFlow quota belongs to
// the account, not to one pusher, so replicas must draw from one budget.
//
// Time is cut into windows; a call takes a slot by incrementing the window's
// counter (one atomic server-side increment, no compare-and-set race); when
// the window is full the caller sleeps until the next one. A local limiter at
// the same rate keeps one process from hammering the counter while it waits.
package ratelimit

import (
	"context"
	"fmt"
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
	// agree on which window is current.
	minWindow = 100 * time.Millisecond
	// counterRetention drops windows long past.
	counterRetention = time.Minute
	incrHeader       = "Nats-Incr"
)

// Shared is a rate limiter shared by every Shared with the same name on the
// same NATS system. Its zero value is not usable; see New.
type Shared struct {
	js      jetstream.JetStream
	subject string
	window  time.Duration
	perWin  int64
	local   *rate.Limiter
	now     func() time.Time
	waited  metric.MeasurementOption // the api label of the wait metric
}

// New returns a limiter allowing perSecond calls per second in total, across
// processes, for the quota called name (a subject token: letters, digits, -
// and _). It declares the counter stream idempotently.
func New(ctx context.Context, js jetstream.JetStream, name string, perSecond float64) (*Shared, error) {
	if perSecond <= 0 {
		return nil, fmt.Errorf("rate limit %q: %v calls/s: want a positive rate", name, perSecond)
	}
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
	// Choose the window so that it holds at least one call.
	window := time.Duration(float64(time.Second) / perSecond)
	if window < minWindow {
		window = minWindow
	}
	perWin := int64(perSecond * window.Seconds())
	if perWin < 1 {
		perWin = 1
	}
	return &Shared{
		js:      js,
		subject: subjectPrefix + name + ".",
		window:  window,
		perWin:  perWin,
		local:   rate.NewLimiter(rate.Limit(perSecond), int(perWin)),
		now:     time.Now,
		waited:  metric.WithAttributeSet(attribute.NewSet(apiKey.String(name))),
	}, nil
}

// Wait blocks until the caller may make one call, or ctx ends. It fails when
// ctx ends or NATS cannot be reached; callers treat that like a failed call.
// The time it takes is added to pulljobs_ratelimit_wait_seconds_total, with
// the limiter's name as the api label.
func (s *Shared) Wait(ctx context.Context) error {
	start := time.Now()
	defer func() { waitSeconds.Add(ctx, time.Since(start).Seconds(), s.waited) }()
	if err := s.local.Wait(ctx); err != nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	for {
		now := s.now()
		win := now.UnixNano() / int64(s.window)
		msg := nats.NewMsg(s.subject + strconv.FormatInt(win, 10))
		msg.Header.Set(incrHeader, "1")
		ack, err := s.js.PublishMsg(ctx, msg)
		if err != nil {
			return fmt.Errorf("rate limit: take a slot: %w", err)
		}
		n, err := strconv.ParseInt(ack.Value, 10, 64)
		if err != nil {
			return fmt.Errorf("rate limit: counter value %q: %w", ack.Value, err)
		}
		if n <= s.perWin {
			return nil
		}
		// Full: sleep to the next window, with a little jitter so that the
		// waiters of every replica do not all knock at the same instant.
		next := time.Unix(0, (win+1)*int64(s.window))
		d := next.Sub(now) + time.Duration(rand.Int64N(int64(s.window)/10+1))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("rate limit: %w", ctx.Err())
		case <-t.C:
		}
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

// waitSeconds adds up the time callers spent in Wait, through the global
// MeterProvider: a no-op unless the program installed one.
var waitSeconds = func() metric.Float64Counter {
	c, err := otel.Meter("github.com/pulljobs/pulljobs/pkg/ratelimit").Float64Counter("pulljobs_ratelimit_wait_seconds_total",
		metric.WithUnit("s"), metric.WithDescription("Time spent waiting for a rate limit's permission to call an API, by API."))
	if err != nil {
		otel.Handle(err)
	}
	return c
}()

var apiKey = attribute.Key("api")
