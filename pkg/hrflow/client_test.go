package hrflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/retry"
)

// A *rate.Limiter is a Limiter.
var _ hrflow.Limiter = rate.NewLimiter(rate.Inf, 1)

func TestNewClient(t *testing.T) {
	const secret = "ask_0123456789abcdef0123456789abcdef"
	tests := []struct {
		name    string
		cfg     hrflow.Config
		wantErr bool
		warns   bool
	}{
		{"valid", hrflow.Config{APISecret: secret, APIUser: "u@x"}, false, false},
		{"read-only", hrflow.Config{APISecret: "askr_1", APIUser: "u@x"}, false, false},
		{"unknown prefix warned", hrflow.Config{APISecret: "sk_1", APIUser: "u@x"}, false, true},
		{"no secret", hrflow.Config{APIUser: "u@x"}, true, false},
		{"secret with a newline", hrflow.Config{APISecret: secret + "\n", APIUser: "u@x"}, true, false},
		{"no user", hrflow.Config{APISecret: secret}, true, false},
		{"relative base", hrflow.Config{APISecret: secret, APIUser: "u@x", BaseURL: "/v1"}, true, false},
		{"ftp base", hrflow.Config{APISecret: secret, APIUser: "u@x", BaseURL: "ftp://h/v1"}, true, false},
		{"negative timeout", hrflow.Config{APISecret: secret, APIUser: "u@x", CallTimeout: -1}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			tt.cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			c, err := hrflow.NewClient(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewClient error %v, want error %t", err, tt.wantErr)
			}
			if err != nil && tt.cfg.APISecret != "" && strings.Contains(err.Error(), tt.cfg.APISecret) {
				t.Errorf("error %q shows the secret", err)
			}
			if c != nil {
				c.CloseIdleConnections()
			}
			if got := strings.Contains(logs.String(), "WARN"); got != tt.warns {
				t.Errorf("warned %t, want %t: %s", got, tt.warns, logs.String())
			}
			if tt.cfg.APISecret != "" && strings.Contains(logs.String(), tt.cfg.APISecret) {
				t.Errorf("log shows the secret: %s", logs.String())
			}
		})
	}
}

// TestSecretNeverShown formats a Config and a Client every way, and checks
// errors and logs of failing calls.
func TestSecretNeverShown(t *testing.T) {
	const secret = hrflowtest.DefaultAPISecret
	cfg := hrflow.Config{APISecret: secret, APIUser: "u@x", Retry: testRetry}
	c, err := hrflow.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%T %[1]v"} {
		for _, v := range []any{cfg, &cfg, c, []any{cfg}, struct{ C hrflow.Config }{cfg}} {
			if s := fmt.Sprintf(verb, v); strings.Contains(s, secret) || strings.Contains(s, secret[4:]) {
				t.Errorf("Sprintf(%s, %T) shows the secret: %s", verb, v, s)
			}
		}
	}
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log.Info("config", "cfg", cfg, "client", c)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "cfg", cfg, "client", c)
	if strings.Contains(logs.String(), secret[4:]) {
		t.Errorf("slog shows the secret: %s", logs.String())
	}
	if !strings.Contains(logs.String(), "ask_[REDACTED]") {
		t.Errorf("slog does not show the redacted secret: %s", logs.String())
	}

	// The API echoes the secret in a 401 and, here, in 5xx messages that are
	// retried and logged: neither the error nor the log may show it.
	e := newEnv(t, envOptions{
		emulator: hrflowtest.Config{Keys: []hrflowtest.APIKey{{Secret: "ask_ffffffffffffffffffffffffffffffff", User: hrflowtest.DefaultAPIUser}}},
		wrap:     failFirst(2, hrflowtest.RouteCreateJob, 503, "application/json", jsonError(503, "upstream failed for key "+secret), nil),
	})
	_, err = e.client.CreateJob(context.Background(), board, job("A"))
	if !errors.Is(err, hrflow.ErrUnauthorized) {
		t.Fatalf("error %v, want ErrUnauthorized", err)
	}
	var ae *hrflow.APIError
	if !errors.As(err, &ae) || ae.Message != "Unauthorized. Invalid secret key: ask_[REDACTED]" {
		t.Errorf("APIError %+v, want the API's message with the key redacted", ae)
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), e.logs.String()} {
		if strings.Contains(s, secret[4:]) {
			t.Errorf("the secret shows in %q", s)
		}
	}
	if !strings.Contains(e.logs.String(), "retrying") {
		t.Errorf("no retry logged: %s", e.logs.String())
	}
}

func TestRequestShape(t *testing.T) {
	var mu sync.Mutex
	var reqs []*http.Request
	var bodies []map[string]any
	e := newEnv(t, envOptions{transport: func(next http.RoundTripper) http.RoundTripper {
		return hook{next, func(r *http.Request) {
			var body map[string]any
			if r.Body != nil {
				b, _ := r.GetBody()
				json.NewDecoder(b).Decode(&body)
			}
			mu.Lock()
			defer mu.Unlock()
			reqs = append(reqs, r)
			bodies = append(bodies, body)
		}}
	}})
	ctx := context.Background()
	in := job("A", "key", "0123456789012345678901234567890123456789")
	created, err := e.client.CreateJob(ctx, board, in)
	if err != nil {
		t.Fatal(err)
	}
	if in.Key() != "0123456789012345678901234567890123456789" {
		t.Error("CreateJob modified its job")
	}
	if _, err := e.client.GetJob(ctx, board, "A"); err != nil {
		t.Fatal(err)
	}
	for ref, err := range e.client.Jobs(ctx, board, hrflow.ListOptions{}) {
		if err != nil || ref.Key != created.Key() {
			t.Fatalf("Jobs yielded %+v, %v", ref, err)
		}
	}
	if err := e.client.SetArchived(ctx, board, "A", true); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range reqs {
		if r.Header.Get("X-API-KEY") != hrflowtest.DefaultAPISecret || r.Header.Get("X-USER-EMAIL") != hrflowtest.DefaultAPIUser {
			t.Errorf("%s %s: auth headers %v", r.Method, r.URL.Path, r.Header)
		}
		if r.Body != nil && r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: Content-Type %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
	}
	if post := bodies[0]; post["board_key"] != board || post["reference"] != "A" {
		t.Errorf("POST body %v, want the flat shape with board_key", post)
	} else if _, ok := post["key"]; ok {
		t.Errorf("POST sent a key: %v", post)
	}
	if q := reqs[1].URL.Query(); q.Get("board_key") != board || q.Get("reference") != "A" {
		t.Errorf("GET query %v", q)
	}
	want := map[string]string{"board_keys": `["` + board + `"]`, "page": "1", "limit": "100", "order_by": "desc", "sort_by": "created_at", "return_job": "false"}
	q := reqs[2].URL.Query()
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("list query %s=%q, want %q", k, q.Get(k), v)
		}
	}
	if q.Has("archived") {
		t.Error("list sends the archived filter by default")
	}
	if patch := bodies[3]; patch["reference"] != "A" || patch["is_archive"] != 1.0 || reqs[3].URL.Path != "/v1/job/indexing/archive" {
		t.Errorf("PATCH %s %v", reqs[3].URL.Path, patch)
	}
}

func TestGetJob(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	if _, err := e.em.SeedJob(board, job("ARCH"), true); err != nil {
		t.Fatal(err)
	}
	got, err := e.client.GetJob(ctx, board, "ARCH")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Archived() || got.Reference() != "ARCH" || got.Key() == "" {
		t.Errorf("GetJob = %v, want the archived job with archived_at", got)
	}
	byKey, err := e.client.GetJobByKey(ctx, board, got.Key())
	if err != nil || byKey.Reference() != "ARCH" {
		t.Errorf("GetJobByKey = %v, %v", byKey, err)
	}

	_, err = e.client.GetJob(ctx, board, "NOPE")
	var ae *hrflow.APIError
	if !errors.Is(err, hrflow.ErrNotFound) || !errors.As(err, &ae) {
		t.Fatalf("error %v, want ErrNotFound as an *APIError", err)
	}
	if ae.Status != 400 || ae.Code != 400 || ae.Message != "Invalid parameters. Unable to find object: job" || ae.Method != "GET" || ae.Path != "/v1/job/indexing" {
		t.Errorf("APIError %+v", ae)
	}
	if want := `hrflow: get job "NOPE": GET /v1/job/indexing: 400 Bad Request: Invalid parameters. Unable to find object: job`; err.Error() != want {
		t.Errorf("error text\n%s\nwant\n%s", err, want)
	}
	_, err = e.client.GetJob(ctx, strings.Repeat("e", 40), "NOPE")
	if !errors.Is(err, hrflow.ErrBoardNotFound) || errors.Is(err, hrflow.ErrNotFound) {
		t.Errorf("unknown board: %v, want ErrBoardNotFound and not ErrNotFound", err)
	}
	if _, err := e.client.GetJob(ctx, board, ""); err == nil {
		t.Error("GetJob without a reference")
	}
	if n := e.count(hrflowtest.RouteGetJob, 400); n != 2 {
		t.Errorf("%d GETs answered 400, want 2: 4xx are not retried", n)
	}
}

func TestCreateJob(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	created, err := e.client.CreateJob(ctx, board, job("A", "summary", "S"))
	if err != nil {
		t.Fatal(err)
	}
	if len(created.Key()) != 40 || created["summary"] != "S" || created["url"] != nil {
		t.Errorf("created %v", created)
	}
	_, err = e.client.CreateJob(ctx, board, job("A"))
	if !errors.Is(err, hrflow.ErrReferenceExists) {
		t.Errorf("duplicate: %v, want ErrReferenceExists", err)
	}
	_, err = e.client.CreateJob(ctx, board, hrflow.Job{"reference": "B"})
	var ae *hrflow.APIError
	if !errors.As(err, &ae) || ae.Message != "Invalid parameters. name: Missing data for required field." || errors.Is(err, hrflow.ErrNotFound) {
		t.Errorf("no name: %v", err)
	}
	if n := e.count(hrflowtest.RouteCreateJob, 400); n != 2 {
		t.Errorf("%d POSTs answered 400, want 2 (no retry of a 4xx)", n)
	}
	if got := e.em.Jobs(board); len(got) != 1 {
		t.Errorf("board holds %d jobs, want 1", len(got))
	}
}

func TestEditJob(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	seeded, err := e.em.SeedJob(board, job("A", "summary", "old", "skills", []any{map[string]any{"name": "Go", "type": "hard", "value": nil}}), true)
	if err != nil {
		t.Fatal(err)
	}
	edited, err := e.client.EditJob(ctx, board, hrflow.Job{"key": seeded.Key(), "reference": "A", "name": "new"})
	if err != nil {
		t.Fatal(err)
	}
	if edited.Key() != seeded.Key() || edited["name"] != "new" {
		t.Errorf("edited %v", edited)
	}
	if s, _ := json.Marshal(edited["skills"]); string(s) != "[]" || fmt.Sprint(edited["summary"]) != "[]" {
		t.Errorf("skills %s summary %v: a PUT is a full replace", s, edited["summary"])
	}
	if !edited.Archived() {
		t.Error("a PUT unarchived the job")
	}
	if _, err := e.client.EditJob(ctx, board, job("A", "name", "by ref")); err != nil {
		t.Errorf("edit by reference: %v", err)
	}
	if _, err := e.client.EditJob(ctx, board, job("NOPE")); !errors.Is(err, hrflow.ErrNotFound) {
		t.Errorf("edit of a missing job: %v, want ErrNotFound", err)
	}
	before := e.em.Stats().Total(hrflowtest.RouteEditJob)
	if _, err := e.client.EditJob(ctx, board, hrflow.Job{"name": "x"}); err == nil {
		t.Error("edit without key or reference")
	}
	if e.em.Stats().Total(hrflowtest.RouteEditJob) != before {
		t.Error("edit without key or reference reached the API")
	}
}

func TestSetArchived(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	created, err := e.client.CreateJob(ctx, board, job("A"))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		archived, byKey bool
	}{{true, false}, {true, false}, {false, true}, {true, true}, {false, false}}
	for _, s := range steps {
		if s.byKey {
			err = e.client.SetArchivedKey(ctx, board, created.Key(), s.archived)
		} else {
			err = e.client.SetArchived(ctx, board, "A", s.archived)
		}
		if err != nil {
			t.Fatalf("SetArchived(%t): %v", s.archived, err)
		}
		got, err := e.client.GetJob(ctx, board, "A")
		if err != nil {
			t.Fatal(err)
		}
		if got.Archived() != s.archived {
			t.Errorf("after SetArchived(%t), archived_at = %v", s.archived, got["archived_at"])
		}
	}
	if err := e.client.SetArchived(ctx, board, "NOPE", true); !errors.Is(err, hrflow.ErrNotFound) {
		t.Errorf("archive a missing job: %v", err)
	}
}

func TestJobs(t *testing.T) {
	var mu sync.Mutex
	var pages []string
	e := newEnv(t, envOptions{transport: func(next http.RoundTripper) http.RoundTripper {
		return hook{next, func(r *http.Request) {
			if r.URL.Path == "/v1/storing/jobs" {
				mu.Lock()
				pages = append(pages, r.URL.Query().Get("page")+"/"+r.URL.Query().Get("limit"))
				mu.Unlock()
			}
		}}
	}, config: func(c *hrflow.Config) { c.ListLimit = 30 }})
	ctx := context.Background()
	const n = 65
	archived := map[string]bool{}
	for i := range n {
		ref := fmt.Sprintf("R%02d", i)
		arch := i%10 == 3
		archived[ref] = arch
		if _, err := e.em.SeedJob(board, job(ref, "created_at", fmt.Sprintf("2025-08-01T10:%02d:%02dZ", (i*7)%60, i%60)), arch); err != nil {
			t.Fatal(err)
		}
	}
	collect := func(opts hrflow.ListOptions) []hrflow.JobRef {
		t.Helper()
		var out []hrflow.JobRef
		for ref, err := range e.client.Jobs(ctx, board, opts) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ref)
		}
		return out
	}
	all := collect(hrflow.ListOptions{})
	if len(all) != n {
		t.Fatalf("listed %d jobs, want %d", len(all), n)
	}
	seen := map[string]bool{}
	for i, r := range all {
		if seen[r.Key] {
			t.Errorf("%s listed twice", r.Reference)
		}
		seen[r.Key] = true
		if (r.ArchivedAt != "") != archived[r.Reference] {
			t.Errorf("%s ArchivedAt %q, want archived %t", r.Reference, r.ArchivedAt, archived[r.Reference])
		}
		if i > 0 && all[i-1].CreatedAt < r.CreatedAt {
			t.Errorf("not newest first: %s before %s", all[i-1].CreatedAt, r.CreatedAt)
		}
		if r.UpdatedAt == "" || len(r.Key) != 40 {
			t.Errorf("ref %+v", r)
		}
	}
	mu.Lock()
	sort.Strings(pages) // fetched ahead, in any order
	if got := strings.Join(pages, " "); got != "1/30 2/30 3/30" {
		t.Errorf("pages asked %q, want 1/30 2/30 3/30", got)
	}
	pages = nil
	mu.Unlock()
	if got := collect(hrflow.ListOptions{Concurrency: 1}); len(got) != n {
		t.Errorf("one page at a time listed %d jobs, want %d", len(got), n)
	}
	mu.Lock()
	if got := strings.Join(pages, " "); got != "1/30 2/30 3/30" {
		t.Errorf("one page at a time asked %q, want 1/30 2/30 3/30 in order", got)
	}
	pages = nil
	mu.Unlock()

	live := collect(hrflow.ListOptions{Limit: 50, ExcludeArchived: true})
	if len(live) != n-7 {
		t.Errorf("ExcludeArchived listed %d, want %d", len(live), n-7)
	}
	for _, r := range live {
		if r.ArchivedAt != "" {
			t.Errorf("ExcludeArchived listed %s", r.Reference)
		}
	}
	// stopping early asks no further page
	mu.Lock()
	pages = nil
	mu.Unlock()
	for range e.client.Jobs(ctx, board, hrflow.ListOptions{Limit: 5}) {
		break
	}
	mu.Lock()
	if len(pages) != 1 {
		t.Errorf("break after one job asked pages %v", pages)
	}
	mu.Unlock()

	// an empty board: one call, nothing yielded
	other := strings.Repeat("1", 40)
	e.em.AddBoard(other)
	for ref, err := range e.client.Jobs(ctx, other, hrflow.ListOptions{}) {
		t.Errorf("empty board yielded %+v, %v", ref, err)
	}
	// an error is yielded once, then the listing stops
	var errs int
	for _, err := range e.client.Jobs(ctx, strings.Repeat("2", 40), hrflow.ListOptions{}) {
		if !errors.Is(err, hrflow.ErrBoardNotFound) {
			t.Errorf("unknown board: %v", err)
		}
		errs++
	}
	if errs != 1 {
		t.Errorf("%d errors yielded, want 1", errs)
	}
}

func TestOverQuota(t *testing.T) {
	e := newEnv(t, envOptions{emulator: hrflowtest.Config{Quota: 1}})
	ctx := context.Background()
	if _, err := e.client.CreateJob(ctx, board, job("A")); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.CreateJob(ctx, board, job("B"))
	var ae *hrflow.APIError
	if !errors.Is(err, hrflow.ErrOverQuota) || !errors.As(err, &ae) || ae.Status != 402 || ae.Message != "Over quota" {
		t.Errorf("error %v, want 402 Over quota", err)
	}
	if n := e.count(hrflowtest.RouteCreateJob, 402); n != 1 {
		t.Errorf("%d answers 402, want 1: not retried", n)
	}
}

func TestContentTypeWithCharset(t *testing.T) {
	e := newEnv(t, envOptions{wrap: withContentType("application/json; charset=utf-8")})
	ctx := context.Background()
	if _, err := e.client.CreateJob(ctx, board, job("A")); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := e.client.GetJob(ctx, board, "A"); err != nil {
		t.Fatalf("get: %v", err)
	}
	if _, err := e.client.GetJob(ctx, board, "B"); !errors.Is(err, hrflow.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
}

func TestGatewayPages(t *testing.T) {
	ctx := context.Background()
	t.Run("502 every time", func(t *testing.T) {
		e := newEnv(t, envOptions{emulator: hrflowtest.Config{Faults: emulator.Config{ErrorRate: 1, ErrorStatuses: []int{502}}}})
		_, err := e.client.GetJob(ctx, board, "A")
		var ae *hrflow.APIError
		if !errors.Is(err, retry.ErrExhausted) || !errors.As(err, &ae) || ae.Status != 502 {
			t.Fatalf("error %v, want an exhausted 502", err)
		}
		if want := "non-JSON answer (text/html): 502 Bad Gateway"; ae.Message != want {
			t.Errorf("message %q, want %q", ae.Message, want)
		}
		if n := e.count(hrflowtest.RouteGetJob, 502); n != int64(testRetry.MaxAttempts) {
			t.Errorf("%d attempts, want %d", n, testRetry.MaxAttempts)
		}
		// fault injection changes while running
		if err := e.em.Faults().Set(emulator.Config{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.GetJob(ctx, board, "A"); !errors.Is(err, hrflow.ErrNotFound) {
			t.Errorf("after the faults stop: %v", err)
		}
	})
	t.Run("504 once", func(t *testing.T) {
		page := "<html><head><title>504 Gateway Time-out</title></head><body><h1>504</h1></body></html>"
		e := newEnv(t, envOptions{wrap: failFirst(1, "", 504, "text/html; charset=utf-8", page, nil)})
		if _, err := e.client.CreateJob(ctx, board, job("A")); err != nil {
			t.Fatalf("create after one 504: %v", err)
		}
		if n := e.count(hrflowtest.RouteCreateJob, 201); n != 1 {
			t.Errorf("%d creates, want 1", n)
		}
	})
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		wrap func(http.Handler) http.Handler
		// wait, when set, is the wait the client must choose before its
		// second attempt: the server's Retry-After, longer than testRetry's.
		wait     time.Duration
		attempts int
	}{
		{"500", failFirst(2, "", 500, "application/json", jsonError(500, "Internal Server Error"), nil), 0, 3},
		{"503 html", failFirst(1, "", 503, "text/html", "<h1>down</h1>", nil), 0, 2},
		{"429 with Retry-After", failFirst(1, "", 429, "application/json", jsonError(429, "Too many requests"), map[string]string{"Retry-After": "0.05"}), 50 * time.Millisecond, 2},
		{"503 with Retry-After", failFirst(1, "", 503, "application/json", jsonError(503, "Unavailable"), map[string]string{"Retry-After": "0.04"}), 40 * time.Millisecond, 2},
		{"connection reset", resetFirst(2), 0, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := &countingLimiter{}
			e := newEnv(t, envOptions{wrap: tt.wrap, config: func(c *hrflow.Config) { c.Limiter = lim }})
			if _, err := e.client.CreateJob(ctx, board, job("A")); err != nil {
				t.Fatalf("create: %v", err)
			}
			// The retry log names the wait chosen; retry.Sleep's keeping of
			// it is retry's own test.
			if want := "wait=" + tt.wait.String(); tt.wait > 0 && !strings.Contains(e.logs.String(), want) {
				t.Errorf("Retry-After not honoured: no %q in the log:\n%s", want, e.logs.String())
			}
			if n := lim.n.Load(); n != int64(tt.attempts) {
				t.Errorf("limiter waited %d times, want once per attempt: %d", n, tt.attempts)
			}
			if got := len(e.em.Jobs(board)); got != 1 {
				t.Errorf("%d jobs, want 1", got)
			}
		})
	}
}

func TestNotRetried(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		status int
		ct     string
		body   string
		is     error
		msg    string
	}{
		{"402 over quota", 402, "application/json", jsonError(402, "Over quota"), hrflow.ErrOverQuota, "Over quota"},
		{"401", 401, "application/json", jsonError(401, "Unauthorized. Invalid secret key: ask_abc"), hrflow.ErrUnauthorized, "Unauthorized. Invalid secret key: ask_[REDACTED]"},
		{"403", 403, "application/json", jsonError(403, "Forbidden"), hrflow.ErrUnauthorized, "Forbidden"},
		{"422", 422, "application/json", jsonError(422, "Invalid parameters. name: too long"), nil, "Invalid parameters. name: too long"},
		{"404 html page", 404, "text/html", "<html><title>404 Not Found</title></html>", nil, "non-JSON answer (text/html): 404 Not Found"},
		{"501", 501, "application/json", jsonError(501, "Not implemented"), nil, "Not implemented"},
		{"200 html", 200, "text/html", "<p>captive portal</p>", nil, "non-JSON answer (text/html): captive portal"},
		{"200 with an error code", 200, "application/json", jsonError(400, "Invalid parameters. Unable to find object: job"), hrflow.ErrNotFound, "Invalid parameters. Unable to find object: job"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls int
			var mu sync.Mutex
			e := newEnv(t, envOptions{wrap: func(http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					calls++
					mu.Unlock()
					w.Header().Set("Content-Type", tt.ct)
					w.WriteHeader(tt.status)
					io.WriteString(w, tt.body)
				})
			}})
			_, err := e.client.GetJob(ctx, board, "A")
			var ae *hrflow.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v, want an *APIError", err)
			}
			if ae.Message != tt.msg {
				t.Errorf("message %q, want %q", ae.Message, tt.msg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v, want %v", err, tt.is)
			}
			if tt.is != hrflow.ErrNotFound && errors.Is(err, hrflow.ErrNotFound) {
				t.Errorf("error %v matches ErrNotFound", err)
			}
			if errors.Is(err, retry.ErrExhausted) || calls != 1 {
				t.Errorf("%d calls (%v), want 1: not retried", calls, err)
			}
		})
	}
}

func TestTimeoutsAndContext(t *testing.T) {
	t.Run("call time-out", func(t *testing.T) {
		e := newEnv(t, envOptions{
			emulator: hrflowtest.Config{Faults: emulator.Config{Latency: emulator.Duration(2 * time.Second)}},
			config: func(c *hrflow.Config) {
				c.CallTimeout = 30 * time.Millisecond
				c.Retry.MaxAttempts = 2
			},
		})
		// Without the call time-out the answer would come, after the
		// latency, as ErrNotFound.
		_, err := e.client.GetJob(context.Background(), board, "A")
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, retry.ErrExhausted) {
			t.Errorf("error %v, want exhausted time-outs", err)
		}
	})
	t.Run("context ends while waiting", func(t *testing.T) {
		e := newEnv(t, envOptions{
			emulator: hrflowtest.Config{Faults: emulator.Config{ErrorRate: 1, ErrorStatuses: []int{503}}},
			config: func(c *hrflow.Config) {
				c.Retry = retry.Policy{InitialInterval: time.Hour, MaxInterval: time.Hour, MaxElapsed: -1}
			},
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := e.client.GetJob(ctx, board, "A")
			done <- err
		}()
		waitFor(t, "the first answer", func() bool { return e.count(hrflowtest.RouteGetJob, 503) == 1 })
		cancel()
		// The backoff is an hour: only the context can end the wait.
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error %v, want the context's", err)
			}
		case <-time.After(stuckAfter):
			t.Fatalf("stuck: still waiting %v after the context ended", stuckAfter)
		}
		if n := e.count(hrflowtest.RouteGetJob, 503); n != 1 {
			t.Errorf("%d attempts, want 1", n)
		}
	})
	t.Run("limiter obeys the context", func(t *testing.T) {
		lim := rate.NewLimiter(rate.Every(time.Hour), 1)
		lim.Allow() // spend the burst
		e := newEnv(t, envOptions{config: func(c *hrflow.Config) { c.Limiter = lim }})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := e.client.GetJob(ctx, board, "A"); err == nil {
			t.Error("a call went through an exhausted limiter")
		}
		if n := e.em.Stats().Total(hrflowtest.RouteGetJob); n != 0 {
			t.Errorf("%d requests sent past the limiter", n)
		}
	})
}

func TestParseTexts(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	text := "À Évian-les-Bains, l’équipe cherche un(e) vendeur·se : maîtrise d'Excel, anglais courant, rigueur."
	got, err := e.client.ParseTexts(ctx, []string{text})
	if err != nil {
		t.Fatal(err)
	}
	rs := []rune(got[0].Text)
	var spans []string
	for _, en := range got[0].Entities {
		s, ok := en.Span(rs)
		if !ok {
			t.Fatalf("entity %+v outside the text", en)
		}
		spans = append(spans, s)
	}
	want := []string{"Évian-les-Bains", "vendeur", "Excel", "anglais", "rigueur"}
	if strings.Join(spans, "|") != strings.Join(want, "|") {
		t.Errorf("spans %q, want %q", spans, want)
	}
	// byte offsets would be wrong: the text has accents before the entities
	if en := got[0].Entities[2]; text[en.Start:en.End] == "Excel" {
		t.Error("offsets are bytes, want code points")
	}

	// more texts than a call takes: several calls, results in order
	texts := make([]string, 70)
	for i := range texts {
		texts[i] = fmt.Sprintf("texte %d en Python", i)
	}
	many, err := e.client.ParseTexts(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range many {
		if p.Text != texts[i] || len(p.Entities) != 1 {
			t.Errorf("parsing %d = %+v", i, p)
		}
	}
	if n := e.count(hrflowtest.RouteParseTexts, 200); n != 4 { // 1 + ceil(70/31)
		t.Errorf("%d parsing calls, want 4", n)
	}
	if none, err := e.client.ParseTexts(ctx, nil); err != nil || len(none) != 0 {
		t.Errorf("no text: %v, %v", none, err)
	}
}
