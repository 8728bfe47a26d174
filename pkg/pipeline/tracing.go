package pipeline

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracer names the pipeline's spans. Without an OpenTelemetry SDK installed
// by the embedding program, spans are no-ops.
var tracer = otel.Tracer("github.com/pulljobs/pulljobs/pkg/pipeline")

// propagator carries a trace from one stage to the next in message headers,
// whatever global propagator the program set.
var propagator = propagation.TraceContext{}

// headerCarrier adapts nats.Header to OpenTelemetry's TextMapCarrier.
// nats.Header keys are case-sensitive; W3C trace context keys are lowercase.
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c headerCarrier) Set(key, value string) { c[key] = []string{value} }

func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

func inject(ctx context.Context, h nats.Header) { propagator.Inject(ctx, headerCarrier(h)) }

func extract(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return propagator.Extract(ctx, headerCarrier(h))
}

// runContext returns ctx carrying the run's span context, from its spec:
// spans started from it belong to the run's trace.
func runContext(ctx context.Context, spec RunSpec) context.Context {
	if spec.TraceParent == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{"traceparent": spec.TraceParent})
}

// traceParent returns the W3C traceparent of the span in ctx, "" when none
// is recording.
func traceParent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c["traceparent"]
}

// offerSpan starts the root span of one offer's trace, the fetch of its
// path fetch → format → push, linked to the run's span in ctx: a run of a
// million offers is a million small traces, not one huge one.
func offerSpan(ctx context.Context, run, offer string) (context.Context, trace.Span) {
	link := trace.LinkFromContext(ctx)
	return tracer.Start(context.WithoutCancel(ctx), "pulljobs.fetch", trace.WithNewRoot(), trace.WithLinks(link),
		trace.WithAttributes(runAttr.String(run), offerAttr.String(offer)))
}

// span starts a span for one item of a run in a stage.
func span(ctx context.Context, name, run, offer string) (context.Context, trace.Span) {
	return tracer.Start(ctx, name, trace.WithAttributes(runAttr.String(run), offerAttr.String(offer)))
}

var (
	runAttr   = attribute.Key("pulljobs.run_id")
	offerAttr = attribute.Key("pulljobs.offer_id")
	boardAttr = attribute.Key("pulljobs.board_key")
)
