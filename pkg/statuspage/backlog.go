package statuspage

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// BacklogHandler serves GET /backlog: what waits for each stage of the
// fleet, over every run in flight (runstatus.ReadBacklog), as JSON:
//
//	{"formatter": {"pending": 1200, "in_flight": 64, "lag": 1264}, "pusher": {…}}
//
// It is the lag signal the autoscaler reads: KEDA's metrics-api scaler
// scales the formatters on formatter.lag and the pushers on pusher.lag
// (deploy/k8s). Each run has a consumer of its own at each stage, so no
// single consumer holds the fleet's lag. It answers 503 when NATS cannot
// be read: the autoscaler then keeps the replicas it has.
func BacklogHandler(js jetstream.JetStream, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
		defer cancel()
		b, err := runstatus.ReadBacklog(ctx, js)
		if err != nil {
			logger.Warn("backlog: read NATS", "err", err)
			http.Error(w, "cannot read the backlog: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(b)
	})
}
