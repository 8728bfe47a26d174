package hrflow_test

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
)

// listed returns the JobRef the listing shows for key.
func (e *env) listed(t *testing.T, key string) hrflow.JobRef {
	t.Helper()
	for ref, err := range e.client.Jobs(t.Context(), board, hrflow.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if ref.Key == key {
			return ref
		}
	}
	t.Fatalf("job %s not listed", key)
	return hrflow.JobRef{}
}

// TestCreateRefReplaceRef checks that what a write answers, read by
// CreateRef and ReplaceRef, is what the listing shows of the job afterwards:
// a run that records it can tell from the next listing whether the job
// changed since.
func TestCreateRefReplaceRef(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e := newEnv(t, envOptions{emulator: hrflowtest.Config{Now: func() time.Time { return now }}})
	ctx := t.Context()
	created, err := e.client.CreateRef(ctx, board, job("A", "created_at", "2025-08-04T18:00:50.137Z"))
	if err != nil {
		t.Fatal(err)
	}
	want := hrflow.JobRef{Key: created.Key, Reference: "A", CreatedAt: "2025-08-04T18:00:50.137Z", UpdatedAt: "2026-01-02T03:04:05+0000"}
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(created.Key) || created != want {
		t.Errorf("CreateRef = %+v, want %+v", created, want)
	}
	if got := e.listed(t, created.Key); got != created {
		t.Errorf("listed %+v, want %+v as the create answered", got, created)
	}

	// An edit by key, then by reference, each within the same second:
	// updated_at still moves, and the listing agrees.
	for i, j := range []hrflow.Job{{"key": created.Key, "reference": "A", "name": "by key"}, job("A", "name", "by reference")} {
		replaced, err := e.client.ReplaceRef(ctx, board, j)
		if err != nil {
			t.Fatal(err)
		}
		if replaced.Key != created.Key || replaced.UpdatedAt == created.UpdatedAt || replaced.CreatedAt != created.CreatedAt {
			t.Errorf("edit %d: ReplaceRef = %+v, want the key and created_at kept, updated_at moved from %s", i, replaced, created.UpdatedAt)
		}
		if got := e.listed(t, created.Key); got != replaced {
			t.Errorf("edit %d: listed %+v, want %+v as the edit answered", i, got, replaced)
		}
		created = replaced
	}

	if err := e.client.SetArchived(ctx, board, "A", true); err != nil {
		t.Fatal(err)
	}
	archived, err := e.client.ReplaceRef(ctx, board, job("A"))
	if err != nil || archived.ArchivedAt == "" {
		t.Errorf("ReplaceRef of an archived job = %+v, %v, want archived_at", archived, err)
	}

	if _, err := e.client.CreateRef(ctx, board, job("A")); !errors.Is(err, hrflow.ErrReferenceExists) {
		t.Errorf("CreateRef of a reference on the board: %v, want ErrReferenceExists", err)
	}
	if _, err := e.client.ReplaceRef(ctx, board, job("NOPE")); !errors.Is(err, hrflow.ErrNotFound) {
		t.Errorf("ReplaceRef of a missing job: %v, want ErrNotFound", err)
	}
	before := e.count(hrflowtest.RouteEditJob, -1)
	if _, err := e.client.ReplaceRef(ctx, board, hrflow.Job{"name": "x"}); err == nil || e.count(hrflowtest.RouteEditJob, -1) != before {
		t.Errorf("ReplaceRef without key or reference: %v, want an error and no call", err)
	}
}

// TestWriteRefTolerance runs CreateRef and ReplaceRef on answers of shapes
// no source rules out: the client takes what is there.
func TestWriteRefTolerance(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name, route, data string
		want              hrflow.JobRef
		wantErr           bool
	}{
		{"create: key only", hrflowtest.RouteCreateJob, `{"key":"` + key + `"}`, hrflow.JobRef{Key: key}, false},
		{"create: dates null, extra fields", hrflowtest.RouteCreateJob,
			`{"id":7,"key":"` + key + `","board":{"key":"b"},"reference":"A","created_at":null,"updated_at":null,"archived_at":null,"name":"n"}`,
			hrflow.JobRef{Key: key, Reference: "A"}, false},
		{"create: no key", hrflowtest.RouteCreateJob, `{"reference":"A"}`, hrflow.JobRef{}, true},
		{"create: no data", hrflowtest.RouteCreateJob, `null`, hrflow.JobRef{}, true},
		{"edit: no key in the answer", hrflowtest.RouteEditJob, `{"updated_at":"2026-01-01T00:00:00+0000"}`,
			hrflow.JobRef{Key: key, UpdatedAt: "2026-01-01T00:00:00+0000"}, false},
		{"edit: no data", hrflowtest.RouteEditJob, `null`, hrflow.JobRef{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"code":200,"message":"ok","data":` + tt.data + `,"meta":{}}`
			e := newEnv(t, envOptions{wrap: failFirst(1, tt.route, 200, "application/json", body, nil)})
			var got hrflow.JobRef
			var err error
			if tt.route == hrflowtest.RouteCreateJob {
				got, err = e.client.CreateRef(t.Context(), board, job("A"))
			} else {
				got, err = e.client.ReplaceRef(t.Context(), board, hrflow.Job{"key": key, "name": "n"})
			}
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %+v, %v; want %+v, error %t", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestJobAnswersWithIDAndBoard reads jobs as the API answers them, with
// "id" and "board", and sends one back whole: the client keeps them and
// the edit goes through.
func TestJobAnswersWithIDAndBoard(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	created, err := e.client.CreateJob(ctx, board, job("A", "summary", "S"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.client.GetJob(ctx, board, "A")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := got["board"].(map[string]any)
	if id, ok := got["id"].(float64); !ok || id < 0 || got["id"] != created["id"] || b["key"] != board || got["board_key"] != board {
		t.Errorf("GetJob id %v board %v board_key %v, want the created id and this board", got["id"], got["board"], got["board_key"])
	}
	got["summary"] = "changed"
	edited, err := e.client.EditJob(ctx, board, got)
	if err != nil {
		t.Fatalf("sending back the job as read: %v", err)
	}
	if edited["summary"] != "changed" || edited["id"] != created["id"] || edited.Key() != created.Key() {
		t.Errorf("edited %v", edited)
	}
	res, err := e.client.Upsert(ctx, board, job("A", "summary", "again"), hrflow.UpsertOptions{UpdateContent: true})
	if err != nil || res.Action != hrflow.ActionUpdated || res.Key != created.Key() {
		t.Errorf("Upsert of the job = %+v, %v, want updated %s", res, err, created.Key())
	}
}

// TestJobsShownTwice lists a board that shifted between two pages, so that
// the second page shows again jobs of the first: each is yielded once,
// whatever the shape of its key.
func TestJobsShownTwice(t *testing.T) {
	const k1, k2, k3 = "00000000000000000000000000000000000000a1", "00000000000000000000000000000000000000a2", "ODD-KEY"
	pages := map[string]string{
		"1": `[{"key":"` + k1 + `","reference":"A"},{"key":"` + k3 + `","reference":"C"}]`,
		"2": `[{"key":"` + k3 + `","reference":"C"},{"key":"` + k1 + `","reference":"A"},{"key":"` + k2 + `","reference":"B"}]`,
	}
	serve := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if routeOf(r) != hrflowtest.RouteListJobs {
				next.ServeHTTP(w, r)
				return
			}
			page := r.URL.Query().Get("page")
			data, ok := pages[page]
			if !ok {
				data = "[]"
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"code":200,"message":"List of jobs","data":%s,"meta":{"page":%s,"maxPage":2,"count":2,"total":4}}`, data, page)
		})
	}
	e := newEnv(t, envOptions{wrap: serve})
	var got []string
	for ref, err := range e.client.Jobs(t.Context(), board, hrflow.ListOptions{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ref.Reference)
	}
	if strings.Join(got, " ") != "A C B" {
		t.Errorf("listed %q, want A C B, each once", got)
	}
}
