package pipeline

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
)

// The pipeline's instruments, through the OpenTelemetry API: a binary that
// installs a MeterProvider (pkg/telemetry) exports them, in Prometheus
// format as pulljobs_items_total and so on; without one they cost nothing.
// Label values are bounded: no run or offer ids.
var (
	meter = otel.Meter("github.com/pulljobs/pulljobs/pkg/pipeline")

	itemsEnded, _ = meter.Int64Counter("pulljobs.items",
		metric.WithDescription("Items that ended in a stage, by stage and outcome (created, updated, unarchived, unchanged, skipped, discarded, failed)"),
		metric.WithUnit("{item}"))
	runsEnded, _ = meter.Int64Counter("pulljobs.runs",
		metric.WithDescription("Runs this process synced, by status and sync outcome (performed, refused, disabled, dry_run)"),
		metric.WithUnit("{run}"))
	archivedJobs, _ = meter.Int64Counter("pulljobs.archived",
		metric.WithDescription("Jobs sync archived"),
		metric.WithUnit("{job}"))
	ackPending, _ = meter.Int64ObservableGauge("pulljobs.consumer.ack_pending",
		metric.WithDescription("Items this worker's stage has delivered and not yet seen acknowledged, over its runs and replicas"),
		metric.WithUnit("{item}"))
	pending, _ = meter.Int64ObservableGauge("pulljobs.consumer.pending",
		metric.WithDescription("Items waiting for this worker's stage, over its runs"),
		metric.WithUnit("{item}"))
)

// observeConsumers reports the in-flight and pending items of a stage's
// consumers (those of every run) when metrics are collected, until the
// returned func is called.
func observeConsumers(c stageConsumers) (unregister func()) {
	attrs := metric.WithAttributes(attribute.String("consumer", c.name))
	reg, err := meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		var inFlight, waiting int64
		infos := c.stream.ListConsumers(ctx)
		for info := range infos.Info() {
			if _, ok := rs.RunOfConsumer(c.name, info.Name); ok {
				inFlight += int64(info.NumAckPending)
				waiting += int64(info.NumPending)
			}
		}
		if err := infos.Err(); err != nil {
			return err
		}
		o.ObserveInt64(ackPending, inFlight, attrs)
		o.ObserveInt64(pending, waiting, attrs)
		return nil
	}, ackPending, pending)
	if err != nil {
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}

var (
	stageKey   = attribute.Key("stage")
	outcomeKey = attribute.Key("outcome")
	statusKey  = attribute.Key("status")
	syncKey    = attribute.Key("sync")
)

// countItem counts an item that ended in stage with outcome.
func countItem(ctx context.Context, stage rs.Stage, outcome string) {
	itemsEnded.Add(ctx, 1, metric.WithAttributes(stageKey.String(string(stage)), outcomeKey.String(outcome)))
}

// countRun counts a run this process synced.
func countRun(ctx context.Context, r rs.Report) {
	outcome := "performed"
	switch {
	case r.Sync.Refused():
		outcome = "refused"
	case r.Sync.Guard == rs.GuardDisabled:
		outcome = "disabled"
	case r.DryRun:
		outcome = "dry_run"
	}
	runsEnded.Add(ctx, 1, metric.WithAttributes(statusKey.String(string(r.Status)), syncKey.String(outcome)))
	if r.Sync.Archived > 0 {
		archivedJobs.Add(ctx, int64(r.Sync.Archived))
	}
}
