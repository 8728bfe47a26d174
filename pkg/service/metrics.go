package service

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// The service's instruments, through the OpenTelemetry API (see
// pkg/pipeline's): `fetcher serve` runs all the time, so it is the one to
// tell how old each board's last successful sync is. Board keys are a
// bounded set; run ids stay out of labels.
var (
	meter = otel.Meter("github.com/pulljobs/pulljobs/pkg/service")

	boardLastSync, _ = meter.Float64ObservableGauge("pulljobs.board.last_sync_time",
		metric.WithDescription("When each board's last successful sync ended (Unix time): France Travail's licence asks for a refresh at least every 24 hours; deploy/ alerts past that"),
		metric.WithUnit("s"))

	boardKey = attribute.Key("board_key")
)

// observeBoards reports each board's last successful sync when metrics are
// collected, read from NATS (runstatus.ListBoards), until the returned
// func is called. Any replica reports the same values.
func (s *Service) observeBoards() (unregister func()) {
	reg, err := meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		boards, err := runstatus.ListBoards(ctx, s.js)
		if err != nil {
			return err
		}
		for _, b := range boards {
			if b.LastSyncAt != nil {
				o.ObserveFloat64(boardLastSync, float64(b.LastSyncAt.UnixNano())/1e9, metric.WithAttributes(boardKey.String(b.BoardKey)))
			}
		}
		return nil
	}, boardLastSync)
	if err != nil {
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}
