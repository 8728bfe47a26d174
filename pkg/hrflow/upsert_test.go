package hrflow_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
)

// boardState is what a test reads of a job on the board.
type boardState struct {
	exists, archived bool
	name             any
	skills           int
}

func state(t *testing.T, e *env, ref string) boardState {
	t.Helper()
	for _, j := range e.em.Jobs(board) {
		if j.Reference() == ref {
			skills, _ := j["skills"].([]any)
			return boardState{true, j.Archived(), j["name"], len(skills)}
		}
	}
	return boardState{}
}

func TestUpsert(t *testing.T) {
	const ref = "204XKQA"
	ours := job(ref, "name", "new", "summary", "Maîtrise d'<b>Excel</b> et de l'anglais")
	type seed int
	const (
		absent seed = iota
		live
		archived
	)
	tests := []struct {
		name   string
		seed   seed
		opts   hrflow.UpsertOptions
		want   hrflow.Action
		routes map[string]int64 // requests by route
		after  boardState
	}{
		{"absent: created", absent, hrflow.UpsertOptions{}, hrflow.ActionCreated,
			map[string]int64{hrflowtest.RouteGetJob: 1, hrflowtest.RouteCreateJob: 1},
			boardState{true, false, "new", 0}},
		{"absent, enrich: created enriched", absent, hrflow.UpsertOptions{EnrichWithParsing: true}, hrflow.ActionCreated,
			map[string]int64{hrflowtest.RouteGetJob: 1, hrflowtest.RouteParseTexts: 1, hrflowtest.RouteCreateJob: 1},
			boardState{true, false, "new", 1}},
		{"live, update off: skipped", live, hrflow.UpsertOptions{EnrichWithParsing: true}, hrflow.ActionSkipped,
			map[string]int64{hrflowtest.RouteGetJob: 1},
			boardState{true, false, "old", 0}},
		{"live, update on: updated, not enriched", live, hrflow.UpsertOptions{UpdateContent: true, EnrichWithParsing: true}, hrflow.ActionUpdated,
			map[string]int64{hrflowtest.RouteGetJob: 1, hrflowtest.RouteEditJob: 1},
			boardState{true, false, "new", 0}},
		{"archived, update off: unarchived", archived, hrflow.UpsertOptions{}, hrflow.ActionUnarchived,
			map[string]int64{hrflowtest.RouteGetJob: 1, hrflowtest.RouteArchiveJob: 1, hrflowtest.RouteEditJob: 1},
			boardState{true, false, "new", 0}},
		{"archived, update on: unarchived", archived, hrflow.UpsertOptions{UpdateContent: true, EnrichWithParsing: true}, hrflow.ActionUnarchived,
			map[string]int64{hrflowtest.RouteGetJob: 1, hrflowtest.RouteArchiveJob: 1, hrflowtest.RouteEditJob: 1},
			boardState{true, false, "new", 0}},
		{"dry run, absent", absent, hrflow.UpsertOptions{DryRun: true, EnrichWithParsing: true}, hrflow.ActionCreated,
			map[string]int64{hrflowtest.RouteGetJob: 1},
			boardState{}},
		{"dry run, live, update off", live, hrflow.UpsertOptions{DryRun: true}, hrflow.ActionSkipped,
			map[string]int64{hrflowtest.RouteGetJob: 1},
			boardState{true, false, "old", 0}},
		{"dry run, live, update on", live, hrflow.UpsertOptions{DryRun: true, UpdateContent: true}, hrflow.ActionUpdated,
			map[string]int64{hrflowtest.RouteGetJob: 1},
			boardState{true, false, "old", 0}},
		{"dry run, archived", archived, hrflow.UpsertOptions{DryRun: true}, hrflow.ActionUnarchived,
			map[string]int64{hrflowtest.RouteGetJob: 1},
			boardState{true, true, "old", 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			var seededKey string
			if tt.seed != absent {
				j, err := e.em.SeedJob(board, job(ref, "name", "old"), tt.seed == archived)
				if err != nil {
					t.Fatal(err)
				}
				seededKey = j.Key()
			}
			res, err := e.client.Upsert(context.Background(), board, ours, tt.opts)
			if err != nil {
				t.Fatalf("Upsert: %v", err)
			}
			if res.Action != tt.want || res.Planned != tt.opts.DryRun || res.ParsingFailed {
				t.Errorf("result %+v, want action %s, planned %t", res, tt.want, tt.opts.DryRun)
			}
			if seededKey != "" && res.Key != seededKey {
				t.Errorf("key %q, want the job's %q", res.Key, seededKey)
			}
			if tt.seed == absent && !tt.opts.DryRun && len(res.Key) != 40 {
				t.Errorf("created key %q", res.Key)
			}
			st := e.em.Stats()
			for _, r := range st.Routes() {
				if got, want := st.Total(r), tt.routes[r]; got != want {
					t.Errorf("%d requests on %s, want %d", got, r, want)
				}
			}
			if tt.opts.DryRun && writes(st) != 0 {
				t.Errorf("dry run wrote: %v", st.Requests)
			}
			if got := state(t, e, ref); got != tt.after {
				t.Errorf("board holds %+v, want %+v", got, tt.after)
			}
		})
	}
}

func TestUpsertParsingFailure(t *testing.T) {
	for _, status := range []int{400, 503} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := newEnv(t, envOptions{wrap: failFirst(100, hrflowtest.RouteParseTexts, status, "application/json", jsonError(status, "Invalid parameters. texts: refused"), nil)})
			res, err := e.client.Upsert(context.Background(), board, job("A", "summary", "Excel"), hrflow.UpsertOptions{EnrichWithParsing: true})
			if err != nil {
				t.Fatalf("Upsert: %v", err)
			}
			if res.Action != hrflow.ActionCreated || !res.ParsingFailed || !strings.Contains(res.ParsingError, "texts: refused") {
				t.Errorf("result %+v, want created with a parsing failure", res)
			}
			if got := state(t, e, "A"); !got.exists || got.skills != 0 {
				t.Errorf("board %+v, want the job created without enrichment", got)
			}
		})
	}
	t.Run("no text, no call", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		res, err := e.client.Upsert(context.Background(), board, job("A", "summary", "  <p></p> "), hrflow.UpsertOptions{EnrichWithParsing: true})
		if err != nil || res.Action != hrflow.ActionCreated || res.ParsingFailed {
			t.Errorf("Upsert = %+v, %v", res, err)
		}
		if n := e.em.Stats().Total(hrflowtest.RouteParseTexts); n != 0 {
			t.Errorf("%d parsing calls for an empty text", n)
		}
	})
}

// TestUpsertCreateRace makes another writer create the reference between
// Upsert's GET and its POST.
func TestUpsertCreateRace(t *testing.T) {
	tests := []struct {
		name     string
		opts     hrflow.UpsertOptions
		archived bool
		want     hrflow.Action
		name2    string // the job's name on the board after
	}{
		{"update off", hrflow.UpsertOptions{EnrichWithParsing: true}, false, hrflow.ActionSkipped, "theirs"},
		{"update on", hrflow.UpsertOptions{UpdateContent: true, EnrichWithParsing: true}, false, hrflow.ActionUpdated, "ours"},
		{"theirs archived", hrflow.UpsertOptions{}, true, hrflow.ActionUnarchived, "ours"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var em atomic.Pointer[hrflowtest.Emulator]
			var once sync.Once
			var theirs hrflow.Job
			e := newEnv(t, envOptions{transport: func(next http.RoundTripper) http.RoundTripper {
				return hook{next, func(r *http.Request) {
					if r.Method == http.MethodPost && r.URL.Path == "/v1/job/indexing" {
						once.Do(func() {
							var err error
							if theirs, err = em.Load().SeedJob(board, job("A", "name", "theirs"), tt.archived); err != nil {
								panic(err)
							}
						})
					}
				}}
			}})
			em.Store(e.em)
			res, err := e.client.Upsert(context.Background(), board, job("A", "name", "ours", "summary", "Excel"), tt.opts)
			if err != nil {
				t.Fatalf("Upsert: %v", err)
			}
			if res.Action != tt.want || res.Key != theirs.Key() || res.ParsingFailed {
				t.Errorf("result %+v, want %s on key %s", res, tt.want, theirs.Key())
			}
			if n := e.count(hrflowtest.RouteCreateJob, 400); n != 1 {
				t.Errorf("%d refused creates, want 1", n)
			}
			if n := e.count(hrflowtest.RouteGetJob, -1); n != 2 {
				t.Errorf("%d GETs, want 2: read again after the refused create", n)
			}
			jobs := e.em.Jobs(board)
			if len(jobs) != 1 || jobs[0]["name"] != tt.name2 || jobs[0].Archived() {
				t.Errorf("board %v, want one live job named %s", jobs, tt.name2)
			}
			if s, _ := jobs[0]["skills"].([]any); len(s) != 0 {
				t.Errorf("an update was enriched: %v", s)
			}
		})
	}
}

// TestUpsertConcurrent upserts the same references from two clients (two
// replicas) and from several goroutines of one client.
func TestUpsertConcurrent(t *testing.T) {
	e := newEnv(t, envOptions{})
	other, err := hrflow.NewClient(hrflow.Config{
		APISecret: hrflowtest.DefaultAPISecret, APIUser: hrflowtest.DefaultAPIUser,
		BaseURL: hrflowtest.BaseURL(e.srv.URL), Retry: testRetry,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer other.CloseIdleConnections()
	const refs, workers = 20, 3
	var created atomic.Int64
	errs := make(chan error, 2*workers*refs)
	var wg sync.WaitGroup
	for _, c := range []*hrflow.Client{e.client, other} {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range refs {
					res, err := c.Upsert(context.Background(), board, job(fmt.Sprint("R", i)), hrflow.UpsertOptions{UpdateContent: true})
					if err != nil {
						errs <- err
						continue
					}
					if res.Action == hrflow.ActionCreated {
						created.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := created.Load(); n != refs {
		t.Errorf("%d created, want %d", n, refs)
	}
	if n := e.count(hrflowtest.RouteCreateJob, 201); n != refs {
		t.Errorf("%d jobs created on the emulator, want %d", n, refs)
	}
	if n := len(e.em.Jobs(board)); n != refs {
		t.Errorf("%d jobs on the board, want %d", n, refs)
	}
}

// loseFirstCreate lets the first create reach the emulator, then answers
// 503 instead of its answer, as a proxy that fails after forwarding does.
func loseFirstCreate(next http.Handler) http.Handler {
	var once sync.Once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lost := false
		if routeOf(r) == hrflowtest.RouteCreateJob {
			once.Do(func() { lost = true })
		}
		if !lost {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(httptest.NewRecorder(), r)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "<html><title>503 Service Unavailable</title></html>")
	})
}

// TestUpsertLostCreateAnswer: the POST creates the job but its answer is
// lost; the retried POST is refused; the job counts as created, once.
func TestUpsertLostCreateAnswer(t *testing.T) {
	for _, update := range []bool{false, true} {
		t.Run(fmt.Sprint("update=", update), func(t *testing.T) {
			e := newEnv(t, envOptions{wrap: loseFirstCreate})
			res, err := e.client.Upsert(context.Background(), board, job("A", "name", "ours", "summary", "Excel"), hrflow.UpsertOptions{UpdateContent: update, EnrichWithParsing: true})
			if err != nil {
				t.Fatalf("Upsert: %v", err)
			}
			jobs := e.em.Jobs(board)
			if len(jobs) != 1 || res.Action != hrflow.ActionCreated || res.Key != jobs[0].Key() {
				t.Fatalf("result %+v, board %v: want created, once", res, jobs)
			}
			if s, _ := jobs[0]["skills"].([]any); jobs[0]["name"] != "ours" || len(s) != 1 {
				t.Errorf("stored %v, want our enriched job", jobs[0])
			}
			wantPuts := int64(0)
			if update {
				wantPuts = 1
			}
			if got := e.count(hrflowtest.RouteEditJob, -1); got != wantPuts {
				t.Errorf("%d PUTs, want %d", got, wantPuts)
			}
			if got := e.count(hrflowtest.RouteCreateJob, 201); got != 1 {
				t.Errorf("%d jobs created, want 1", got)
			}
		})
	}
}

// TestUpsertUnarchiveConverges fails the unarchive of an archived job, then
// upserts it again without update_content: the job ends live with our
// content, as if nothing had failed.
func TestUpsertUnarchiveConverges(t *testing.T) {
	e := newEnv(t, envOptions{wrap: failFirst(1, hrflowtest.RouteArchiveJob, 400, "application/json", jsonError(400, "Invalid parameters. refused once"), nil)})
	if _, err := e.em.SeedJob(board, job("A", "name", "old"), true); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.client.Upsert(ctx, board, job("A", "name", "new"), hrflow.UpsertOptions{}); err == nil {
		t.Fatal("Upsert did not report the failed unarchive")
	}
	res, err := e.client.Upsert(ctx, board, job("A", "name", "new"), hrflow.UpsertOptions{})
	if err != nil || res.Action != hrflow.ActionUnarchived {
		t.Fatalf("second Upsert = %+v, %v; want unarchived", res, err)
	}
	if got := state(t, e, "A"); got != (boardState{true, false, "new", 0}) {
		t.Errorf("board %+v, want the job live with the new content", got)
	}
}

func TestUpsertErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("no reference", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		if _, err := e.client.Upsert(ctx, board, hrflow.Job{"name": "x"}, hrflow.UpsertOptions{}); !errors.Is(err, hrflow.ErrNoReference) {
			t.Errorf("error %v, want ErrNoReference", err)
		}
		if len(e.em.Stats().Requests) != 0 {
			t.Errorf("requests sent: %v", e.em.Stats().Requests)
		}
	})
	t.Run("permanent 4xx", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		_, err := e.client.Upsert(ctx, board, hrflow.Job{"reference": "A"}, hrflow.UpsertOptions{})
		var ae *hrflow.APIError
		if !errors.As(err, &ae) || ae.Status != 400 || ae.Message != "Invalid parameters. name: Missing data for required field." {
			t.Errorf("error %v, want the API's 400 message", err)
		}
		if n := e.count(hrflowtest.RouteCreateJob, -1); n != 1 {
			t.Errorf("%d creates, want 1: a 4xx is not retried", n)
		}
	})
	t.Run("unknown board", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		_, err := e.client.Upsert(ctx, strings.Repeat("9", 40), job("A"), hrflow.UpsertOptions{})
		if !errors.Is(err, hrflow.ErrBoardNotFound) {
			t.Errorf("error %v, want ErrBoardNotFound", err)
		}
		if n := e.count(hrflowtest.RouteCreateJob, -1); n != 0 {
			t.Errorf("%d creates on a missing board", n)
		}
	})
	t.Run("create refused, never found", func(t *testing.T) {
		e := newEnv(t, envOptions{wrap: failFirst(100, hrflowtest.RouteCreateJob, 400, "application/json", jsonError(400, "Invalid parameters. Reference already exists: A"), nil)})
		_, err := e.client.Upsert(ctx, board, job("A"), hrflow.UpsertOptions{})
		if err == nil || !strings.Contains(err.Error(), "3 times") {
			t.Errorf("error %v, want a bounded loop", err)
		}
		if n := e.em.Stats().Total(hrflowtest.RouteGetJob); n != 3 {
			t.Errorf("%d GETs, want 3", n)
		}
	})
	t.Run("context ends while waiting for the reference", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := e.client.Upsert(cctx, board, job("A"), hrflow.UpsertOptions{}); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
}

// TestPut writes jobs given as JSON the way the pipeline's board index
// decides: a create, a replace, a replace that unarchives, an enriched
// create; and a create of a reference that exists, refused.
func TestPut(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	encode := func(j hrflow.Job) []byte {
		b, err := hrflow.AppendJSON(nil, j)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	created, err := e.client.Put(ctx, board, "204XKQA", encode(job("204XKQA", "name", "first")), hrflow.PutOptions{})
	if err != nil || created.Key == "" || created.UpdatedAt == "" {
		t.Fatalf("create: %+v, %v; want a key and an updated_at", created, err)
	}
	if got := state(t, e, "204XKQA"); got != (boardState{true, false, "first", 0}) {
		t.Errorf("after the create: %+v", got)
	}
	_, err = e.client.Put(ctx, board, "204XKQA", encode(job("204XKQA")), hrflow.PutOptions{})
	if !errors.Is(err, hrflow.ErrReferenceExists) {
		t.Errorf("second create: %v, want ErrReferenceExists", err)
	}
	if err := e.client.SetArchivedKey(ctx, board, created.Key, true); err != nil {
		t.Fatal(err)
	}
	replaced, err := e.client.Put(ctx, board, "204XKQA", encode(job("204XKQA", "name", "second")), hrflow.PutOptions{Key: created.Key, Unarchive: true})
	if err != nil || replaced.Key != created.Key {
		t.Fatalf("replace: %+v, %v; want the same key", replaced, err)
	}
	if got := state(t, e, "204XKQA"); got != (boardState{true, false, "second", 0}) {
		t.Errorf("after the replace and unarchive: %+v", got)
	}
	enriched, err := e.client.Put(ctx, board, "205ABCD", encode(job("205ABCD", "summary", "Maîtrise d'<b>Excel</b>")), hrflow.PutOptions{Enrich: true})
	if err != nil || enriched.ParsingError != "" {
		t.Fatalf("enriched create: %+v, %v", enriched, err)
	}
	if got := state(t, e, "205ABCD"); got.skills != 1 {
		t.Errorf("enriched create: %d skills, want 1", got.skills)
	}
	for _, bad := range []string{``, `[]`, `"x"`} {
		if _, err := e.client.Put(ctx, board, "206ABCD", []byte(bad), hrflow.PutOptions{}); err == nil {
			t.Errorf("Put(%q): no error", bad)
		}
	}
}
