package servicetest_test

import (
	"context"
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/service/servicetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// net/http keeps idle keep-alive connections of httptest servers.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

// TestOneRun runs one run on a fleet: the fleet and its workers stop with the
// test.
func TestOneRun(t *testing.T) {
	f := servicetest.New(t, servicetest.Options{Offers: 5, Seed: 1})
	p := f.Pipeline(pipeline.Options{})
	f.Workers(p)
	ctx := context.Background()
	run, err := p.Fetch(ctx, pipeline.RunSpec{BoardKey: hrflowtest.DefaultBoardKey, Sync: true, SyncMaxShare: 0.5}, f.Search, pipeline.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Wait(ctx, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(r.Status, " ", r.Events.Created); got != "success 5" {
		t.Errorf("run: %s, want success with 5 created", got)
	}
}
