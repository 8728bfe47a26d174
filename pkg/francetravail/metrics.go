package francetravail

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// limiterWait adds up the time calls spent waiting for the client's rate
// limiter, through the global MeterProvider: a no-op unless the program
// installed one. It is the same metric as the shared HrFlow limiter's
// (pkg/ratelimit), with api="francetravail".
var limiterWait = func() metric.Float64Counter {
	c, err := otel.Meter("github.com/pulljobs/pulljobs/pkg/francetravail").Float64Counter("pulljobs_ratelimit_wait_seconds_total",
		metric.WithUnit("s"), metric.WithDescription("Time spent waiting for a rate limit's permission to call an API, by API."))
	if err != nil {
		otel.Handle(err)
	}
	return c
}()

var limiterWaitAPI = metric.WithAttributeSet(attribute.NewSet(attribute.String("api", "francetravail")))

// waitLimiter waits for the client's rate limiter, then for
// Config.Limiter, and records how long.
func (c *Client) waitLimiter(ctx context.Context) error {
	start := time.Now()
	defer func() { limiterWait.Add(ctx, time.Since(start).Seconds(), limiterWaitAPI) }()
	if err := c.limiter.Wait(ctx); err != nil {
		return err
	}
	if c.cfg.Limiter != nil {
		if err := c.cfg.Limiter.Wait(ctx); err != nil {
			return fmt.Errorf("shared: %w", err)
		}
	}
	return nil
}
