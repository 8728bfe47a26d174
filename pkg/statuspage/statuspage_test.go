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
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/natsembed"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
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

// fleet is a pipeline on an embedded server with both emulators, and the
// page served over HTTP.
type fleet struct {
	t      *testing.T
	nc     *nats.Conn
	js     jetstream.JetStream
	p      *pipeline.Pipeline
	search *francetravail.Client
	offers []francetravail.Offer
	url    string
}

func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	f := &fleet{t: t, offers: francetravailtest.SyntheticOffers(n, 5, francetravailtest.SyntheticOptions{})}
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
	board, err := hrflow.NewClient(hrflow.Config{APISecret: hrflowtest.DefaultAPISecret, APIUser: hrflowtest.DefaultAPIUser, BaseURL: hrflowtest.BaseURL(hrSrv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(board.CloseIdleConnections)
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	if f.nc, err = srv.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.nc.Close)
	if f.js, err = jetstream.New(f.nc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if f.p, err = pipeline.New(ctx, f.nc, pipeline.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.p.Close)
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = f.p.RunFormatter(wctx); done <- struct{}{} }()
	go func() { _ = f.p.RunPusher(wctx, board); done <- struct{}{} }()
	t.Cleanup(func() { stop(); <-done; <-done })
	page := httptest.NewServer(Handler(f.js, Options{Refresh: 500 * time.Millisecond}))
	t.Cleanup(page.Close)
	f.url = page.URL
	return f
}

// run runs one run of profile to its end; its first offer fails with
// reason.
func (f *fleet) run(profile, trigger, reason string) pipeline.Report {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	failing, err := f.offers[0].ID()
	if err != nil {
		f.t.Fatal(err)
	}
	spec := pipeline.RunSpec{BoardKey: hrflowtest.DefaultBoardKey, Sync: true, SyncMaxShare: pipeline.DefaultSyncMaxShare,
		Trigger: trigger, Profile: profile,
		Action: format.Spec{Logics: []format.LogicSpec{{Name: "require_salary", JQ: `if .reference == "` + failing + `" then error("` + strings.ReplaceAll(reason, `"`, `\"`) + `") else . end`}}}}
	run, err := f.p.Fetch(ctx, spec, f.search, pipeline.FetchOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	r, err := f.p.Wait(ctx, run, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// deadTrigger puts a refused trigger on the dead-letter stream, as
// fetcher serve does.
func (f *fleet) deadTrigger(profile, reason string) {
	f.t.Helper()
	m := nats.NewMsg(pipeline.DeadLetterSubjectPrefix + "trigger." + profile)
	m.Header.Set(pipeline.HeaderStage, "trigger")
	m.Header.Set(pipeline.HeaderReason, reason)
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
	r := f.run(`<b>annecy</b>`, pipeline.TriggerRequest, hostile)
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
}
