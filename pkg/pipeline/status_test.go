package pipeline_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/natsembed"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
)

// statusFixture is one machine's pipeline with both emulators.
type statusFixture struct {
	js     jetstream.JetStream
	p      *pipeline.Pipeline
	search *francetravail.Client
	board  *hrflow.Client
	offers []francetravail.Offer
}

func newStatusFixture(t *testing.T, n int) *statusFixture {
	t.Helper()
	f := &statusFixture{offers: francetravailtest.SyntheticOffers(n, 3, francetravailtest.SyntheticOptions{})}
	corpus, err := francetravailtest.Offers(f.offers)
	if err != nil {
		t.Fatal(err)
	}
	ft, err := francetravailtest.New(francetravailtest.Config{Corpus: corpus})
	if err != nil {
		t.Fatal(err)
	}
	ftSrv := httptest.NewServer(ft)
	t.Cleanup(ftSrv.Close)
	hr, err := hrflowtest.New(hrflowtest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hrSrv := httptest.NewServer(hr)
	t.Cleanup(hrSrv.Close)
	if f.search, err = francetravail.NewClient(francetravail.Config{ClientID: francetravailtest.DefaultClientID, ClientSecret: francetravailtest.DefaultClientSecret,
		APIBaseURL: francetravailtest.APIBaseURL(ftSrv.URL), TokenURL: francetravailtest.TokenURL(ftSrv.URL), RateLimit: -1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.search.CloseIdleConnections)
	if f.board, err = hrflow.NewClient(hrflow.Config{APISecret: hrflowtest.DefaultAPISecret, APIUser: hrflowtest.DefaultAPIUser, BaseURL: hrflowtest.BaseURL(hrSrv.URL)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.board.CloseIdleConnections)
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if f.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	// Before any process declared anything: no run, and no error.
	if runs, err := pipeline.ListRuns(context.Background(), f.js, 0); err != nil || runs == nil || len(runs) != 0 {
		t.Errorf("ListRuns before any run = %v, %v; want an empty list", runs, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if f.p, err = pipeline.New(ctx, nc, pipeline.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.p.Close)
	return f
}

// workers runs a formatter and a pusher until the returned stop.
func (f *statusFixture) workers() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = f.p.RunFormatter(ctx); done <- struct{}{} }()
	go func() { _ = f.p.RunPusher(ctx, f.board); done <- struct{}{} }()
	return func() { cancel(); <-done; <-done }
}

// TestRunStatus shows a finished run with a failed item, then a run in
// flight, as pulljobs status and the status page read them.
func TestRunStatus(t *testing.T) {
	f := newStatusFixture(t, 12)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	failing, err := f.offers[0].ID()
	if err != nil {
		t.Fatal(err)
	}
	spec := pipeline.RunSpec{BoardKey: hrflowtest.DefaultBoardKey, Sync: true, SyncMaxShare: pipeline.DefaultSyncMaxShare,
		Trigger: pipeline.TriggerRequest, Profile: "annecy",
		Action: format.Spec{Logics: []format.LogicSpec{{Name: "picky", JQ: `if .reference == "` + failing + `" then error("no <thanks>") else . end`}}}}
	stop := f.workers()
	finished, err := f.p.Fetch(ctx, spec, f.search, pipeline.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.p.Wait(ctx, finished, nil); err != nil {
		t.Fatal(err)
	}
	stop()
	if done, err := pipeline.FetchDone(ctx, f.js, finished); err != nil || !done {
		t.Errorf("FetchDone(finished run) = %v, %v", done, err)
	}

	// A dry run that no worker processes: in flight.
	spec.DryRun, spec.Trigger, spec.Profile = true, pipeline.TriggerSchedule, "chambery"
	inFlight, err := f.p.Fetch(ctx, spec, f.search, pipeline.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}

	runs, err := pipeline.ListRuns(ctx, f.js, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].RunID != inFlight || runs[1].RunID != finished {
		t.Fatalf("runs = %+v, want the run in flight, then the finished one", runs)
	}
	fl, fin := runs[0], runs[1]
	if fl.Status != pipeline.StatusRunning || fl.Phase != pipeline.PhaseProcessing || fl.Trigger != pipeline.TriggerSchedule || fl.Profile != "chambery" ||
		!fl.DryRun || fl.Events != nil || fl.Sync != nil || fl.LastSignOfLife == nil {
		t.Errorf("run in flight: %+v", fl)
	}
	if pr := fl.Progress; pr == nil || !pr.Sealed || pr.Expected != 12 || pr.Fetched != 12 || pr.Done != 0 {
		t.Errorf("progress of the run in flight: %+v, want sealed, 12 expected, none done", pr)
	} else if got := pr.String(); got != "0/12 items done (0%)" {
		t.Errorf("progress says %q", got)
	}
	if fin.Status != pipeline.StatusSuccessWithFailures || fin.Trigger != pipeline.TriggerRequest || fin.Profile != "annecy" ||
		fin.Events == nil || fin.Events.Created != 11 || fin.Events.LogicsFailure != 1 || fin.Failed() != 1 ||
		fin.DeadLetterCount != 1 || fin.FinishedAt == nil || fin.Progress != nil {
		t.Errorf("finished run: %+v, events %+v", fin, fin.Events)
	}
	if got := fin.SyncOutcome(); got != "0 archived" {
		t.Errorf("sync outcome %q, want 0 archived (a failed offer's job is kept)", got)
	}

	d, err := pipeline.GetRun(ctx, f.js, finished, 10)
	if err != nil {
		t.Fatal(err)
	}
	if d.Report == nil || len(d.Report.Failures) != 1 || len(d.DeadLetters) != 1 {
		t.Fatalf("detail: report %+v, dead letters %+v", d.Report, d.DeadLetters)
	}
	if l := d.DeadLetters[0]; l.Offer != failing || !strings.Contains(l.Reason, "no <thanks>") || l.Stage == "" || l.At.IsZero() {
		t.Errorf("dead letter %+v, want offer %s with its reason", l, failing)
	}
	for _, bad := range []string{"20261128T180302123Z-00000000", "not a run!"} {
		if _, err := pipeline.GetRun(ctx, f.js, bad, 10); !errors.Is(err, pipeline.ErrUnknownRun) {
			t.Errorf("GetRun(%q) = %v, want ErrUnknownRun", bad, err)
		}
	}
	if done, err := pipeline.FetchDone(ctx, f.js, "20261128T180302123Z-00000000"); err != nil || done {
		t.Errorf("FetchDone(unknown run) = %v, %v; want false", done, err)
	}
	if runs, err := pipeline.ListRuns(ctx, f.js, 1); err != nil || len(runs) != 1 || runs[0].RunID != inFlight {
		t.Errorf("ListRuns(limit 1) = %+v, %v; want the newest run", runs, err)
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		seconds float64
		want    string
	}{{0.42, "0.4s"}, {12.4, "12s"}, {184, "3m04s"}, {7500, "2h05m"}} {
		if got := pipeline.FormatDuration(tc.seconds); got != tc.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tc.seconds, got, tc.want)
		}
	}
}
