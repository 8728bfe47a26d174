package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/natsembed"
	"github.com/pulljobs/pulljobs/pkg/natsembed/natstest"
	"github.com/pulljobs/pulljobs/pkg/retry"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// net/http keeps idle keep-alive connections of httptest servers.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

const board = hrflowtest.DefaultBoardKey

// testSettings are short enough for tests to see redeliveries and takeovers.
var testSettings = Settings{
	AckWait:      3 * time.Second,
	LeaseTTL:     3 * time.Second,
	MaxDeliver:   3,
	DrainTimeout: 5 * time.Second,
	StallAfter:   time.Minute,
	Concurrency:  8,
}

var fastRetry = retry.Policy{InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond, MaxAttempts: 4}

// env is one machine's worth of pulljobs: an embedded NATS server, both
// emulators, the two clients, and a Pipeline.
type env struct {
	t   testing.TB
	ft  *francetravailtest.Emulator
	hr  *hrflowtest.Emulator
	ftc *francetravail.Client
	hrc *hrflow.Client
	srv *natsembed.Server
}

func logger(t testing.TB) *slog.Logger {
	if testing.Verbose() && os.Getenv("PULLJOBS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newEnv(t testing.TB, offers []francetravail.Offer) *env {
	t.Helper()
	e := &env{t: t}
	corpus, err := francetravailtest.Offers(offers)
	if err != nil {
		t.Fatal(err)
	}
	e.ft, err = francetravailtest.New(francetravailtest.Config{Corpus: corpus})
	if err != nil {
		t.Fatal(err)
	}
	ftSrv := httptest.NewServer(e.ft)
	t.Cleanup(ftSrv.Close)
	e.hr, err = hrflowtest.New(hrflowtest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hrSrv := httptest.NewServer(e.hr)
	t.Cleanup(hrSrv.Close)
	e.ftc, err = francetravail.NewClient(francetravail.Config{
		ClientID: francetravailtest.DefaultClientID, ClientSecret: francetravailtest.DefaultClientSecret,
		APIBaseURL: francetravailtest.APIBaseURL(ftSrv.URL), TokenURL: francetravailtest.TokenURL(ftSrv.URL),
		RateLimit: -1, Retry: fastRetry,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.ftc.CloseIdleConnections)
	e.hrc, err = hrflow.NewClient(hrflow.Config{
		APISecret: hrflowtest.DefaultAPISecret, APIUser: hrflowtest.DefaultAPIUser,
		BaseURL: hrflowtest.BaseURL(hrSrv.URL), Retry: fastRetry,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.hrc.CloseIdleConnections)
	e.srv = natstest.Server(t)
	return e
}

// pipeline connects a new process's handle.
func (e *env) pipeline(s Settings) *Pipeline {
	e.t.Helper()
	nc, err := e.srv.Connect()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Workers on connections of their own, as in the one-machine product.
	p, err := New(ctx, nc, Options{Settings: s, Logger: logger(e.t), Dial: func() (*nats.Conn, error) { return e.srv.Connect() }})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(p.Close)
	return p
}

// workers runs a formatter and a pusher on p until the returned stop is
// called (or the test ends).
func (e *env) workers(p *Pipeline, board Board) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := p.RunFormatter(ctx); err != nil {
			e.t.Errorf("formatter: %v", err)
		}
	})
	wg.Go(func() {
		if err := p.RunPusher(ctx, board); err != nil {
			e.t.Errorf("pusher: %v", err)
		}
	})
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	e.t.Cleanup(stop)
	return stop
}

func spec(mod ...func(*RunSpec)) RunSpec {
	s := RunSpec{BoardKey: board, Sync: true, SyncMaxShare: DefaultSyncMaxShare, Action: format.Spec{Format: format.FormatSpec{Name: "pole_emploi"}}}
	for _, m := range mod {
		m(&s)
	}
	return s
}

// run fetches a run and waits for its report.
func (e *env) run(p *Pipeline, s RunSpec, src Searcher) rs.Report {
	e.t.Helper()
	return e.runWith(p, s, src, FetchOptions{})
}

func (e *env) runWith(p *Pipeline, s RunSpec, src Searcher, o FetchOptions) rs.Report {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if src == nil {
		src = e.ftc
	}
	id, err := p.Fetch(ctx, s, src, o)
	if err != nil {
		e.t.Fatalf("fetch: %v", err)
	}
	r, err := p.Wait(ctx, id, nil)
	if err != nil {
		e.t.Fatalf("wait for run %s: %v", id, err)
	}
	return r
}

// boardState returns the references on the board, live and archived.
func (e *env) boardState() (live, archived []string) {
	for _, j := range e.hr.Jobs(board) {
		if j.Archived() {
			archived = append(archived, j.Reference())
		} else {
			live = append(live, j.Reference())
		}
	}
	sort.Strings(live)
	sort.Strings(archived)
	return live, archived
}

func (e *env) creations() int64 { return e.hr.Stats().Count("POST /job/indexing", 201) }

func ids(t *testing.T, offers []francetravail.Offer) []string {
	t.Helper()
	out := make([]string, len(offers))
	for i, o := range offers {
		id, err := o.ID()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = id
	}
	sort.Strings(out)
	return out
}

func synthetic(n int, seed uint64) []francetravail.Offer {
	return francetravailtest.SyntheticOffers(n, seed, francetravailtest.SyntheticOptions{Departements: []string{"74"}})
}

func checkEvents(t *testing.T, got rs.Events, want rs.Events) {
	t.Helper()
	if got != want {
		t.Errorf("events:\n got  %+v\n want %+v", got, want)
	}
}

// TestRunLifecycle is the story of a board over three runs: the first
// creates every job; then offers vanish and new ones appear, and the second
// run creates, updates and archives; then vanished offers come back, and the
// third run unarchives them.
func TestRunLifecycle(t *testing.T) {
	all := synthetic(260, 1)
	first, vanished, fresh := all[:200], all[180:200], all[200:230]
	back := all[180:190]
	e := newEnv(t, first)
	p := e.pipeline(testSettings)
	e.workers(p, e.hrc)

	r := e.run(p, spec(), nil)
	if r.Status != rs.StatusSuccess || !r.Sync.Performed || r.Sync.Archived != 0 {
		t.Fatalf("first run: %+v", r)
	}
	checkEvents(t, r.Events, rs.Events{ReadSuccess: 200, Created: 200})
	if live, _ := e.boardState(); !slices.Equal(live, ids(t, first)) {
		t.Fatalf("board after the first run: %d live jobs, want the %d offers", len(live), len(first))
	}

	// Offers 180-199 vanish; 200-229 appear.
	second := append(append([]francetravail.Offer{}, all[:180]...), fresh...)
	corpus, _ := francetravailtest.Offers(second)
	e.ft.SetCorpus(corpus)
	r = e.run(p, spec(func(s *RunSpec) { s.UpdateContent = true }), nil)
	// The 180 jobs the first run wrote are as it wrote them: no call.
	checkEvents(t, r.Events, rs.Events{ReadSuccess: 210, Created: 30, Unchanged: 180, Archived: 20})
	if r.Status != rs.StatusSuccess || !r.Sync.Performed || r.Sync.Archived != 20 {
		t.Fatalf("second run: %+v", r)
	}
	live, archived := e.boardState()
	if !slices.Equal(live, ids(t, second)) || !slices.Equal(archived, ids(t, vanished)) {
		t.Fatalf("board after the second run: %d live, %d archived; want %d and %d", len(live), len(archived), len(second), len(vanished))
	}

	// Ten vanished offers come back.
	third := append(append([]francetravail.Offer{}, second...), back...)
	corpus, _ = francetravailtest.Offers(third)
	e.ft.SetCorpus(corpus)
	r = e.run(p, spec(), nil)
	checkEvents(t, r.Events, rs.Events{ReadSuccess: 220, Unarchived: 10, Skipped: 210})
	live, _ = e.boardState()
	if !slices.Equal(live, ids(t, third)) {
		t.Fatalf("board after the third run: %d live, want %d", len(live), len(third))
	}
	if got := e.creations(); got != 230 {
		t.Errorf("job creations = %d, want 230 (each distinct offer once)", got)
	}
}

// fakeSearch is a France Travail search that ends as told: after yielding
// its offers, it fails with err or reports a truncated result.
type fakeSearch struct {
	offers    []francetravail.Offer
	err       error
	truncated bool
}

func (f *fakeSearch) Search(ctx context.Context, _ francetravail.Query, yield func(francetravail.Offer) error) (francetravail.Summary, error) {
	s := francetravail.Summary{Total: len(f.offers), Truncated: f.truncated}
	for _, o := range f.offers {
		if err := yield(o); err != nil {
			return s, err
		}
		s.Fetched++
	}
	if f.truncated {
		s.Unreached = 1234
	}
	return s, f.err
}

// TestSyncGuards checks that each guard refuses sync and archives nothing.
func TestSyncGuards(t *testing.T) {
	offers := synthetic(40, 2)
	tests := []struct {
		name       string
		src        *fakeSearch
		mod        func(*RunSpec)
		wantStatus rs.Status
		wantReason string
		guard      rs.Guard
		refused    string // in Sync.RefusedReason
	}{
		{"read failure", &fakeSearch{offers: offers[:10], err: errors.New("france travail: 503 after 10 attempts")}, nil,
			rs.StatusSuccessWithFailures, rs.ReasonSyncRefused, rs.GuardRead, "the fetch failed"},
		{"read failure before anything", &fakeSearch{err: errors.New("france travail: invalid_client")}, nil,
			rs.StatusFatal, "read_failure", rs.GuardRead, "the fetch failed"},
		{"truncated", &fakeSearch{offers: offers[:10], truncated: true}, nil,
			rs.StatusSuccessWithFailures, rs.ReasonSyncRefused, rs.GuardTruncated, "truncated"},
		{"everything discarded", &fakeSearch{offers: offers[:10]}, func(s *RunSpec) {
			s.Action.Logics = []format.LogicSpec{{Name: "none", JQ: "false"}}
		}, rs.StatusSuccessWithFailures, rs.ReasonSyncRefused, rs.GuardNoJob, "no job of this run"},
		{"too large a share", &fakeSearch{offers: offers[:2]}, nil, rs.StatusSuccessWithFailures, rs.ReasonSyncRefused, rs.GuardMaxShare, "more than the 50% allowed"},
		{"sync off", &fakeSearch{offers: offers[:10]}, func(s *RunSpec) { s.Sync = false }, rs.StatusSuccess, "", rs.GuardDisabled, "sync disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			// A board with 20 live jobs that no run below contains.
			for _, o := range offers[20:] {
				job, _ := format.PoleEmploi(o)
				if _, err := e.hr.SeedJob(board, job, false); err != nil {
					t.Fatal(err)
				}
			}
			p := e.pipeline(testSettings)
			e.workers(p, e.hrc)
			s := spec()
			if tt.mod != nil {
				tt.mod(&s)
			}
			r := e.run(p, s, tt.src)
			if r.Status != tt.wantStatus || r.Reason != tt.wantReason {
				t.Errorf("status = %s (%s), want %s (%s)", r.Status, r.Reason, tt.wantStatus, tt.wantReason)
			}
			if r.Sync.Performed || r.Sync.Archived != 0 || r.Sync.Guard != tt.guard {
				t.Errorf("sync = %+v, want it refused by the %s guard", r.Sync, tt.guard)
			}
			if !strings.Contains(r.Sync.RefusedReason, tt.refused) {
				t.Errorf("refused reason = %q, want it to say %q", r.Sync.RefusedReason, tt.refused)
			}
			if _, archived := e.boardState(); len(archived) != 0 {
				t.Errorf("%d jobs archived, want none", len(archived))
			}
			if got := e.hr.Stats().Total("PATCH /job/indexing/archive"); got != 0 {
				t.Errorf("%d archive calls, want none", got)
			}
		})
	}
}

// TestForceSync checks force_sync lifts the share guard, and only it.
func TestForceSync(t *testing.T) {
	offers := synthetic(30, 3)
	e := newEnv(t, offers[:5])
	for _, o := range offers[5:] {
		job, _ := format.PoleEmploi(o)
		if _, err := e.hr.SeedJob(board, job, false); err != nil {
			t.Fatal(err)
		}
	}
	p := e.pipeline(testSettings)
	e.workers(p, e.hrc)
	r := e.run(p, spec(func(s *RunSpec) { s.ForceSync = true }), nil)
	if !r.Sync.Performed || r.Sync.Archived != 25 {
		t.Fatalf("sync = %+v, want 25 archived", r.Sync)
	}
	if live, _ := e.boardState(); !slices.Equal(live, ids(t, offers[:5])) {
		t.Errorf("live = %v, want the 5 offers of the run", live)
	}
}

// TestDryRun checks a dry run plans and writes nothing.
func TestDryRun(t *testing.T) {
	offers := synthetic(30, 4)
	e := newEnv(t, offers[:20])
	for _, o := range offers[15:] { // 5 in the run, 10 stale
		job, _ := format.PoleEmploi(o)
		if _, err := e.hr.SeedJob(board, job, false); err != nil {
			t.Fatal(err)
		}
	}
	p := e.pipeline(testSettings)
	e.workers(p, e.hrc)
	r := e.run(p, spec(func(s *RunSpec) { s.DryRun = true }), nil)
	if !r.DryRun || r.Sync.Performed || r.Sync.WouldArchive != 10 {
		t.Errorf("report = %+v, want a dry run that would archive 10", r)
	}
	checkEvents(t, r.Events, rs.Events{ReadSuccess: 20, Created: 15, Skipped: 5})
	st := e.hr.Stats()
	for _, route := range st.Routes() {
		if route != "GET /storing/jobs" {
			t.Errorf("dry run called %s %d times, want only the board's listing (no read per offer)", route, st.Total(route))
		}
	}
}

// TestFailuresAreRecorded checks format, logics and write failures each end
// their item, are counted, reach the dead-letter stream, and never get their
// job archived.
func TestFailuresAreRecorded(t *testing.T) {
	offers := synthetic(12, 5)
	noID := francetravail.Offer(`{"intitule":"Sans identifiant"}`)
	e := newEnv(t, nil)
	// Offer 0 is on the board already: failing to write it must not archive it.
	job0, _ := format.PoleEmploi(offers[0])
	if _, err := e.hr.SeedJob(board, job0, false); err != nil {
		t.Fatal(err)
	}
	p := e.pipeline(testSettings)
	e.workers(p, e.hrc)
	failing := map[string]bool{}
	for _, id := range ids(t, offers[:3]) {
		failing[id] = true
	}
	ids3 := ids(t, offers[:3])
	s := spec(func(s *RunSpec) {
		s.UpdateContent = true
		// Jobs of offers[:3] lose their name: HrFlow refuses them (a 4xx).
		s.Action.Logics = []format.LogicSpec{
			{Name: "boom", JQ: fmt.Sprintf(`if .reference == %q then error("boom") else . end`, ids(t, offers[3:4])[0])},
			{Name: "nameless", JQ: fmt.Sprintf(`if (.reference | IN(%q, %q, %q)) then .name = null else . end`, ids3[0], ids3[1], ids3[2])},
		}
	})
	src := &fakeSearch{offers: append(append([]francetravail.Offer{}, offers...), noID)}
	r := e.run(p, s, src)
	checkEvents(t, r.Events, rs.Events{ReadSuccess: 13, FormatFailure: 1, LogicsFailure: 1, WriteFailure: 3, Created: 8})
	if r.Status != rs.StatusSuccessWithFailures {
		t.Errorf("status = %s, want %s", r.Status, rs.StatusSuccessWithFailures)
	}
	if len(r.Failures) != 5 {
		t.Errorf("failures listed = %d, want 5: %+v", len(r.Failures), r.Failures)
	}
	if live, archived := e.boardState(); len(archived) != 0 || len(live) != 9 {
		t.Errorf("board: %d live, %d archived; want 9 live (8 created + the failed one kept), none archived", len(live), len(archived))
	}
	if got := dlqCount(t, p, r.RunID); got != 5 {
		t.Errorf("dead-letter messages = %d, want 5", got)
	}
}

func dlqCount(t *testing.T, p *Pipeline, run string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := p.js.Stream(ctx, rs.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(rs.DeadLetterSubjectPrefix+run+".>"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

// TestWorkersRestartMidRun stops the workers in the middle of a run, as a
// deploy would, and starts new ones: the run completes with every job
// created exactly once.
func TestWorkersRestartMidRun(t *testing.T) {
	offers := synthetic(300, 6)
	e := newEnv(t, offers)
	p := e.pipeline(testSettings)
	stop := e.workers(p, e.hrc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id, err := p.Fetch(ctx, spec(), e.ftc, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 30*time.Second, "50 jobs created", func() bool { return e.creations() >= 50 })
	stop()
	p2 := e.pipeline(testSettings)
	e.workers(p2, e.hrc)
	r, err := p2.Wait(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, r.Events, rs.Events{ReadSuccess: 300, Created: 300})
	if got := e.creations(); got != 300 {
		t.Errorf("creations = %d, want 300", got)
	}
}

// TestFetchResumes interrupts a fetch, then fetches again: the same run
// resumes, publishes nothing twice, and completes.
func TestFetchResumes(t *testing.T) {
	offers := synthetic(400, 7)
	e := newEnv(t, offers)
	p := e.pipeline(testSettings)
	ctx, cancel := context.WithCancel(context.Background())
	var interrupted string
	stopAt := 150
	_, err := p.Fetch(ctx, spec(), e.ftc, FetchOptions{OnFetched: func(n int) {
		if n == stopAt {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted fetch: err = %v, want context.Canceled", err)
	}
	// Which run holds the board? The interrupted one.
	var held Lease
	if _, _, err := store.Get(context.Background(), p.ledger.leases, board, &held); err != nil {
		t.Fatal(err)
	}
	interrupted = held.Run
	e.workers(p, e.hrc)
	// The fetcher is gone: once the workers are done with what it published,
	// its lease goes stale, and the new fetch resumes the run.
	r := e.runWith(p, spec(), nil, FetchOptions{WaitBoard: 30 * time.Second})
	if r.RunID != interrupted {
		t.Errorf("run = %s, want the interrupted run %s resumed", r.RunID, interrupted)
	}
	checkEvents(t, r.Events, rs.Events{ReadSuccess: 400, Created: 400})
	if got := e.creations(); got != 400 {
		t.Errorf("creations = %d, want 400", got)
	}
}

// TestBoardBusy checks a second run for a busy board is refused, clearly.
func TestBoardBusy(t *testing.T) {
	offers := synthetic(50, 8)
	e := newEnv(t, offers)
	p := e.pipeline(testSettings)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// No workers: the first run stays open.
	first, err := p.Fetch(ctx, spec(), e.ftc, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Fetch(ctx, spec(func(s *RunSpec) { s.UpdateContent = true }), e.ftc, FetchOptions{})
	var busy *BusyError
	if !errors.As(err, &busy) || !errors.Is(err, ErrBoardBusy) || busy.Lease.Run != first {
		t.Fatalf("second fetch: err = %v, want a BusyError naming run %s", err, first)
	}
	e.workers(p, e.hrc)
	if _, err := p.Wait(ctx, first, nil); err != nil {
		t.Fatal(err)
	}
	// Once the first run is done, the board is free.
	if _, err := p.Fetch(ctx, spec(), e.ftc, FetchOptions{}); err != nil {
		t.Errorf("fetch after the first run finished: %v", err)
	}
}

// TestReplay formats a stored run again without calling France Travail.
func TestReplay(t *testing.T) {
	offers := synthetic(40, 9)
	e := newEnv(t, offers)
	p := e.pipeline(testSettings)
	e.workers(p, e.hrc)
	first := e.run(p, spec(), nil)
	searches := e.ft.Stats().Total("GET /offres/search")
	r := e.run(p, spec(func(s *RunSpec) {
		s.ReplayOf = first.RunID
		s.UpdateContent = true
		s.Action.Format = format.FormatSpec{Name: "rich"}
	}), nil)
	checkEvents(t, r.Events, rs.Events{ReadSuccess: 40, Updated: 40})
	if got := e.ft.Stats().Total("GET /offres/search"); got != searches {
		t.Errorf("replay searched France Travail %d times, want 0", got-searches)
	}
	if r.Fetch == nil || r.Fetch.ReplayOf != first.RunID {
		t.Errorf("report fetch = %+v, want replay_of %s", r.Fetch, first.RunID)
	}
}

// TestRunIDs covers the ids everything is filed under.
func TestRunIDs(t *testing.T) {
	id := NewRunID(time.Date(2026, 11, 28, 18, 3, 2, 123e6, time.UTC))
	if !rs.ValidRunID(id) || id[:19] != "20261128T180302123Z" {
		t.Errorf("NewRunID = %q", id)
	}
}

// TestSealedRunResumes stops every worker of a sealed run, then starts the
// run again in a process that owns the server: the run resumes where it
// was instead of starting over.
func TestSealedRunResumes(t *testing.T) {
	offers := synthetic(200, 10)
	e := newEnv(t, offers)
	p := e.pipeline(testSettings)
	stop := e.workers(p, e.hrc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first, err := p.Fetch(ctx, spec(), e.ftc, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 30*time.Second, "20 jobs created", func() bool { return e.creations() >= 20 })
	stop()

	nc, err := e.srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	p2, err := New(ctx, nc, Options{Settings: testSettings, Logger: logger(t), Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	searches := e.ft.Stats().Total("GET /offres/search")
	e.workers(p2, e.hrc)
	r := e.run(p2, spec(), nil)
	if r.RunID != first {
		t.Errorf("run = %s, want %s resumed", r.RunID, first)
	}
	checkEvents(t, r.Events, rs.Events{ReadSuccess: 200, Created: 200})
	if got := e.ft.Stats().Total("GET /offres/search"); got != searches {
		t.Errorf("the resumed run searched again (%d calls); its fetch was complete", got-searches)
	}
	if got := e.creations(); got != 200 {
		t.Errorf("creations = %d, want 200", got)
	}
}

// TestMaxDeliveriesAdvisory plays a job whose every delivery died with its
// worker (fetched, never acknowledged): the server's max-deliveries
// advisory must still end it as failed, so that its run can complete.
func TestMaxDeliveriesAdvisory(t *testing.T) {
	e := newEnv(t, nil)
	s := testSettings
	s.AckWait, s.MaxDeliver, s.LeaseTTL = time.Second, 2, time.Second
	p := e.pipeline(s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := NewRunID(time.Now())
	sp := spec(func(r *RunSpec) { r.ID = run })
	if _, err := store.Create(ctx, p.ledger.runs, rs.SpecKey(run), sp); err != nil {
		t.Fatal(err)
	}
	// The advisory listener of a pusher process, without its consume loop.
	en := &ender{ledger: p.ledger, stage: rs.PusherStage, kind: rs.WriteFailure, carry: p.carrier, logger: p.logger}
	sub, err := watchMaxDeliveries(ctx, p.nc, p.ledger.jobs, rs.JobsStream, rs.PusherConsumer, en, p.logger)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	m := nats.NewMsg(rs.JobsSubjectPrefix + run)
	m.Header.Set(rs.HeaderOfferID, "123ABCD")
	m.Data = []byte(`{"reference":"123ABCD","name":"x"}`)
	if _, err := p.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	cons, err := p.ledger.pusherConsumers().ensure(ctx, p.ledger.settings, run)
	if err != nil {
		t.Fatal(err)
	}
	for delivery := 1; delivery <= s.MaxDeliver; delivery++ {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for range batch.Messages() {
			got++ // and die: no ack
		}
		if got != 1 {
			t.Fatalf("delivery %d: got %d messages, want 1", delivery, got)
		}
	}
	// The server notices the exhausted deliveries when a worker pulls again,
	// as the surviving workers of a fleet do all the time.
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
		t.Fatal("a message delivered past max_deliver")
	}
	var rec rs.Record
	if err := p.ledger.readRecords(ctx, run, 1, func(r rs.Record) error { rec = r; return nil }); err != nil {
		t.Fatalf("no final record after the max-deliveries advisory: %v", err)
	}
	if rec.State != rs.Failed || rec.Failure != rs.WriteFailure || !strings.Contains(rec.Reason, "2 deliveries") {
		t.Errorf("record = %+v, want a write failure saying no worker acknowledged it", rec)
	}
	if got := dlqCount(t, p, run); got != 1 {
		t.Errorf("dead-letter messages = %d, want 1", got)
	}
}

// TestHrFlowDownForGood makes every HrFlow call fail: each job is retried
// by the client, then redelivered, and ends failed on its last delivery.
// The run still completes, fatal, with nothing archived.
func TestHrFlowDownForGood(t *testing.T) {
	offers := synthetic(3, 11)
	e := newEnv(t, offers)
	if err := e.hr.Faults().Set(emulator.Config{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	s := testSettings
	s.MaxDeliver = 2
	p := e.pipeline(s)
	e.workers(p, e.hrc)
	r := e.run(p, spec(), nil)
	if r.Status != rs.StatusFatal || r.Reason != "write_failure" {
		t.Errorf("status = %s (%s), want fatal (write_failure)", r.Status, r.Reason)
	}
	checkEvents(t, r.Events, rs.Events{ReadSuccess: 3, WriteFailure: 3})
	if r.Sync.Performed || r.Sync.Guard != rs.GuardNoJob {
		t.Errorf("sync = %+v, want refused by the %s guard", r.Sync, rs.GuardNoJob)
	}
	for _, f := range r.Failures {
		if !strings.Contains(f.Reason, "gave up after 2 deliveries") {
			t.Errorf("failure reason %q, want it to say the deliveries were exhausted", f.Reason)
		}
	}
	if got := dlqCount(t, p, r.RunID); got != 3 {
		t.Errorf("dead-letter messages = %d, want 3", got)
	}
}

// TestWatchdogReportsStall seals a run that nothing formats: the tracker
// must report it stalled, to the log and to whoever waits for it.
func TestWatchdogReportsStall(t *testing.T) {
	offers := synthetic(5, 12)
	e := newEnv(t, offers)
	s := testSettings
	s.StallAfter = time.Second
	p := e.pipeline(s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events := make(chan *nats.Msg, 8)
	sub, err := p.nc.ChanSubscribe(rs.EventsSubjectPrefix+"*", events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	// A pusher (with its tracker) but no formatter: the offers never end.
	pushers, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.RunPusher(pushers, e.hrc) }()
	defer func() { stop(); <-done }()
	run, err := p.Fetch(ctx, spec(), e.ftc, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-events:
		var ev Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if m.Subject != rs.EventsSubjectPrefix+run || ev.Type != EventStalled || ev.Done != 0 || ev.Expected != 5 {
			t.Errorf("event on %s: %+v, want run %s stalled at 0 of 5", m.Subject, ev, run)
		}
	case <-ctx.Done():
		t.Fatal("no stall reported")
	}
}

// TestSecretsStayOut runs with distinctive secrets and looks for them in
// every log line, every stored message and bucket entry, and the report.
func TestSecretsStayOut(t *testing.T) {
	const ftSecret, hrSecret = "ft-Secret-9f8e7d", "ask_5ecre75ecre75ecre75ecre75ecre7"
	offers := synthetic(20, 13)
	e := newEnv(t, offers)
	corpus, _ := francetravailtest.Offers(offers)
	ft, err := francetravailtest.New(francetravailtest.Config{ClientSecret: ftSecret, Corpus: corpus})
	if err != nil {
		t.Fatal(err)
	}
	ftSrv := httptest.NewServer(ft)
	defer ftSrv.Close()
	hr, err := hrflowtest.New(hrflowtest.Config{Keys: []hrflowtest.APIKey{{Secret: hrSecret, User: hrflowtest.DefaultAPIUser}}})
	if err != nil {
		t.Fatal(err)
	}
	hrSrv := httptest.NewServer(hr)
	defer hrSrv.Close()
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(b) }), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ftc, err := francetravail.NewClient(francetravail.Config{ClientID: francetravailtest.DefaultClientID, ClientSecret: ftSecret,
		APIBaseURL: francetravailtest.APIBaseURL(ftSrv.URL), TokenURL: francetravailtest.TokenURL(ftSrv.URL), RateLimit: -1, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer ftc.CloseIdleConnections()
	// Every other HrFlow call fails once: retries are logged too.
	if err := hr.Faults().Set(emulator.Config{ErrorRate: 0.3, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	hrc, err := hrflow.NewClient(hrflow.Config{APISecret: hrSecret, APIUser: hrflowtest.DefaultAPIUser, BaseURL: hrflowtest.BaseURL(hrSrv.URL), Retry: fastRetry, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer hrc.CloseIdleConnections()
	nc, err := e.srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := New(ctx, nc, Options{Settings: testSettings, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	e.workers(p, hrc)
	r := e.run(p, spec(), ftc)
	reportJSON, _ := json.Marshal(r)
	mu.Lock()
	haystacks := map[string][]byte{"logs": logs.Bytes(), "report": reportJSON}
	mu.Unlock()
	streams := p.js.ListStreams(ctx)
	for info := range streams.Info() {
		st, err := p.js.Stream(ctx, info.Config.Name)
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				continue // deleted (acknowledged work, replaced KV values)
			}
			hdr, _ := json.Marshal(m.Header)
			haystacks[fmt.Sprintf("%s #%d", info.Config.Name, seq)] = append(append(hdr, m.Data...), m.Subject...)
		}
	}
	if len(haystacks) < 40 {
		t.Fatalf("looked at only %d places; the test proves less than it says", len(haystacks))
	}
	for where, b := range haystacks {
		for _, secret := range []string{ftSecret, hrSecret} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds a secret", where)
			}
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
