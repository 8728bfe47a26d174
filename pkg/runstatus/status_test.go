package runstatus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/service/servicetest"
)

// newStatusFixture is a fleet with a pipeline, on which no run started
// yet.
func newStatusFixture(t *testing.T, n int) (*servicetest.Fleet, jetstream.JetStream, *pipeline.Pipeline) {
	t.Helper()
	f := servicetest.New(t, servicetest.Options{Offers: n, Seed: 3})
	js := f.JetStream()
	// Before any process declared anything: no run, and no error.
	if runs, err := runstatus.ListRuns(context.Background(), js, 0); err != nil || runs == nil || len(runs) != 0 {
		t.Errorf("ListRuns before any run = %v, %v; want an empty list", runs, err)
	}
	return f, js, f.Pipeline(pipeline.Options{})
}

// TestRunStatus shows a finished run with a failed item, then a run in
// flight, as pulljobs status and the status page read them.
func TestRunStatus(t *testing.T) {
	f, js, p := newStatusFixture(t, 12)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	failing, err := f.Offers[0].ID()
	if err != nil {
		t.Fatal(err)
	}
	spec := pipeline.RunSpec{BoardKey: hrflowtest.DefaultBoardKey, Sync: true, SyncMaxShare: pipeline.DefaultSyncMaxShare,
		Trigger: runstatus.TriggerRequest, Profile: "annecy",
		Action: format.Spec{Logics: []format.LogicSpec{{Name: "picky", JQ: `if .reference == "` + failing + `" then error("no <thanks>") else . end`}}}}
	stop := f.Workers(p)
	finished, err := p.Fetch(ctx, spec, f.Search, pipeline.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(ctx, finished, nil); err != nil {
		t.Fatal(err)
	}
	stop()
	if done, err := runstatus.FetchDone(ctx, js, finished); err != nil || !done {
		t.Errorf("FetchDone(finished run) = %v, %v", done, err)
	}

	// A dry run that no worker processes: in flight.
	spec.DryRun, spec.Trigger, spec.Profile = true, runstatus.TriggerSchedule, "chambery"
	inFlight, err := p.Fetch(ctx, spec, f.Search, pipeline.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}

	runs, err := runstatus.ListRuns(ctx, js, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].RunID != inFlight || runs[1].RunID != finished {
		t.Fatalf("runs = %+v, want the run in flight, then the finished one", runs)
	}
	fl, fin := runs[0], runs[1]
	if fl.Status != runstatus.StatusRunning || fl.Phase != runstatus.PhaseProcessing || fl.Trigger != runstatus.TriggerSchedule || fl.Profile != "chambery" ||
		!fl.DryRun || fl.Events != nil || fl.Sync != nil || fl.LastSignOfLife == nil {
		t.Errorf("run in flight: %+v", fl)
	}
	if pr := fl.Progress; pr == nil || !pr.Sealed || pr.Expected != 12 || pr.Fetched != 12 || pr.Done != 0 {
		t.Errorf("progress of the run in flight: %+v, want sealed, 12 expected, none done", pr)
	} else if got := pr.String(); got != "0/12 items done (0%)" {
		t.Errorf("progress says %q", got)
	}
	if fin.Status != runstatus.StatusSuccessWithFailures || fin.Trigger != runstatus.TriggerRequest || fin.Profile != "annecy" ||
		fin.Events == nil || fin.Events.Created != 11 || fin.Events.LogicsFailure != 1 || fin.Failed() != 1 ||
		fin.DeadLetterCount != 1 || fin.FinishedAt == nil || fin.Progress != nil {
		t.Errorf("finished run: %+v, events %+v", fin, fin.Events)
	}
	if got := fin.SyncOutcome(); got != "0 archived" {
		t.Errorf("sync outcome %q, want 0 archived (a failed offer's job is kept)", got)
	}

	d, err := runstatus.GetRun(ctx, js, finished, 10)
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
		if _, err := runstatus.GetRun(ctx, js, bad, 10); !errors.Is(err, runstatus.ErrUnknownRun) {
			t.Errorf("GetRun(%q) = %v, want ErrUnknownRun", bad, err)
		}
	}
	if done, err := runstatus.FetchDone(ctx, js, "20261128T180302123Z-00000000"); err != nil || done {
		t.Errorf("FetchDone(unknown run) = %v, %v; want false", done, err)
	}
	if runs, err := runstatus.ListRuns(ctx, js, 1); err != nil || len(runs) != 1 || runs[0].RunID != inFlight {
		t.Errorf("ListRuns(limit 1) = %+v, %v; want the newest run", runs, err)
	}
}
