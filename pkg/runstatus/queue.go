package runstatus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/store"
)

// StageBacklog is what waits for one stage of the fleet, over every run.
type StageBacklog struct {
	// Pending counts the items not delivered to a worker yet; InFlight
	// those delivered and not acknowledged.
	Pending  int `json:"pending"`
	InFlight int `json:"in_flight"`
	// Lag is Pending plus InFlight: what KEDA scales the stage's workers on.
	Lag int `json:"lag"`
}

// Backlog is what waits for the fleet's stages: the lag signal the
// autoscaler reads (GET /backlog of `fetcher serve`), and what the runs in
// flight wait behind.
type Backlog struct {
	Formatter StageBacklog `json:"formatter"`
	Pusher    StageBacklog `json:"pusher"`
	// Runs is each run's own lag at both stages, by run id.
	Runs map[string]int `json:"-"`
}

// ReadBacklog reads the fleet's backlog from the consumers of every run
// (RunConsumer), which the server counts. Streams not declared yet hold
// nothing.
func ReadBacklog(ctx context.Context, js jetstream.JetStream) (Backlog, error) {
	b := Backlog{Runs: map[string]int{}}
	for _, st := range []struct {
		stream, consumer string
		into             *StageBacklog
	}{{OffersStream, FormatterConsumer, &b.Formatter}, {JobsStream, PusherConsumer, &b.Pusher}} {
		err := store.Retry(ctx, func(ctx context.Context) error {
			*st.into = StageBacklog{}
			s, err := js.Stream(ctx, st.stream)
			if err != nil {
				return err
			}
			infos := s.ListConsumers(ctx)
			for info := range infos.Info() {
				run, ok := RunOfConsumer(st.consumer, info.Name)
				if !ok {
					continue
				}
				lag := int(info.NumPending) + info.NumAckPending
				st.into.Pending += int(info.NumPending)
				st.into.InFlight += info.NumAckPending
				st.into.Lag += lag
				b.Runs[run] += lag
			}
			return infos.Err()
		})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return b, fmt.Errorf("read the backlog of %s: %w", st.stream, err)
		}
	}
	return b, nil
}

// Queue says where a run in flight stands among the runs that share the
// fleet: fair dispatch serves every run with items waiting at once, each
// at its weight, so a run behind a large one waits its turn without
// stalling.
type Queue struct {
	// Waiting counts the run's items waiting for a worker or in a worker's
	// hands, at both stages.
	Waiting int `json:"waiting"`
	// Ahead counts the items of the other runs waiting in the same
	// queues, and Runs those runs: they share the workers with this one.
	Ahead int `json:"ahead"`
	Runs  int `json:"runs"`
	// Weight is the run's weight; Share its share of the workers, and of
	// the HrFlow quota their calls wait for: its weight over the weights of
	// the runs with items waiting, 1 when it is alone.
	Weight float64 `json:"weight"`
	Share  float64 `json:"share"`
	// FleetRate is how many items the fleet ended a second lately, over
	// every run.
	FleetRate float64 `json:"fleet_rate"`
	// EndsIn estimates how long the run's items left take at its share of
	// the fleet's rate; nil when nothing ended lately.
	EndsInSeconds *float64 `json:"ends_in_seconds,omitempty"`
}

// String says why a run waits, in a few words: "2 other runs (18000 items)
// share the fleet; its share 50%, ends in ~3m20s".
func (q Queue) String() string {
	s := "alone in the fleet"
	if q.Runs > 0 {
		s = fmt.Sprintf("%d other run%s (%d items) share the fleet; its share %.0f%%", q.Runs, plural(q.Runs), q.Ahead, 100*q.Share)
	}
	if q.EndsInSeconds != nil {
		s += ", ends in ~" + (time.Duration(*q.EndsInSeconds) * time.Second).Round(time.Second).String()
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// rateWindow is how many of the last records the fleet's rate is measured
// over.
const rateWindow = 1000

// fleetRate returns how many items the fleet ended a second, over the last
// rateWindow records of every run up to now: a fleet that stopped ending
// items slows down in it as time passes.
func fleetRate(ctx context.Context, js jetstream.JetStream, now time.Time) (float64, error) {
	var rate float64
	err := store.Retry(ctx, func(ctx context.Context) error {
		rate = 0
		s, err := js.Stream(ctx, RecordsStream)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		last, first := info.State.LastSeq, info.State.FirstSeq
		if last == 0 || last <= first {
			return nil
		}
		n := min(uint64(rateWindow), last-first)
		m, err := s.GetMsg(ctx, last-n)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil // expired or purged meanwhile: no measure this time
		}
		if err != nil {
			return err
		}
		if d := now.Sub(m.Time).Seconds(); d > 0 {
			rate = float64(n) / d
		}
		return nil
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	return rate, err
}

// queues fills the Queue of each run in flight among runs, from the
// fleet's backlog and rate. weights holds each run's weight.
func queues(runs []RunStatus, weights map[string]float64, b Backlog, rate float64) {
	total := 0.0
	waiting, items := 0, 0
	for run, lag := range b.Runs {
		if lag > 0 {
			total += weightOf(weights, run)
			waiting++
			items += lag
		}
	}
	for i := range runs {
		st := &runs[i]
		if st.Progress == nil {
			continue
		}
		w := weightOf(weights, st.RunID)
		q := &Queue{Waiting: b.Runs[st.RunID], Weight: w, FleetRate: rate}
		q.Ahead, q.Runs, q.Share = items-q.Waiting, waiting, 1
		sum := total
		if q.Waiting > 0 {
			q.Runs--
		} else {
			sum += w
		}
		if sum > 0 {
			q.Share = w / sum
		}
		left := st.Progress.Fetched - st.Progress.Done
		if st.Progress.Sealed {
			left = st.Progress.Expected - st.Progress.Done
		}
		if rate > 0 && q.Share > 0 {
			ends := float64(max(left, 0)) / (rate * q.Share)
			q.EndsInSeconds = &ends
		}
		st.Queue = q
	}
}

func weightOf(weights map[string]float64, run string) float64 {
	if w := weights[run]; w > 0 {
		return w
	}
	return 1
}
