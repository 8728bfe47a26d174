package pipeline

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	rs "github.com/pulljobs/pulljobs/pkg/runstatus"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/retry"
)

// TestFormatterHoldsForPushers runs formatters with no pusher: they must
// stop pulling offers once the pushers' backlog passes its bound, long
// before the run's end, and every offer must still become a job once a
// pusher starts.
func TestFormatterHoldsForPushers(t *testing.T) {
	const offers, bound = 3000, 50
	e := newEnv(t, synthetic(offers, 41))
	s := testSettings
	s.JobsBacklog = bound
	p := e.pipeline(s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	formatters, stopFormatters := context.WithCancel(ctx)
	fdone := make(chan error, 1)
	go func() { fdone <- p.RunFormatter(formatters) }()
	defer func() { stopFormatters(); <-fdone }()
	run, err := p.Fetch(ctx, spec(), e.ftc, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := p.ledger.jobs.Consumer(ctx, rs.RunConsumer(rs.PusherConsumer, run))
	if err != nil {
		t.Fatal(err)
	}
	// Quiet: the backlog no longer moves (the formatters hold).
	var waiting, last uint64
	for quiet := 0; quiet < 5; {
		if err := retry.Sleep(ctx, 200*time.Millisecond); err != nil {
			t.Fatalf("the formatters never went quiet: %d jobs waiting", waiting)
		}
		info, err := jobs.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if waiting = info.NumPending; waiting == last {
			quiet++
		} else {
			quiet, last = 0, waiting
		}
	}
	if waiting <= bound || waiting >= offers/2 {
		t.Fatalf("the formatters held with %d jobs waiting for %d offers, want a little over the bound %d", waiting, offers, bound)
	}

	pushers, stopPushers := context.WithCancel(ctx)
	pdone := make(chan error, 1)
	go func() { pdone <- p.RunPusher(pushers, e.hrc) }()
	defer func() { stopPushers(); <-pdone }()
	r, err := p.Wait(ctx, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, r.Events, rs.Events{ReadSuccess: offers, Created: offers})
}

// TestFetchGoesOnWithoutFormatters fetches far more offers than the
// offers' bound with no formatter running: the fetch must not wait for a
// stage that takes nothing (a fetcher alone, workers scaled up from zero
// later), and every offer must still become a job once workers start.
func TestFetchGoesOnWithoutFormatters(t *testing.T) {
	const offers, bound = 2000, 20
	e := newEnv(t, synthetic(offers, 43))
	s := testSettings
	s.OffersBacklog = bound
	p := e.pipeline(s)
	// Pages slow enough that the fetch outlasts several looks at the
	// backlog.
	if err := e.ft.Faults().Set(emulator.Config{Latency: emulator.Duration(100 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	fetching, stopFetching := context.WithTimeout(ctx, 30*time.Second)
	defer stopFetching()
	run, err := p.Fetch(fetching, spec(), e.ftc, FetchOptions{})
	if err != nil {
		t.Fatalf("fetch with no formatter: %v", err)
	}
	cons, err := p.ledger.offers.Consumer(ctx, rs.RunConsumer(rs.FormatterConsumer, run))
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.NumPending; got != offers {
		t.Fatalf("after the fetch, %d offers wait for the formatters, want all %d", got, offers)
	}

	defer e.workers(p, e.hrc)()
	r, err := p.Wait(ctx, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, r.Events, rs.Events{ReadSuccess: offers, Created: offers})
}

// TestBacklogHoldsWhileTaken drives a fetcher's backlog on a real
// consumer: it must hold only while more than its bound wait and the next
// stage takes them, and let go as soon as that stage stops taking.
func TestBacklogHoldsWhileTaken(t *testing.T) {
	const waiting, bound = 300, 100
	e := newEnv(t, nil)
	p := e.pipeline(testSettings)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range waiting {
		if _, err := p.ledger.js.Publish(ctx, rs.OffersSubjectPrefix+"held", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := p.ledger.formatterConsumers().ensure(ctx, p.ledger.settings, "held")
	if err != nil {
		t.Fatal(err)
	}
	b := &backlog{cons: cons, high: bound, whileTaking: true}
	watching, stopWatching := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { b.watch(watching) })
	defer wg.Wait()
	defer stopWatching()

	// holds waits up to a few looks for b to hold or not, as want says.
	holds := func(want bool, when string) {
		t.Helper()
		deadline := time.Now().Add(50 * backlogPoll)
		for b.holding() != want && time.Now().Before(deadline) {
			time.Sleep(backlogRecheck)
		}
		if got := b.holding(); got != want {
			t.Fatalf("%s: holding %v, want %v", when, got, want)
		}
	}
	time.Sleep(3 * backlogPoll)
	holds(false, "with no one taking the offers")

	taking, stopTaking := context.WithCancel(ctx)
	var tg sync.WaitGroup
	tg.Go(func() {
		for taking.Err() == nil {
			m, err := cons.Next(jetstream.FetchMaxWait(time.Second))
			if err != nil {
				continue
			}
			_ = m.Ack()
			_ = retry.Sleep(taking, 10*time.Millisecond)
		}
	})
	holds(true, "with a formatter taking them")
	stopTaking()
	tg.Wait()
	holds(false, "once the formatter stopped")
}
