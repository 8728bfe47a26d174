package retry

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// nameOther is the client label of a Policy without a Name.
const nameOther = "other"

// retries counts the attempts that Do makes after a failure, through the
// global MeterProvider: a no-op unless the program installed one.
var retries = func() metric.Int64Counter {
	c, err := otel.Meter("github.com/pulljobs/pulljobs/pkg/retry").Int64Counter("pulljobs_retries_total",
		metric.WithDescription("Calls tried again after a failure that may pass, by client or operation."))
	if err != nil {
		otel.Handle(err)
	}
	return c
}()

var clientKey = attribute.Key("client")

func (p Policy) countRetry(ctx context.Context) {
	name := p.Name
	if name == "" {
		name = nameOther
	}
	retries.Add(ctx, 1, metric.WithAttributes(clientKey.String(name)))
}
