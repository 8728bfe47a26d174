package pipeline

import (
	"context"
	"testing"
	"time"

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
	jobs, err := p.l.jobs.Consumer(ctx, PusherConsumer)
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
	checkEvents(t, r.Events, Events{ReadSuccess: offers, Created: offers})
}
