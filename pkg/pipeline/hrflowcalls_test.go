package pipeline

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
)

// rater is a limiter that paces nothing and says a rate.
type rater float64

func (rater) Wait(context.Context) error { return nil }
func (r rater) Rate() float64            { return float64(r) }

// TestReportHrFlowCalls: the report, and the run's status, say the rate
// the HrFlow rate limit allowed the run's writes and the calls HrFlow
// throttled, from the pushers' records.
func TestReportHrFlowCalls(t *testing.T) {
	offers := synthetic(60, 3)
	e := newEnv(t, offers)
	// A capacity well below what 60 jobs written at once ask for.
	if err := e.hr.Faults().Set(emulator.Config{Capacity: 20}); err != nil {
		t.Fatal(err)
	}
	hrSrv := httptest.NewServer(e.hr)
	t.Cleanup(hrSrv.Close)
	board, err := hrflow.NewClient(hrflow.Config{
		APISecret: hrflowtest.DefaultAPISecret, APIUser: hrflowtest.DefaultAPIUser,
		BaseURL: hrflowtest.BaseURL(hrSrv.URL), Retry: fastRetry, Limiter: rater(42),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(board.CloseIdleConnections)
	p := e.pipeline(testSettings)
	e.workers(p, board)
	r := e.run(p, spec(), nil)
	if r.Events.Created != 60 {
		t.Fatalf("events %+v, want 60 created", r.Events)
	}
	throttled := e.hr.Stats().Count(hrflowtest.RouteCreateJob, 429)
	if throttled == 0 {
		t.Fatal("no creation throttled: the test proves nothing")
	}
	h := r.HrFlow
	if h == nil || h.RatePeak != 42 || h.RateLast != 42 || h.Throttled == 0 || int64(h.Throttled) > throttled {
		t.Fatalf("report's hrflow = %+v, want rate 42 at most and at the end, and 1 to %d calls throttled", h, throttled)
	}
	var table strings.Builder
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "rate 42.0 calls/s at most, 42.0 at the end;") {
		t.Errorf("table:\n%s\nwant the rate and the calls throttled", table.String())
	}
	nc, err := e.srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := rs.ListRuns(t.Context(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].HrFlow == nil || *runs[0].HrFlow != *h {
		t.Errorf("status %+v, want the report's hrflow %+v", runs, h)
	}
}
