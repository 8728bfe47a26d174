package pipeline

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// benchOffers is the size of one benchmark run.
const benchOffers = 2000

// BenchmarkRun measures a whole run in-process (fetch, format, push, sync
// on an embedded server, emulators over loopback HTTP), in offers/s, and
// the bytes the process allocated per offer (emulators included): the
// garbage that makes the collector run, and each collection costs the
// embedded server its block caches. Compare it with
// BenchmarkUpsertBaseline, the same board writes without the pipeline:
// their ratio is what NATS, formatting and tracking cost.
//
//	go test -run '^$' -bench 'Run$|UpsertBaseline' -benchtime 3x ./pkg/pipeline
func BenchmarkRun(b *testing.B) {
	offers := synthetic(benchOffers, 42)
	var total time.Duration
	var allocated uint64
	var before, after runtime.MemStats
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		e := newEnv(b, offers)
		p := e.pipeline(Settings{})
		e.workers(p, e.hrc)
		b.StartTimer()
		runtime.ReadMemStats(&before)
		start := time.Now()
		r := e.run(p, spec(), nil)
		total += time.Since(start)
		runtime.ReadMemStats(&after)
		allocated += after.TotalAlloc - before.TotalAlloc
		if r.Events.Created != benchOffers {
			b.Fatalf("created %d, want %d", r.Events.Created, benchOffers)
		}
	}
	b.ReportMetric(float64(benchOffers*b.N)/total.Seconds(), "offers/s")
	b.ReportMetric(float64(allocated)/float64(benchOffers*b.N), "B/offer")
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

// BenchmarkCallsPerOffer prints what the board index saves: HrFlow calls
// per offer (the listing included) for a first run, a re-run that changes
// nothing, and a re-run after 5 % of the offers changed upstream, each
// with and without update_content. Each iteration is a fresh board.
//
//	go test -run '^$' -bench CallsPerOffer -benchtime 1x ./pkg/pipeline
func BenchmarkCallsPerOffer(b *testing.B) {
	const n, changed = 2000, 100 // 5 %
	offers := synthetic(n, 43)
	moved := slices.Clone(offers)
	for i := range changed {
		moved[i] = withField(b, offers[i], "description", fmt.Sprintf("Description revue %d", i))
	}
	for _, update := range []bool{false, true} {
		b.Run(fmt.Sprintf("update_content=%v", update), func(b *testing.B) {
			s := spec(func(s *RunSpec) { s.UpdateContent = update })
			var first, same, after float64
			for b.Loop() {
				e := newEnv(b, offers)
				p := e.pipeline(Settings{})
				e.workers(p, e.hrc)
				total := func() (c int64) {
					st := e.hr.Stats()
					for _, route := range st.Routes() {
						c += st.Total(route)
					}
					return c
				}
				calls := func(run func()) float64 {
					before := total()
					run()
					return float64(total()-before) / n
				}
				first = calls(func() { e.run(p, s, nil) })
				same = calls(func() { e.run(p, s, nil) })
				corpus, _ := francetravailtest.Offers(moved)
				e.ft.SetCorpus(corpus)
				after = calls(func() {
					r := e.run(p, s, nil)
					if update && r.Events.Updated != changed {
						b.Errorf("after %d offers changed: %d updated", changed, r.Events.Updated)
					}
				})
			}
			b.ReportMetric(first, "first-calls/offer")
			b.ReportMetric(same, "unchanged-calls/offer")
			b.ReportMetric(after, "5%changed-calls/offer")
		})
	}
}
