package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// benchOffers is the size of one benchmark run.
const benchOffers = 2000

// BenchmarkRun measures a whole run in-process (fetch, format, push, sync
// on an embedded server, emulators over loopback HTTP), in offers/s.
// Compare it with BenchmarkUpsertBaseline, the same board writes without
// the pipeline: their ratio is what NATS, formatting and tracking cost.
//
//	go test -run '^$' -bench 'Run$|UpsertBaseline' -benchtime 3x ./pkg/pipeline
func BenchmarkRun(b *testing.B) {
	offers := synthetic(benchOffers, 42)
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		e := newEnv(b, offers)
		p := e.pipeline(Settings{})
		e.workers(p, e.hrc)
		b.StartTimer()
		start := time.Now()
		r := e.run(p, spec(), nil)
		total += time.Since(start)
		if r.Events.Created != benchOffers {
			b.Fatalf("created %d, want %d", r.Events.Created, benchOffers)
		}
	}
	b.ReportMetric(float64(benchOffers*b.N)/total.Seconds(), "offers/s")
}

// BenchmarkUpsertBaseline writes the same jobs straight into the emulator
// with the pusher's default concurrency: the ceiling of BenchmarkRun.
func BenchmarkUpsertBaseline(b *testing.B) {
	offers := synthetic(benchOffers, 42)
	jobs := make([]hrflow.Job, len(offers))
	for i, o := range offers {
		jobs[i], _ = format.PoleEmploi(o)
	}
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, []francetravail.Offer{})
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for g := range DefaultConcurrency {
			wg.Go(func() {
				for i := g; i < len(jobs); i += DefaultConcurrency {
					if _, err := e.hrc.Upsert(context.Background(), board, jobs[i], hrflow.UpsertOptions{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		total += time.Since(start)
	}
	b.ReportMetric(float64(benchOffers*b.N)/total.Seconds(), "offers/s")
}
