package hrflowtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	readKey   = "askr_11111111111111111111111111111111"
	writeKey  = "askw_22222222222222222222222222222222"
	otherUser = "other@example.com"
)

var (
	keyRE  = regexp.MustCompile(`^[0-9a-f]{40}$`)
	timeRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000$`)
)

// fixedNow is the emulator's clock in tests.
var fixedNow = time.Date(2023, 6, 20, 15, 50, 32, 0, time.UTC)

// env is an emulator served on 127.0.0.1.
type env struct {
	em  *Emulator
	srv *httptest.Server
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return fixedNow }
	}
	if cfg.Keys == nil {
		cfg.Keys = []APIKey{{DefaultAPISecret, DefaultAPIUser}, {readKey, otherUser}, {writeKey, otherUser}}
	}
	em, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(em)
	t.Cleanup(srv.Close)
	return &env{em: em, srv: srv}
}

// reply is a decoded answer of the emulator.
type reply struct {
	status      int
	contentType string
	Code        int             `json:"code"`
	Message     string          `json:"message"`
	Data        json.RawMessage `json:"data"`
	Meta        json.RawMessage `json:"meta"`
	fields      map[string]json.RawMessage
}

type req struct {
	method, path string // path under APIPath, query included
	body         any    // JSON-encoded unless a string
	secret, user string // "" means the default key; "-" means no header
}

func (e *env) do(t *testing.T, r req) reply {
	t.Helper()
	a, err := e.try(r)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// try is do for goroutines other than the test's: it returns its error.
func (e *env) try(r req) (reply, error) {
	var rd io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(raw)
	}
	hr, err := http.NewRequest(r.method, e.srv.URL+APIPath+r.path, rd)
	if err != nil {
		return reply{}, err
	}
	secret, user := r.secret, r.user
	if secret == "" {
		secret = DefaultAPISecret
	}
	if user == "" {
		user = DefaultAPIUser
	}
	if secret != "-" {
		hr.Header.Set("X-API-KEY", secret)
	}
	if user != "-" {
		hr.Header.Set("X-USER-EMAIL", user)
	}
	resp, err := e.srv.Client().Do(hr)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	a := reply{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type")}
	if err := json.Unmarshal(raw, &a); err != nil {
		return reply{}, fmt.Errorf("%s %s: answer is not JSON: %v: %s", r.method, r.path, err, raw)
	}
	json.Unmarshal(raw, &a.fields)
	return a, nil
}

// want checks the status, the envelope and the message of an reply.
func (a reply) want(t *testing.T, status int, message string) {
	t.Helper()
	if a.status != status || a.Code != status {
		t.Errorf("status %d, code %d (%q); want %d", a.status, a.Code, a.Message, status)
	}
	if a.contentType != "application/json" {
		t.Errorf("Content-Type %q, want exactly application/json", a.contentType)
	}
	for _, f := range []string{"code", "message", "data", "meta"} {
		if _, ok := a.fields[f]; !ok {
			t.Errorf("answer without %q", f)
		}
	}
	if message != "" && a.Message != message {
		t.Errorf("message %q, want %q", a.Message, message)
	}
}

func (a reply) job(t *testing.T) map[string]any {
	t.Helper()
	var j map[string]any
	if err := json.Unmarshal(a.Data, &j); err != nil {
		t.Fatalf("data is not a job: %v: %s", err, a.Data)
	}
	return j
}

func getPath(ref string) string {
	return "/job/indexing?" + url.Values{"board_key": {DefaultBoardKey}, "reference": {ref}}.Encode()
}

func listPath(q url.Values) string {
	if q.Get("board_keys") == "" {
		q.Set("board_keys", `["`+DefaultBoardKey+`"]`)
	}
	return "/storing/jobs?" + q.Encode()
}

func flatJob(ref string, fields map[string]any) map[string]any {
	j := map[string]any{"board_key": DefaultBoardKey, "reference": ref, "name": "Job " + ref}
	for k, v := range fields {
		j[k] = v
	}
	return j
}

func TestAuth(t *testing.T) {
	e := newEnv(t, Config{})
	create := flatJob("A", nil)
	tests := []struct {
		name    string
		r       req
		status  int
		message string
	}{
		{"no key", req{method: "GET", path: getPath("A"), secret: "-"}, 401, "Unauthorized. Missing secret key"},
		{"no user", req{method: "GET", path: getPath("A"), user: "-"}, 401, "Unauthorized. Missing user email"},
		{"bad key echoed", req{method: "GET", path: getPath("A"), secret: "ask_bad"}, 401, "Unauthorized. Invalid secret key: ask_bad"},
		{"wrong user", req{method: "GET", path: getPath("A"), user: otherUser}, 401, "Unauthorized. Invalid user email: " + otherUser},
		{"user case-insensitive", req{method: "GET", path: getPath("A"), user: strings.ToUpper(DefaultAPIUser)}, 400, "Invalid parameters. Unable to find object: job"},
		{"read key cannot write", req{method: "POST", path: "/job/indexing", body: create, secret: readKey, user: otherUser}, 403, "Forbidden. Insufficient permissions: write access required"},
		{"read key reads", req{method: "GET", path: getPath("A"), secret: readKey, user: otherUser}, 400, "Invalid parameters. Unable to find object: job"},
		{"write key cannot read", req{method: "GET", path: getPath("A"), secret: writeKey, user: otherUser}, 403, "Forbidden. Insufficient permissions: read access required"},
		{"write key cannot list", req{method: "GET", path: listPath(url.Values{}), secret: writeKey, user: otherUser}, 403, ""},
		{"write key writes", req{method: "POST", path: "/job/indexing", body: create, secret: writeKey, user: otherUser}, 201, "Job created"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.do(t, tt.r).want(t, tt.status, tt.message)
		})
	}
}

func TestCreateAndGet(t *testing.T) {
	e := newEnv(t, Config{})
	t.Run("flat", func(t *testing.T) {
		a := e.do(t, req{method: "POST", path: "/job/indexing", body: flatJob("FLAT", map[string]any{"summary": "S", "created_at": "2025-08-04T18:00:50.137Z"})})
		a.want(t, 201, "Job created")
		j := a.job(t)
		if k, _ := j["key"].(string); !keyRE.MatchString(k) {
			t.Errorf("key %q, want 40 lowercase hex", j["key"])
		}
		if got := j["created_at"]; got != "2025-08-04T18:00:50.137Z" {
			t.Errorf("created_at %v, want the supplied value verbatim", got)
		}
		if got, _ := j["updated_at"].(string); !timeRE.MatchString(got) {
			t.Errorf("updated_at %q, want like 2023-06-20T15:50:32+0000", got)
		}
		for _, f := range []string{"url", "location", "sections", "skills", "tags", "culture", "ranges_date", "archived_at"} {
			if v, ok := j[f]; !ok || v != nil {
				t.Errorf("%s = %v (present %t), want null after a create", f, v, ok)
			}
		}
		g := e.do(t, req{method: "GET", path: getPath("FLAT")})
		g.want(t, 200, "Job details")
		if !bytes.Equal(g.Data, a.Data) {
			t.Errorf("GET data\n%s\nwant the created job\n%s", g.Data, a.Data)
		}
		byKey := e.do(t, req{method: "GET", path: "/job/indexing?board_key=" + DefaultBoardKey + "&key=" + j["key"].(string)})
		byKey.want(t, 200, "Job details")
	})
	t.Run("nested", func(t *testing.T) {
		a := e.do(t, req{method: "POST", path: "/job/indexing", body: map[string]any{
			"board_key": DefaultBoardKey,
			"job":       map[string]any{"reference": "NESTED", "name": "N", "tags": []any{map[string]any{"name": "t", "value": 1.5}}, "foo": 1},
		}})
		a.want(t, 201, "Job created")
		j := a.job(t)
		if j["reference"] != "NESTED" || j["name"] != "N" {
			t.Errorf("stored %v, want the nested job", j)
		}
		if got, _ := json.Marshal(j["tags"]); string(got) != `[{"name":"t","value":1.5}]` {
			t.Errorf("tags %s, want the values echoed as sent", got)
		}
		if _, ok := j["foo"]; ok {
			t.Errorf("an unknown field was kept: %v", j)
		}
	})
	t.Run("geopoint ignored", func(t *testing.T) {
		loc := map[string]any{"text": "Annecy", "lat": 45.9, "lng": 6.12, "geopoint": map[string]any{"lat": 1, "lon": 2}, "fields": nil}
		j := e.do(t, req{method: "POST", path: "/job/indexing", body: flatJob("GEO", map[string]any{"location": loc})}).job(t)
		got, _ := json.Marshal(j["location"])
		if want := `{"fields":null,"lat":45.9,"lng":6.12,"text":"Annecy"}`; string(got) != want {
			t.Errorf("location %s, want %s", got, want)
		}
	})
	tests := []struct {
		name    string
		body    any
		status  int
		message string
	}{
		{"duplicate reference", flatJob("FLAT", nil), 400, "Invalid parameters. Reference already exists: FLAT"},
		{"non-null key", flatJob("K", map[string]any{"key": strings.Repeat("a", 40)}), 400, "Invalid parameters. key: Must be null on creation."},
		{"null key accepted", flatJob("K2", map[string]any{"key": nil}), 201, "Job created"},
		{"no name", map[string]any{"board_key": DefaultBoardKey, "reference": "N1"}, 400, "Invalid parameters. name: Missing data for required field."},
		{"sections not a list", flatJob("S1", map[string]any{"sections": "x"}), 400, "Invalid parameters. sections: Not a valid list."},
		{"location not an object", flatJob("L1", map[string]any{"location": "x"}), 400, "Invalid parameters. location: Not a valid mapping type."},
		{"[] accepted everywhere, as an edit answers", flatJob("L2", map[string]any{"location": []any{}, "summary": []any{}}), 201, "Job created"},
		{"unknown board", map[string]any{"board_key": strings.Repeat("f", 40), "name": "x"}, 400, "Invalid parameters. Unable to find object: board"},
		{"no board", map[string]any{"name": "x"}, 400, "Invalid parameters. board_key: Missing data for required field."},
		{"not JSON", "{", 400, "Invalid parameters. The body must be a JSON object."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.do(t, req{method: "POST", path: "/job/indexing", body: tt.body}).want(t, tt.status, tt.message)
		})
	}
	t.Run("get errors", func(t *testing.T) {
		e.do(t, req{method: "GET", path: getPath("NOPE")}).want(t, 400, "Invalid parameters. Unable to find object: job")
		e.do(t, req{method: "GET", path: "/job/indexing?board_key=" + strings.Repeat("f", 40) + "&reference=FLAT"}).want(t, 400, "Invalid parameters. Unable to find object: board")
		e.do(t, req{method: "GET", path: "/job/indexing?board_key=" + DefaultBoardKey}).want(t, 400, "")
	})
}

func TestEditFullReplace(t *testing.T) {
	e := newEnv(t, Config{})
	created := e.do(t, req{method: "POST", path: "/job/indexing", body: flatJob("E", map[string]any{
		"summary": "old", "url": "http://x", "created_at": "2025-01-01T00:00:00Z",
		"skills": []any{map[string]any{"name": "Go", "type": "hard", "value": nil}},
	})}).job(t)
	key := created["key"].(string)
	e.do(t, req{method: "PATCH", path: "/job/indexing/archive", body: map[string]any{"board_key": DefaultBoardKey, "key": key, "is_archive": 1}}).want(t, 200, "Job archived")

	a := e.do(t, req{method: "PUT", path: "/job/indexing", body: map[string]any{"board_key": DefaultBoardKey, "key": key, "reference": "E", "name": "new"}})
	a.want(t, 200, "Job edited")
	j := a.job(t)
	if j["name"] != "new" || j["key"] != key {
		t.Errorf("edited job %v, want name new and the same key", j)
	}
	for _, f := range []string{"summary", "url", "skills", "location", "culture"} {
		if got, _ := json.Marshal(j[f]); string(got) != "[]" {
			t.Errorf("%s = %s, want [] after an edit that does not supply it", f, got)
		}
	}
	if j["created_at"] != "2025-01-01T00:00:00Z" {
		t.Errorf("created_at %v, want it kept", j["created_at"])
	}
	if at, _ := j["archived_at"].(string); !timeRE.MatchString(at) {
		t.Errorf("archived_at %v: an edit must not unarchive", j["archived_at"])
	}

	// by reference, nested
	e.do(t, req{method: "PUT", path: "/job/indexing", body: map[string]any{"board_key": DefaultBoardKey, "job": map[string]any{"reference": "E", "name": "by ref"}}}).want(t, 200, "Job edited")
	if got := e.do(t, req{method: "GET", path: getPath("E")}).job(t)["name"]; got != "by ref" {
		t.Errorf("name %v after an edit by reference", got)
	}
	e.do(t, req{method: "POST", path: "/job/indexing", body: flatJob("OTHER", nil)}).want(t, 201, "")
	e.do(t, req{method: "PUT", path: "/job/indexing", body: map[string]any{"board_key": DefaultBoardKey, "key": key, "reference": "OTHER", "name": "x"}}).want(t, 400, "Invalid parameters. Reference already exists: OTHER")
	e.do(t, req{method: "PUT", path: "/job/indexing", body: map[string]any{"board_key": DefaultBoardKey, "reference": "NOPE", "name": "x"}}).want(t, 400, "Invalid parameters. Unable to find object: job")
	e.do(t, req{method: "PUT", path: "/job/indexing", body: map[string]any{"board_key": DefaultBoardKey, "name": "x"}}).want(t, 400, "")
}

func TestArchiveFlags(t *testing.T) {
	e := newEnv(t, Config{})
	key := e.do(t, req{method: "POST", path: "/job/indexing", body: flatJob("A", nil)}).job(t)["key"].(string)
	tests := []struct {
		flag     any
		byKey    bool
		archived bool
		message  string
	}{
		{1, false, true, "Job archived"},
		{0, true, false, "Job unarchived"},
		{true, true, true, "Job archived"},
		{false, false, false, "Job unarchived"},
		{"1", false, true, "Job archived"},
		{"false", false, false, "Job unarchived"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/key=%t", tt.flag, tt.byKey), func(t *testing.T) {
			body := map[string]any{"board_key": DefaultBoardKey, "is_archive": tt.flag}
			if tt.byKey {
				body["key"] = key
			} else {
				body["reference"] = "A"
			}
			a := e.do(t, req{method: "PATCH", path: "/job/indexing/archive", body: body})
			a.want(t, 200, tt.message)
			if string(a.Data) != `{"key":"`+key+`"}` {
				t.Errorf("data %s, want the key", a.Data)
			}
			j := e.do(t, req{method: "GET", path: getPath("A")}).job(t)
			at, _ := j["archived_at"].(string)
			if tt.archived != (at != "") || (at != "" && !timeRE.MatchString(at)) {
				t.Errorf("archived_at %v, want archived %t", j["archived_at"], tt.archived)
			}
		})
	}
	for _, bad := range []any{2, "yes", nil} {
		e.do(t, req{method: "PATCH", path: "/job/indexing/archive", body: map[string]any{"board_key": DefaultBoardKey, "reference": "A", "is_archive": bad}}).want(t, 400, "Invalid parameters. is_archive: Not a valid boolean.")
	}
	e.do(t, req{method: "PATCH", path: "/job/indexing/archive", body: map[string]any{"board_key": DefaultBoardKey, "reference": "A"}}).want(t, 400, "Invalid parameters. is_archive: Missing data for required field.")
	e.do(t, req{method: "PATCH", path: "/job/indexing/archive", body: map[string]any{"board_key": DefaultBoardKey, "reference": "NOPE", "is_archive": 1}}).want(t, 400, "Invalid parameters. Unable to find object: job")
}

type listMeta struct{ Page, MaxPage, Count, Total int }

func (a reply) meta(t *testing.T) listMeta {
	t.Helper()
	var m listMeta
	if err := json.Unmarshal(a.Meta, &m); err != nil {
		t.Fatalf("meta %s: %v", a.Meta, err)
	}
	return m
}

func (a reply) refs(t *testing.T) []map[string]any {
	t.Helper()
	var l []map[string]any
	if err := json.Unmarshal(a.Data, &l); err != nil {
		t.Fatalf("data %s: %v", a.Data, err)
	}
	return l
}

func TestList(t *testing.T) {
	e := newEnv(t, Config{})
	const n = 7
	// created_at in an order unrelated to the creation order
	for i := range n {
		ref := fmt.Sprintf("R%d", i)
		day := (i * 3) % n
		e.do(t, req{method: "POST", path: "/job/indexing", body: flatJob(ref, map[string]any{"created_at": fmt.Sprintf("2025-08-%02dT10:00:00Z", day+1)})}).want(t, 201, "")
	}
	e.do(t, req{method: "PATCH", path: "/job/indexing/archive", body: map[string]any{"board_key": DefaultBoardKey, "reference": "R1", "is_archive": 1}}).want(t, 200, "")

	var seen []string
	for page := 1; page <= 3; page++ {
		a := e.do(t, req{method: "GET", path: listPath(url.Values{"page": {fmt.Sprint(page)}, "limit": {"3"}, "order_by": {"desc"}, "sort_by": {"created_at"}, "return_job": {"false"}})})
		a.want(t, 200, "List of jobs")
		wantCount := min(3, n-3*(page-1))
		if m := a.meta(t); m != (listMeta{page, 3, wantCount, n}) {
			t.Errorf("page %d meta %+v, want %+v", page, m, listMeta{page, 3, wantCount, n})
		}
		for _, r := range a.refs(t) {
			seen = append(seen, r["created_at"].(string))
			if _, ok := r["name"]; ok {
				t.Errorf("return_job=false listed a full job: %v", r)
			}
			if r["reference"] == "R1" {
				if at, _ := r["archived_at"].(string); at == "" {
					t.Errorf("archived job listed without archived_at: %v", r)
				}
			} else if r["archived_at"] != nil {
				t.Errorf("live job listed with archived_at: %v", r)
			}
		}
	}
	for i := 1; i < len(seen); i++ {
		if seen[i-1] < seen[i] {
			t.Errorf("order_by=desc listed %v", seen)
			break
		}
	}
	if len(seen) != n {
		t.Errorf("listed %d jobs, want %d", len(seen), n)
	}

	past := e.do(t, req{method: "GET", path: listPath(url.Values{"page": {"9"}, "limit": {"3"}})})
	past.want(t, 200, "List of jobs")
	if string(past.Data) != "[]" || past.meta(t) != (listMeta{9, 3, 0, n}) {
		t.Errorf("past the end: data %s meta %s, want [] and page 9 of 3", past.Data, past.Meta)
	}

	asc := e.do(t, req{method: "GET", path: listPath(url.Values{"order_by": {"asc"}, "return_job": {"True"}})}).refs(t)
	if asc[0]["created_at"] != "2025-08-01T10:00:00Z" || asc[0]["name"] == nil {
		t.Errorf("asc with return_job first %v, want the oldest full job", asc[0])
	}

	live := e.do(t, req{method: "GET", path: listPath(url.Values{"archived": {"false"}})})
	if m := live.meta(t); m.Total != n-1 {
		t.Errorf("archived=false total %d, want %d", m.Total, n-1)
	}
	arch := e.do(t, req{method: "GET", path: listPath(url.Values{"archived": {"true"}})}).refs(t)
	if len(arch) != 1 || arch[0]["reference"] != "R1" {
		t.Errorf("archived=true listed %v, want R1 only", arch)
	}

	for _, bad := range []url.Values{
		{"board_keys": {DefaultBoardKey}},
		{"board_keys": {`["` + strings.Repeat("f", 40) + `"]`}},
		{"page": {"0"}},
		{"limit": {"0"}},
		{"limit": {fmt.Sprint(MaxListLimit + 1)}},
		{"order_by": {"up"}},
		{"sort_by": {"name"}},
		{"return_job": {"maybe"}},
	} {
		e.do(t, req{method: "GET", path: listPath(bad)}).want(t, 400, "")
	}
}

// TestListMaxPage: an emulator whose largest page is smaller than the
// limit asked serves pages of its own size, and counts them so; or, asked
// to, refuses the limit with a 400 naming it.
func TestListMaxPage(t *testing.T) {
	const n = 25
	for _, refuse := range []bool{false, true} {
		e := newEnv(t, Config{MaxPage: 10, RefuseLargePage: refuse})
		for i := range n {
			e.do(t, req{method: "POST", path: "/job/indexing", body: flatJob(fmt.Sprintf("R%02d", i), nil)}).want(t, 201, "")
		}
		a := e.do(t, req{method: "GET", path: listPath(url.Values{"page": {"3"}, "limit": {"100"}})})
		if refuse {
			a.want(t, 400, "Invalid parameters. limit: Must be an integer between 1 and 10.")
		} else {
			a.want(t, 200, "List of jobs")
			if m := a.meta(t); m != (listMeta{3, 3, 5, n}) || len(a.refs(t)) != 5 {
				t.Errorf("page 3 of 100 from pages of 10: meta %+v, %d jobs; want page 3 of 3 holding the last 5", m, len(a.refs(t)))
			}
		}
		a = e.do(t, req{method: "GET", path: listPath(url.Values{"page": {"2"}, "limit": {"10"}})})
		a.want(t, 200, "List of jobs")
		if m := a.meta(t); m != (listMeta{2, 3, 10, n}) {
			t.Errorf("refuse %t: page 2 of 10: meta %+v, want page 2 of 3, 10 jobs", refuse, m)
		}
	}
}

func TestParsing(t *testing.T) {
	e := newEnv(t, Config{})
	text := "Équipe à Chamonix-Mont-Blanc : maîtrise d’Excel, de l'anglais et sens de\nl'organisation ; Permis B, Bac +2."
	a := e.do(t, req{method: "POST", path: "/text/parsing", body: map[string]any{"texts": []string{text, ""}}})
	a.want(t, 200, "Text parsed")
	var got []struct {
		Text     string
		Entities []Entity
	}
	if err := json.Unmarshal(a.Data, &got); err != nil || len(got) != 2 {
		t.Fatalf("data %s: %v", a.Data, err)
	}
	runes := []rune(got[0].Text)
	var spans []string
	for _, en := range got[0].Entities {
		spans = append(spans, en.Label+":"+string(runes[en.Start:en.End]))
	}
	want := []string{"location:Chamonix-Mont-Blanc", "skill_hard:Excel", "language:anglais", "skill_soft:sens de\nl'organisation", "certification:Permis B", "course:Bac +2"}
	if strings.Join(spans, "|") != strings.Join(want, "|") {
		t.Errorf("entities\n%q\nwant\n%q", spans, want)
	}
	if len(got[1].Entities) != 0 {
		t.Errorf("empty text gave %v", got[1].Entities)
	}
	e.do(t, req{method: "POST", path: "/text/parsing", body: map[string]any{"texts": make([]string, MaxTexts)}}).want(t, 400, "Invalid parameters. texts: Must hold fewer than 32 texts, got 32.")
	e.do(t, req{method: "POST", path: "/text/parsing", body: map[string]any{"texts": make([]string, MaxTexts-1)}}).want(t, 200, "")
	e.do(t, req{method: "POST", path: "/text/parsing", body: map[string]any{"texts": []string{}}}).want(t, 400, "")
	e.do(t, req{method: "POST", path: "/text/parsing", body: map[string]any{"text": "Python"}}).want(t, 200, "")
}

func TestExtract(t *testing.T) {
	tests := []struct {
		text string
		want []string // label:span
	}{
		{"", nil},
		{"EXCEL et Word", []string{"skill_hard:EXCEL", "skill_hard:Word"}},
		{"Excellent", nil},                  // no partial word
		{"superexcel", nil},                 // no partial word
		{"bac+2", []string{"course:bac+2"}}, // longest term
		{"Bac +2 ou bac", []string{"course:Bac +2", "course:bac"}},
		{"C++ et c", []string{"skill_hard:C++"}},
		{"Haute-Savoie", []string{"location:Haute-Savoie"}},
		{"sens  de   l’organisation", []string{"skill_soft:sens  de   l’organisation"}},
		{"français, Anglais", []string{"language:français", "language:Anglais"}},
		{"😀 Python", []string{"skill_hard:Python"}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			rs := []rune(tt.text)
			var got []string
			for _, en := range Extract(tt.text) {
				got = append(got, en.Label+":"+string(rs[en.Start:en.End]))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("Extract(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
	if got := Extract("😀 Python")[0]; got.Start != 2 || got.End != 8 {
		t.Errorf("offsets %+v, want code points 2..8", got)
	}
}

// TestExtractFixtures checks the extractor on real offer texts: every span
// is a dictionary term, on word boundaries.
func TestExtractFixtures(t *testing.T) {
	jobs := fixtureJobs(t, 200)
	terms := map[string]string{}
	for label, ts := range dictionary {
		for _, term := range ts {
			terms[foldString(term)] = label
		}
	}
	found := 0
	for _, j := range jobs {
		text := hrflow.EnrichmentText(j)
		rs := []rune(text)
		for _, en := range Extract(text) {
			span := string(rs[en.Start:en.End])
			if terms[foldString(span)] != en.Label {
				t.Errorf("%s: span %q labelled %s is not a %s term", j.Reference(), span, en.Label, en.Label)
			}
			if en.Start > 0 && isWordRune(rs[en.Start-1]) {
				t.Errorf("%s: span %q starts inside a word", j.Reference(), span)
			}
			found++
		}
	}
	if found == 0 {
		t.Error("no entity in the fixture texts")
	}
}

func foldString(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		r = fold(r)
		if r == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

func TestRoutesAndFaults(t *testing.T) {
	e := newEnv(t, Config{})
	e.do(t, req{method: "GET", path: "/nope"}).want(t, 404, "Not found")
	e.do(t, req{method: "DELETE", path: "/job/indexing"}).want(t, 405, "Method not allowed")

	admin := func(method, path, body string) (int, string) {
		t.Helper()
		r, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
		resp, err := e.srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := admin("PUT", "/_emulator/faults", `{"error_rate":1,"error_statuses":[503]}`); code != 200 {
		t.Fatalf("PUT faults: %d %s", code, body)
	}
	e.do(t, req{method: "GET", path: getPath("A")}).want(t, 503, "Service Unavailable")
	if code, _ := admin("PUT", "/_emulator/faults", `{}`); code != 200 {
		t.Fatal("PUT faults {}")
	}
	e.do(t, req{method: "POST", path: "/job/indexing", body: flatJob("A", nil)}).want(t, 201, "")
	e.do(t, req{method: "POST", path: "/job/indexing", body: flatJob("A", nil)}).want(t, 400, "")

	code, body := admin("GET", "/_emulator/stats", "")
	var st emulator.Stats
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("GET stats: %d %s %v", code, body, err)
	}
	checks := []struct {
		route  string
		status int
		want   int64
	}{
		{RouteGetJob, 503, 1},
		{RouteCreateJob, 201, 1},
		{RouteCreateJob, 400, 1},
		{RouteOther, 404, 1},
		{RouteOther, 405, 1},
	}
	for _, c := range checks {
		if got := st.Count(c.route, c.status); got != c.want {
			t.Errorf("stats %s %d = %d, want %d (all: %v)", c.route, c.status, got, c.want, st.Requests)
		}
	}
	if e.em.Stats().Total(RouteCreateJob) != 2 {
		t.Errorf("Stats() disagrees with /_emulator/stats")
	}
	// the admin routes are not under the API path
	if code, _ := admin("GET", APIPath+"/_emulator/stats", ""); code != 401 && code != 404 {
		t.Errorf("admin route under the API path answered %d", code)
	}
}

func TestSeedJobAndSnapshot(t *testing.T) {
	e := newEnv(t, Config{})
	seeded, err := e.em.SeedJob(DefaultBoardKey, hrflow.Job{"reference": "B", "name": "stale"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !seeded.Archived() || !keyRE.MatchString(seeded.Key()) {
		t.Errorf("seeded %v, want archived with a key", seeded)
	}
	if _, err := e.em.SeedJob(DefaultBoardKey, hrflow.Job{"reference": "A", "name": "live"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.em.SeedJob(DefaultBoardKey, hrflow.Job{"reference": "A", "name": "dup"}, false); err == nil {
		t.Error("SeedJob stored a duplicate reference")
	}
	if _, err := e.em.SeedJob(strings.Repeat("e", 40), hrflow.Job{"name": "x"}, false); err == nil {
		t.Error("SeedJob stored on a board that does not exist")
	}
	jobs := e.em.Jobs(DefaultBoardKey)
	if len(jobs) != 2 || jobs[0].Reference() != "A" || jobs[1].Reference() != "B" || !jobs[1].Archived() || jobs[0].Archived() {
		t.Errorf("Jobs = %v, want A (live) then B (archived)", jobs)
	}
	if n := len(e.em.Stats().Requests); n != 0 {
		t.Errorf("SeedJob counted in stats: %v", e.em.Stats().Requests)
	}
	if e.em.Jobs(strings.Repeat("e", 40)) != nil {
		t.Error("Jobs of an unknown board is not nil")
	}
	other := strings.Repeat("ab", 20)
	e.em.AddBoard(other)
	e.do(t, req{method: "POST", path: "/job/indexing", body: map[string]any{"board_key": other, "name": "x", "reference": "A"}}).want(t, 201, "")
}

func TestConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Keys: []APIKey{{"secret", "u"}}},
		{Keys: []APIKey{{"ask_", "u"}}},
		{Keys: []APIKey{{"ask_1", ""}}},
		{Boards: []string{"board"}},
		{Boards: []string{strings.Repeat("A", 40)}},
		{Faults: emulator.Config{ErrorRate: 2}},
		{MaxPage: -1},
		{MaxPage: MaxListLimit + 1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	em, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("AddBoard accepted a bad key")
			}
		}()
		em.AddBoard("nope")
	}()
	if got := BaseURL("http://127.0.0.1:1/"); got != "http://127.0.0.1:1/v1" {
		t.Errorf("BaseURL = %q", got)
	}
}

// TestConcurrent exercises the stores under the race detector.
func TestConcurrent(t *testing.T) {
	e := newEnv(t, Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				ref := fmt.Sprintf("W%d-%d", w, i)
				for _, r := range []req{
					{method: "POST", path: "/job/indexing", body: flatJob(ref, map[string]any{"created_at": fmt.Sprintf("2025-08-01T10:%02d:00Z", i)})},
					{method: "PATCH", path: "/job/indexing/archive", body: map[string]any{"board_key": DefaultBoardKey, "reference": ref, "is_archive": i % 2}},
					{method: "GET", path: listPath(url.Values{"limit": {"10"}, "archived": {"false"}})},
				} {
					a, err := e.try(r)
					if err == nil && a.status >= 300 {
						err = fmt.Errorf("%s %s: %d %s", r.method, r.path, a.status, a.Message)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	a := e.do(t, req{method: "GET", path: listPath(url.Values{"archived": {"false"}})})
	if m := a.meta(t); m.Total != 4*13 {
		t.Errorf("live total %d, want %d", m.Total, 4*13)
	}
	if n := len(e.em.Jobs(DefaultBoardKey)); n != 100 {
		t.Errorf("%d jobs, want 100", n)
	}
}
