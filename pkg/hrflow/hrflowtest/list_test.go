package hrflowtest

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// listRefs lists with q and returns the references listed, in order, and
// the meta.
func (e *env) listRefs(t *testing.T, q url.Values) ([]string, listMeta) {
	t.Helper()
	a := e.do(t, req{method: "GET", path: listPath(q)})
	a.want(t, 200, "List of jobs")
	var refs []string
	for _, r := range a.refs(t) {
		ref, _ := r["reference"].(string)
		refs = append(refs, ref)
	}
	return refs, a.meta(t)
}

// TestListFilters checks every filter the SDK's storing.list sends: each
// selects what it names, alone and together, and the meta counts what is
// selected.
func TestListFilters(t *testing.T) {
	e := newEnv(t, Config{})
	annecy := map[string]any{"text": "Annecy", "lat": 45.8992, "lng": 6.1294}
	geneva := map[string]any{"text": "Genève", "lat": 46.2044, "lng": 6.1432} // 34 km from Annecy
	paris := map[string]any{"text": "Paris", "lat": 48.8566, "lng": 2.3522}
	jobs := []map[string]any{
		flatJob("REF1", map[string]any{"name": "Vendeur", "created_at": "2025-08-01T10:00:00Z", "location": annecy}),
		flatJob("REF2", map[string]any{"name": "Serveur", "created_at": "2025-08-02T23:59:59Z", "location": geneva}),
		flatJob("REF3", map[string]any{"name": "Vendeur", "created_at": "2025-08-03T00:00:00Z", "location": paris}),
		flatJob("REF4", map[string]any{"name": "vendeur", "created_at": "2025-08-04T12:00:00Z", "location": map[string]any{"text": "nowhere"}}),
		flatJob("REF5", map[string]any{"name": "Vendeur", "created_at": "2025-08-05T12:00:00Z"}),
	}
	keys := map[string]string{}
	for _, j := range jobs {
		a := e.do(t, req{method: "POST", path: "/job/indexing", body: j})
		a.want(t, 201, "")
		keys[j["reference"].(string)] = a.job(t)["key"].(string)
	}
	e.do(t, req{method: "PATCH", path: "/job/indexing/archive", body: map[string]any{"board_key": DefaultBoardKey, "reference": "REF5", "is_archive": 1}}).want(t, 200, "")
	tests := []struct {
		name string
		q    url.Values
		want []string // newest first
	}{
		{"none", url.Values{}, []string{"REF5", "REF4", "REF3", "REF2", "REF1"}},
		{"reference", url.Values{"reference": {"REF3"}}, []string{"REF3"}},
		{"reference not there", url.Values{"reference": {"NOPE"}}, nil},
		{"key", url.Values{"key": {keys["REF2"]}}, []string{"REF2"}},
		{"key and reference of two jobs", url.Values{"key": {keys["REF2"]}, "reference": {"REF3"}}, nil},
		{"key not a key", url.Values{"key": {"nope"}}, nil},
		{"name, exact", url.Values{"name": {"Vendeur"}}, []string{"REF5", "REF3", "REF1"}},
		{"name and archived=false", url.Values{"name": {"Vendeur"}, "archived": {"false"}}, []string{"REF3", "REF1"}},
		{"reference and archived=false", url.Values{"reference": {"REF5"}, "archived": {"false"}}, nil},
		{"reference and archived=true", url.Values{"reference": {"REF5"}, "archived": {"true"}}, []string{"REF5"}},
		{"created_at_min, a day", url.Values{"created_at_min": {"2025-08-03"}}, []string{"REF5", "REF4", "REF3"}},
		{"created_at_max, a day, whole", url.Values{"created_at_max": {"2025-08-02"}}, []string{"REF2", "REF1"}},
		{"created_at between", url.Values{"created_at_min": {"2025-08-02"}, "created_at_max": {"2025-08-04"}, "order_by": {"asc"}}, []string{"REF2", "REF3", "REF4"}},
		{"created_at_min, a time", url.Values{"created_at_min": {"2025-08-02T23:59:59Z"}, "created_at_max": {"2025-08-03T00:00:00+0000"}}, []string{"REF3", "REF2"}},
		{"created_at and archived=false", url.Values{"created_at_min": {"2025-08-04"}, "archived": {"false"}}, []string{"REF4"}},
		{"near Annecy, 10 km", url.Values{"location_lat": {"45.9"}, "location_lon": {"6.13"}, "location_dist": {"10"}}, []string{"REF1"}},
		{"near Annecy, 50 km", url.Values{"location_lat": {"45.9"}, "location_lon": {"6.13"}, "location_dist": {"50"}}, []string{"REF2", "REF1"}},
		{"near Annecy, 50 km, name", url.Values{"location_lat": {"45.9"}, "location_lon": {"6.13"}, "location_dist": {"50"}, "name": {"Serveur"}}, []string{"REF2"}},
		{"near Annecy, 50 km, created_at", url.Values{"location_lat": {"45.9"}, "location_lon": {"6.13"}, "location_dist": {"50"}, "created_at_max": {"2025-08-01"}}, []string{"REF1"}},
		{"empty values are absent", url.Values{"reference": {""}, "name": {""}}, []string{"REF5", "REF4", "REF3", "REF2", "REF1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, meta := e.listRefs(t, tt.q)
			if !slices.Equal(got, tt.want) {
				t.Errorf("listed %q, want %q", got, tt.want)
			}
			if meta.Total != len(tt.want) || meta.Count != len(tt.want) {
				t.Errorf("meta %+v, want total and count %d", meta, len(tt.want))
			}
		})
	}
	t.Run("paged", func(t *testing.T) {
		q := url.Values{"name": {"Vendeur"}, "limit": {"2"}, "page": {"2"}}
		got, meta := e.listRefs(t, q)
		if !slices.Equal(got, []string{"REF1"}) || meta != (listMeta{2, 2, 1, 3}) {
			t.Errorf("page 2 of name=Vendeur by 2: %q %+v, want [REF1] {2 2 1 3}", got, meta)
		}
	})
}

// TestListRefused checks that a parameter the emulator cannot honour is a
// 400 naming it, never ignored.
func TestListRefused(t *testing.T) {
	e := newEnv(t, Config{})
	tests := []struct {
		q    url.Values
		want string // in the message
	}{
		{url.Values{"refrence": {"REF3"}}, "refrence: Unknown field."},
		{url.Values{"location_lat": {"45.9"}, "location_lon": {"6.1"}}, "location_dist: Missing data"},
		{url.Values{"location_dist": {"10"}}, "location_lat: Missing data"},
		{url.Values{"location_lat": {"91"}, "location_lon": {"6.1"}, "location_dist": {"10"}}, "location_lat: Must be a number"},
		{url.Values{"location_lat": {"45"}, "location_lon": {"east"}, "location_dist": {"10"}}, "location_lon: Must be a number"},
		{url.Values{"location_lat": {"45"}, "location_lon": {"6"}, "location_dist": {"-1"}}, "location_dist: Must be a number"},
		{url.Values{"created_at_min": {"yesterday"}}, "created_at_min: Not a valid date"},
		{url.Values{"created_at_max": {"2025-13-01"}}, "created_at_max: Not a valid date"},
		{url.Values{"sort_by": {"location"}}, "sort_by: Must be one of"},
		{url.Values{"archived": {"maybe"}}, "archived: Not a valid boolean."},
	}
	for _, tt := range tests {
		a := e.do(t, req{method: "GET", path: listPath(tt.q)})
		a.want(t, 400, "")
		if !strings.Contains(a.Message, tt.want) {
			t.Errorf("%v: message %q, want it to name the parameter: %q", tt.q, a.Message, tt.want)
		}
	}
}

// TestListRefFields checks that a listing without return_job shows, for
// every job, its key, reference, created_at, updated_at and archived_at,
// null where the job has none, as the writes answered them.
func TestListRefFields(t *testing.T) {
	e := newEnv(t, Config{})
	written := map[string]map[string]any{}
	for _, body := range []map[string]any{
		flatJob("WITH", map[string]any{"created_at": "2025-08-01T10:00:00Z", "updated_at": "2025-08-02T10:00:00Z"}),
		{"board_key": DefaultBoardKey, "name": "no reference"},
	} {
		j := e.do(t, req{method: "POST", path: "/job/indexing", body: body}).job(t)
		written[j["key"].(string)] = j
	}
	refs := e.do(t, req{method: "GET", path: listPath(url.Values{})}).refs(t)
	if len(refs) != 2 {
		t.Fatalf("listed %v", refs)
	}
	for _, r := range refs {
		w := written[fmt.Sprint(r["key"])]
		if w == nil {
			t.Fatalf("listed %v, not a job written", r)
		}
		for _, f := range []string{"key", "reference", "created_at", "updated_at", "archived_at"} {
			if v, ok := r[f]; !ok || v != w[f] {
				t.Errorf("listed %s = %v (present %t), want %v as written", f, v, ok, w[f])
			}
		}
	}
}

// TestListLargeBoard pages through a board whose jobs came in an order
// unrelated to their created_at, some archived, and compares every page of
// every way to list it with a sort of the whole board.
func TestListLargeBoard(t *testing.T) {
	e := newEnv(t, Config{})
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 2000
	type job struct {
		ref      string
		created  time.Time
		archived bool
	}
	var all []job
	base := time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		j := job{fmt.Sprintf("J%04d", i), base.Add(time.Duration(rng.IntN(20*24)) * time.Hour), rng.IntN(5) == 0}
		if _, err := e.em.SeedJob(DefaultBoardKey, hrflow.Job{"reference": j.ref, "name": "x", "created_at": j.created.Format(time.RFC3339)}, j.archived); err != nil {
			t.Fatal(err)
		}
		all = append(all, j) // seeded in order: ties in created_at keep it
	}
	slices.SortStableFunc(all, func(a, b job) int { return a.created.Compare(b.created) })
	lo, hi := base.AddDate(0, 0, 5), base.AddDate(0, 0, 12)
	for _, c := range []struct {
		name string
		q    url.Values
		keep func(job) bool
	}{
		{"all", url.Values{}, func(job) bool { return true }},
		{"live", url.Values{"archived": {"false"}}, func(j job) bool { return !j.archived }},
		{"archived", url.Values{"archived": {"true"}}, func(j job) bool { return j.archived }},
		{"created_at", url.Values{"created_at_min": {lo.Format(time.DateOnly)}, "created_at_max": {hi.Format(time.DateOnly)}},
			func(j job) bool { return !j.created.Before(lo) && j.created.Before(hi.AddDate(0, 0, 1)) }},
		{"live, created_at", url.Values{"archived": {"false"}, "created_at_min": {lo.Format(time.DateOnly)}},
			func(j job) bool { return !j.archived && !j.created.Before(lo) }},
	} {
		var want []string
		for _, j := range all {
			if c.keep(j) {
				want = append(want, j.ref)
			}
		}
		for _, desc := range []bool{false, true} {
			w := slices.Clone(want)
			q := url.Values{"limit": {"97"}, "order_by": {"asc"}}
			if desc {
				slices.Reverse(w)
				q.Set("order_by", "desc")
			}
			for k, v := range c.q {
				q[k] = v
			}
			var got []string
			for page := 1; ; page++ {
				q.Set("page", fmt.Sprint(page))
				refs, meta := e.listRefs(t, q)
				if meta.Total != len(w) || meta.MaxPage != (len(w)+96)/97 {
					t.Fatalf("%s desc=%t page %d: meta %+v, want total %d", c.name, desc, page, meta, len(w))
				}
				if len(refs) == 0 {
					break
				}
				got = append(got, refs...)
			}
			if !slices.Equal(got, w) {
				t.Errorf("%s desc=%t: pages differ from the sorted board (%d jobs listed, want %d)", c.name, desc, len(got), len(w))
			}
		}
	}
}

func TestContentField(t *testing.T) {
	doc := []byte(`"name":"Vendeur \"H/F\"","url":null,"summary":"a, b: {c} [d]","location":{"lat":45.9,"lng":6.1,"fields":{"x":[1,"]"]}},"sections":[]`)
	for _, tt := range []struct{ field, want string }{
		{"name", `"Vendeur \"H/F\""`},
		{"url", `null`},
		{"location", `{"lat":45.9,"lng":6.1,"fields":{"x":[1,"]"]}}`},
		{"sections", `[]`},
		{"tags", ``},
	} {
		if got := string(contentField(doc, tt.field)); got != tt.want {
			t.Errorf("contentField(%s) = %s, want %s", tt.field, got, tt.want)
		}
	}
	if got := contentField([]byte(`"name":`), "name"); got != nil {
		t.Errorf("truncated document: %s, want nil", got)
	}
}
