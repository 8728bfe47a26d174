package hrflowtest

// Checks modelled on the response schemas of HrFlow's official Python SDK
// tests (tests/utils/schemas.py): what the SDK's own test suite asserts
// about the answers of the real API, asserted here of the emulator's.

import (
	"encoding/json"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// sdkParsingKeys are the keys of TextParsingDataItemParsing, every one a
// required list of strings.
var sdkParsingKeys = []string{
	"certifications", "companies", "courses", "dates", "durations", "education_titles", "emails",
	"first_names", "interests", "job_titles", "languages", "last_names", "locations", "phones",
	"schools", "skills_hard", "skills_soft", "tasks",
}

// sdkParsingKey is the parsing key of an entity label, as the SDK's schema
// maps it: skill_hard is skills_hard, company is companies, the others take
// an s.
func sdkParsingKey(label string) string {
	switch {
	case strings.HasPrefix(label, "skill_"):
		return "skills_" + strings.TrimPrefix(label, "skill_")
	case label == "company":
		return "companies"
	}
	return label + "s"
}

// checkSDKParsing checks one item of a parsing answer as
// TextParsingDataItem validates it: entities a list of {start ≥ 0, end ≥ 0,
// start ≤ end, label}; parsing with its 18 lists of strings; text a string;
// the text of each entity listed under its label's key.
func checkSDKParsing(t *testing.T, raw json.RawMessage) {
	t.Helper()
	var item struct {
		Text     *string                     `json:"text"`
		Entities *[]map[string]any           `json:"entities"`
		Parsing  map[string]*json.RawMessage `json:"parsing"`
	}
	if err := json.Unmarshal(raw, &item); err != nil {
		t.Fatalf("parsing item %s: %v", raw, err)
	}
	if item.Text == nil {
		t.Fatalf("parsing item without text: %s", raw)
	}
	if item.Entities == nil {
		t.Fatalf("entities null or absent, want a list: %s", raw)
	}
	parsing := map[string][]string{}
	for _, k := range sdkParsingKeys {
		v := item.Parsing[k]
		if v == nil {
			t.Errorf("parsing.%s null or absent, want a list: %s", k, raw)
			continue
		}
		var l []string
		if err := json.Unmarshal(*v, &l); err != nil || l == nil {
			t.Errorf("parsing.%s = %s, want a list of strings", k, *v)
		}
		parsing[k] = l
	}
	runes := []rune(*item.Text)
	for _, en := range *item.Entities {
		start, ok1 := en["start"].(float64)
		end, ok2 := en["end"].(float64)
		label, ok3 := en["label"].(string)
		if !ok1 || !ok2 || !ok3 || start < 0 || end < 0 || start > end || int(end) > len(runes) {
			t.Errorf("entity %v, want {start ≥ 0, end ≥ start, label} within the text", en)
			continue
		}
		span := string(runes[int(start):int(end)])
		if key := sdkParsingKey(label); !slices.Contains(parsing[key], span) {
			t.Errorf("entity %q (%s) not in parsing.%s = %q", span, label, key, parsing[key])
		}
	}
}

// checkSDKJob checks a job as the SDK's Job schema validates it: id an
// integer ≥ 0; key 40 lowercase hex; board_key a string equal to board.key;
// board {key, name, type, subtype, environment}, all strings.
func checkSDKJob(t *testing.T, raw json.RawMessage, boardKey string) map[string]any {
	t.Helper()
	var j map[string]any
	if err := json.Unmarshal(raw, &j); err != nil {
		t.Fatalf("job %s: %v", raw, err)
	}
	id, ok := j["id"].(float64)
	if !ok || id < 0 || id != float64(int64(id)) {
		t.Errorf("id = %v, want an integer ≥ 0", j["id"])
	}
	if k, _ := j["key"].(string); !keyRE.MatchString(k) {
		t.Errorf("key = %v, want 40 lowercase hex", j["key"])
	}
	if j["board_key"] != boardKey {
		t.Errorf("board_key = %v, want %s", j["board_key"], boardKey)
	}
	board, ok := j["board"].(map[string]any)
	if !ok {
		t.Fatalf("board = %v, want an object", j["board"])
	}
	for _, f := range []string{"key", "name", "type", "subtype", "environment"} {
		if _, ok := board[f].(string); !ok {
			t.Errorf("board.%s = %v, want a string", f, board[f])
		}
	}
	if board["key"] != j["board_key"] {
		t.Errorf("board.key = %v, want board_key %v", board["key"], j["board_key"])
	}
	return j
}

func TestSDKParsingShape(t *testing.T) {
	e := newEnv(t, Config{})
	texts := []string{
		"John Doe can be contacted on john.doe@hrflow.ai", // the SDK's own test: nothing the emulator knows
		"Vendeur à Annecy : Excel, anglais, autonomie, permis B, BTS, accueillir les clients.",
		"",
	}
	a := e.do(t, req{method: "POST", path: "/text/parsing", body: map[string]any{"texts": texts}})
	a.want(t, 200, "Text parsed")
	var items []json.RawMessage
	if err := json.Unmarshal(a.Data, &items); err != nil || len(items) != len(texts) {
		t.Fatalf("data %s: %v, want %d items", a.Data, err, len(texts))
	}
	for _, it := range items {
		checkSDKParsing(t, it)
	}
	if !strings.Contains(string(items[0]), `"entities":[]`) {
		t.Errorf("no entity found: %s, want \"entities\":[]", items[0])
	}
	var found struct{ Parsing map[string][]string }
	json.Unmarshal(items[1], &found)
	want := map[string][]string{
		"job_titles": {"Vendeur"}, "locations": {"Annecy"}, "skills_hard": {"Excel"}, "languages": {"anglais"},
		"skills_soft": {"autonomie"}, "certifications": {"permis B"}, "courses": {"BTS"}, "tasks": {"accueillir les clients"},
	}
	for _, k := range sdkParsingKeys {
		if got := found.Parsing[k]; !slices.Equal(got, want[k]) {
			t.Errorf("parsing.%s = %q, want %q", k, got, want[k])
		}
	}
	one := e.do(t, req{method: "POST", path: "/text/parsing", body: map[string]any{"text": "Python"}})
	var single []json.RawMessage
	if err := json.Unmarshal(one.Data, &single); err != nil || len(single) != 1 {
		t.Fatalf("one text: data %s: %v", one.Data, err)
	}
	checkSDKParsing(t, single[0])
}

// TestParsingKeys checks that every label the dictionary knows has its key.
func TestParsingKeys(t *testing.T) {
	if len(parsingKeys) != len(sdkParsingKeys) {
		t.Errorf("%d parsing keys, want %d", len(parsingKeys), len(sdkParsingKeys))
	}
	for label, key := range parsingKeys {
		if sdkParsingKey(label) != key || !slices.Contains(sdkParsingKeys, key) {
			t.Errorf("label %s → %s, want %s, one of the SDK's keys", label, key, sdkParsingKey(label))
		}
	}
	for label := range dictionary {
		if _, ok := parsingKeys[label]; !ok {
			t.Errorf("dictionary label %s has no parsing key", label)
		}
	}
}

// sdkJob is the job of the SDK's tests (_job_get), as they index it.
func sdkJob(ref string) map[string]any {
	return map[string]any{
		"reference": ref,
		"name":      "r&d engineer",
		"location":  map[string]any{"text": "7 rue 4 septembre paris", "lat": 48.869179, "lng": 2.33814},
		"sections": []any{map[string]any{
			"name": "Description", "title": "Description", "description": "As an AI Researcher Intern at HrFlow.ai, you'll play a vital role.",
		}},
		"url":            "https://www.linkedin.com/jobs/search/?currentJobId=3718625295",
		"summary":        "As an AI Researcher Intern at HrFlow.ai, you'll play a vital role in driving the next phase of our exciting expansion.",
		"created_at":     "2024-03-01T10:11:12+0000",
		"skills":         []any{map[string]any{"name": "Deep Learning", "type": "hard", "value": "95/100"}},
		"languages":      []any{map[string]any{"name": "French", "value": "Fluent"}},
		"certifications": []any{map[string]any{"name": "ISO 27001", "value": "Individual"}},
		"courses":        []any{map[string]any{"name": "Statistical Learning", "value": "On campus"}},
		"tasks":          []any{map[string]any{"name": "Developing innovative AI models", "value": "Innovating"}},
		"tags":           []any{map[string]any{"name": "Curios", "value": "1"}},
		"metadatas":      []any{map[string]any{"name": "Interview note", "value": "Today, I met an amazing candidate..."}},
		"ranges_float":   []any{map[string]any{"name": "salary", "value_min": 1234.56, "value_max": 6543.21, "unit": "euros"}},
		"ranges_date": []any{map[string]any{
			"name": "dates", "value_min": "2023-06-01T23:00:00.000Z", "value_max": "2023-09-01T23:00:00.000Z",
		}},
		"culture":          "We love AI engineering, problem-solving, and business.",
		"responsibilities": "Designing, implementing, and optimizing AI models.",
		"requirements":     "Enrolled in an advanced degree in Computer Science.",
		"interviews":       "Interview with one of our lead AI Researcher.",
		"benefits":         "Go fast and learn a lot.",
	}
}

// TestSDKJobs runs the SDK's job tests that reach the API: indexing (every
// field sent comes back equal), archiving (data.key), editing (the job as
// the create answered it, one field changed, sent back whole), plus get and
// a listing with return_job, each answer checked with the SDK's Job schema.
func TestSDKJobs(t *testing.T) {
	e := newEnv(t, Config{})
	sent := sdkJob("SDK-1")
	a := e.do(t, req{method: "POST", path: "/job/indexing", body: withBoardKey(sent)})
	a.want(t, 201, "Job created")
	created := checkSDKJob(t, a.Data, DefaultBoardKey)
	for k, v := range sent {
		if !reflect.DeepEqual(created[k], v) {
			t.Errorf("%s = %#v, want %#v as sent", k, created[k], v)
		}
	}
	id := created["id"]

	got := checkSDKJob(t, e.do(t, req{method: "GET", path: getPath("SDK-1")}).Data, DefaultBoardKey)
	if got["id"] != id {
		t.Errorf("GET id %v, want %v as created", got["id"], id)
	}

	created["interviews"] = "To access the interview call you must use the token 42."
	edit := e.do(t, req{method: "PUT", path: "/job/indexing", body: withBoardKey(created)})
	edit.want(t, 200, "Job edited")
	edited := checkSDKJob(t, edit.Data, DefaultBoardKey)
	if edited["interviews"] != created["interviews"] || edited["id"] != id || edited["key"] != created["key"] {
		t.Errorf("edited job: interviews %v, id %v, key %v; want the new interviews, id %v, key %v",
			edited["interviews"], edited["id"], edited["key"], id, created["key"])
	}

	other := checkSDKJob(t, e.do(t, req{method: "POST", path: "/job/indexing", body: withBoardKey(sdkJob("SDK-2"))}).Data, DefaultBoardKey)
	if other["id"] == id {
		t.Errorf("two jobs share id %v", id)
	}
	list := e.do(t, req{method: "GET", path: listPath(url.Values{"return_job": {"true"}})})
	list.want(t, 200, "List of jobs")
	var jobs []json.RawMessage
	if err := json.Unmarshal(list.Data, &jobs); err != nil || len(jobs) != 2 {
		t.Fatalf("listing %s: %v", list.Data, err)
	}
	for _, j := range jobs {
		listed := checkSDKJob(t, j, DefaultBoardKey)
		if listed["key"] == created["key"] && listed["id"] != id {
			t.Errorf("listed id %v, want %v", listed["id"], id)
		}
	}

	arch := e.do(t, req{method: "PATCH", path: "/job/indexing/archive", body: map[string]any{"board_key": DefaultBoardKey, "key": created["key"], "is_archive": 1}})
	arch.want(t, 200, "Job archived")
	var data struct{ Key string }
	if json.Unmarshal(arch.Data, &data); data.Key != created["key"] {
		t.Errorf("archive data %s, want the key %v", arch.Data, created["key"])
	}
}

func withBoardKey(job map[string]any) map[string]any {
	out := map[string]any{"board_key": DefaultBoardKey}
	for k, v := range job {
		out[k] = v
	}
	return out
}
