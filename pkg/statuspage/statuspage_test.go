package statuspage

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/service/servicetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// net/http keeps idle keep-alive connections of httptest servers.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

// hostile is in a failed item's reason, as an offer or an API could put
// it there: the page must show it, not run it.
const hostile = `<img src=x onerror="document.title='pwned'">`

// fleet is a fleet with its workers running, and the page served over
// HTTP.
type fleet struct {
	*servicetest.Fleet
	t           *testing.T
	js          jetstream.JetStream
	p           *pipeline.Pipeline
	url         string
	stopWorkers func()
}

func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	f := &fleet{Fleet: servicetest.New(t, servicetest.Options{Offers: n, Seed: 5}), t: t}
	f.js = f.JetStream()
	f.p = f.Pipeline(pipeline.Options{})
	f.stopWorkers = f.Workers(f.p)
	page := httptest.NewServer(Handler(f.js, Options{Refresh: 500 * time.Millisecond}))
	t.Cleanup(page.Close)
	f.url = page.URL
	return f
}

// run runs one run of profile to its end; its first offer fails with
// reason.
func (f *fleet) run(profile string, trigger runstatus.Trigger, reason string) runstatus.Report {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	failing, err := f.Offers[0].ID()
	if err != nil {
		f.t.Fatal(err)
	}
	spec := pipeline.RunSpec{BoardKey: hrflowtest.DefaultBoardKey, Sync: true, SyncMaxShare: pipeline.DefaultSyncMaxShare,
		Trigger: trigger, Profile: profile,
		Action: format.Spec{Logics: []format.LogicSpec{{Name: "require_salary", JQ: `if .reference == "` + failing + `" then error("` + strings.ReplaceAll(reason, `"`, `\"`) + `") else . end`}}}}
	run, err := f.p.Fetch(ctx, spec, f.Search, pipeline.FetchOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	r, err := f.p.Wait(ctx, run, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// waitingRuns stops the fleet's workers, then starts a run on each of
// boards: they wait, each for its turn with the other.
func (f *fleet) waitingRuns(boards ...string) []string {
	f.t.Helper()
	f.stopWorkers()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var runs []string
	for _, b := range boards {
		run, err := f.p.Fetch(ctx, pipeline.RunSpec{BoardKey: b, Sync: true, SyncMaxShare: pipeline.DefaultSyncMaxShare}, f.Search, pipeline.FetchOptions{})
		if err != nil {
			f.t.Fatal(err)
		}
		runs = append(runs, run)
	}
	return runs
}

// deadTrigger puts a refused trigger on the dead-letter stream, as
// fetcher serve does.
func (f *fleet) deadTrigger(profile, reason string) {
	f.t.Helper()
	m := nats.NewMsg(runstatus.DeadLetterSubjectPrefix + "trigger." + profile)
	m.Header.Set(runstatus.HeaderStage, "trigger")
	m.Header.Set(runstatus.HeaderReason, reason)
	if _, err := f.js.PublishMsg(context.Background(), m); err != nil {
		f.t.Fatal(err)
	}
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestPage reads the page as a program would: it lists the run with its
// counters and dead letters, escapes what it shows, loads nothing from
// outside, and shows one run on its own.
func TestPage(t *testing.T) {
	f := newFleet(t, 8)
	_, body := get(t, f.url)
	if !strings.Contains(body, "No run yet") {
		t.Error("an empty fleet's page does not say there is no run")
	}
	r := f.run(`<b>annecy</b>`, runstatus.TriggerRequest, hostile)
	f.deadTrigger("nosuch", `unknown profile "nosuch" <script>alert(1)</script>`)

	resp, body := get(t, f.url)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d\n%s", resp.StatusCode, body)
	}
	for _, s := range []string{r.RunID, "7 created", "1 failed", "request", "&lt;b&gt;annecy&lt;/b&gt;",
		"&lt;img src=x onerror=", "unknown profile &#34;nosuch&#34; &lt;script&gt;", "pulljobs.dlq.trigger.nosuch"} {
		if !strings.Contains(body, s) {
			t.Errorf("page does not show %q", s)
		}
	}
	for _, s := range []string{hostile, "<script>alert(1)", "<b>annecy"} {
		if strings.Contains(body, s) {
			t.Errorf("page shows %q unescaped", s)
		}
	}
	for _, s := range []string{"http://", "https://", "//cdn", "src="} {
		if strings.Contains(strings.ReplaceAll(body, "src=x", ""), s) {
			t.Errorf("page refers to %q: it must load nothing from outside", s)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}

	_, part := get(t, f.url+"/?part=main")
	if strings.Contains(part, "<html") || !strings.Contains(part, r.RunID) {
		t.Errorf("?part=main is not the main part: %.200s", part)
	}
	resp, one := get(t, f.url+"/?run="+r.RunID)
	if resp.StatusCode != http.StatusOK || !strings.Contains(one, "Dead letters (1)") || !strings.Contains(one, "7 created") {
		t.Errorf("one run: status %d\n%s", resp.StatusCode, one)
	}
	if resp, _ := get(t, f.url+"/?run=20261128T180302123Z-00000000"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown run: status %d, want 404", resp.StatusCode)
	}

	// The board of the run, synced just now; then two runs that wait, each
	// told why.
	if !strings.Contains(body, `id="board-`+hrflowtest.DefaultBoardKey+`" data-stale="false"`) {
		t.Errorf("the boards do not show %s, fresh", hrflowtest.DefaultBoardKey)
	}
	waiting := f.waitingRuns(otherBoards[0], otherBoards[1])
	_, body = get(t, f.url)
	for _, run := range waiting {
		row := body[strings.Index(body, `id="run-`+run+`"`):]
		row = row[:strings.Index(row, "</tr>")]
		if !strings.Contains(row, "1 other run (8 items) share the fleet; its share 50%") {
			t.Errorf("the waiting run %s does not say why it waits:\n%s", run, row)
		}
	}
}

// otherBoards are boards of the fleet's account other than the default.
var otherBoards = []string{"1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"}
