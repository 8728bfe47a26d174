package hrflow_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
)

func TestEnrichmentText(t *testing.T) {
	tests := []struct {
		name string
		job  hrflow.Job
		want string
	}{
		{"nothing", hrflow.Job{"name": "x"}, ""},
		{"summary only", hrflow.Job{"summary": "  Vendeur  "}, "Vendeur"},
		{"summary and sections", hrflow.Job{"summary": "A", "sections": []any{
			map[string]any{"name": "s1", "description": "B"},
			map[string]any{"name": "s2", "description": ""},
			map[string]any{"name": "s3", "description": nil},
			map[string]any{"name": "s4", "description": "C"},
		}}, "A\nB\nC"},
		{"empty summary skipped", hrflow.Job{"summary": "", "sections": []map[string]any{{"description": "B"}}}, "B"},
		{"null summary", hrflow.Job{"summary": nil, "sections": nil}, ""},
		{"html stripped, entities unescaped", hrflow.Job{"summary": "<p>Caf&eacute; &amp; <b>bar</b></p>", "sections": []any{map[string]any{"description": "&lt;b&gt; 5&nbsp;€"}}}, "Café & bar\n<b> 5\u00a0€"},
		{"only tags", hrflow.Job{"summary": "<br/>"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hrflow.EnrichmentText(tt.job); got != tt.want {
				t.Errorf("EnrichmentText = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestApplyParsing(t *testing.T) {
	text := "Excel, anglais, Excel, rigueur, Excel, Permis B, BTS, accueillir les clients, Annecy, vendeur"
	ent := func(sub, label string) hrflow.Entity {
		i := strings.Index(text, sub)
		start := len([]rune(text[:i]))
		return hrflow.Entity{Start: start, End: start + len([]rune(sub)), Label: label}
	}
	p := hrflow.TextParsing{Text: text, Entities: []hrflow.Entity{
		ent("Excel", "skill_hard"),
		ent("Excel", "skill_hard"), // same entity twice
		ent("Excel", "skill_soft"), // same name, other type: kept
		ent("anglais", "language"),
		ent("rigueur", "skill_soft"),
		ent("Permis B", "certification"),
		ent("BTS", "course"),
		ent("accueillir les clients", "task"),
		ent("Annecy", "location"),                   // ignored label
		ent("vendeur", "job_title"),                 // ignored label
		{Start: 500, End: 510, Label: "skill_hard"}, // outside the text
		{Start: 3, End: 3, Label: "skill_hard"},     // empty
	}}
	in := hrflow.Job{
		"reference": "A",
		"skills":    []any{map[string]any{"name": "rigueur", "type": "soft", "value": nil}},
		"languages": nil,
		"tasks":     "not a list",
	}
	before, _ := json.Marshal(in)
	out := hrflow.ApplyParsing(in, p)
	if after, _ := json.Marshal(in); string(after) != string(before) {
		t.Errorf("ApplyParsing modified its input:\n%s\n%s", before, after)
	}
	want := hrflow.Job{
		"reference": "A",
		"skills": []any{
			map[string]any{"name": "rigueur", "type": "soft", "value": nil},
			map[string]any{"name": "Excel", "type": "hard", "value": nil},
			map[string]any{"name": "Excel", "type": "soft", "value": nil},
		},
		"languages":      []any{map[string]any{"name": "anglais", "value": nil}},
		"certifications": []any{map[string]any{"name": "Permis B", "value": nil}},
		"courses":        []any{map[string]any{"name": "BTS", "value": nil}},
		"tasks":          "not a list",
	}
	if !reflect.DeepEqual(out, want) {
		g, _ := json.MarshalIndent(out, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("ApplyParsing =\n%s\nwant\n%s", g, w)
	}
	// no entities: same content
	if got := hrflow.ApplyParsing(in, hrflow.TextParsing{Text: text}); !reflect.DeepEqual(got, in) {
		t.Errorf("no entities changed the job: %v", got)
	}
}

// TestApplyParsingFixtures enriches real jobs with the emulator's parsing
// and checks that every added name is a span of the text.
func TestApplyParsingFixtures(t *testing.T) {
	jobs := fixtureJobs(t, 100)
	e := newEnv(t, envOptions{})
	enriched := 0
	for _, j := range jobs {
		text := hrflow.EnrichmentText(j)
		if text == "" {
			continue
		}
		ps, err := e.client.ParseTexts(t.Context(), []string{text})
		if err != nil {
			t.Fatal(err)
		}
		out := hrflow.ApplyParsing(j, ps[0])
		for _, f := range []string{"skills", "languages", "certifications", "courses", "tasks"} {
			l, _ := out[f].([]any)
			for _, e := range l {
				name := e.(map[string]any)["name"].(string)
				if !strings.Contains(text, name) {
					t.Errorf("%s: %s %q is not in the text", j.Reference(), f, name)
				}
				enriched++
			}
		}
	}
	if enriched == 0 {
		t.Error("no fixture job enriched")
	}
}

// TestParsingShapes runs the enrichment on parsing answers of the shape the
// spec states (the emulator's: entities [] when nothing is found, parsing
// with its 18 plural keys), and on shapes no source rules out (entities
// null, parsing absent or with singular keys, fields the client does not
// know): the client reads the entities alone.
func TestParsingShapes(t *testing.T) {
	job := hrflow.Job{"reference": "R", "name": "n", "summary": "Excel et anglais", "skills": []any{}}
	wantSkills := `[{"name":"Excel","type":"hard","value":null}]`
	wantLanguages := `[{"name":"anglais","value":null}]`
	t.Run("emulator", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		got, err := e.client.ParseTexts(t.Context(), []string{"John Doe can be contacted on john.doe@hrflow.ai", "Excel et anglais"})
		if err != nil {
			t.Fatal(err)
		}
		if got[0].Entities == nil || len(got[0].Entities) != 0 {
			t.Errorf("nothing found: entities %#v, want an empty list", got[0].Entities)
		}
		for i, p := range got {
			var parsing map[string][]string
			if err := json.Unmarshal(p.Parsing, &parsing); err != nil || len(parsing) != 18 {
				t.Errorf("text %d: parsing %s (%v), want the 18 keys", i, p.Parsing, err)
			}
		}
		if out := hrflow.ApplyParsing(job, got[0]); !reflect.DeepEqual(out, job) {
			t.Errorf("nothing found changed the job: %v", out)
		}
		out := hrflow.ApplyParsing(job, got[1])
		checkJSON(t, "skills", out["skills"], wantSkills)
		checkJSON(t, "languages", out["languages"], wantLanguages)
	})
	found := `{"text":"Excel et anglais","entities":[{"start":0,"end":5,"label":"skill_hard","confidence":0.9},{"start":9,"end":16,"label":"language"}]`
	for _, tt := range []struct {
		name, item string
		found      bool
	}{
		{"entities null", `{"text":"rien","entities":null,"parsing":{"skills_hard":[]}}`, false},
		{"entities absent", `{"text":"rien"}`, false},
		{"parsing absent", found + `}`, true},
		{"parsing null", found + `,"parsing":null}`, true},
		{"parsing with singular keys", found + `,"parsing":{"skill_hard":["Excel"],"language":["anglais"]}}`, true},
		{"parsing with plural keys", found + `,"parsing":{"skills_hard":["Excel"],"languages":["anglais"],"tasks":[]}}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"code":200,"message":"Text parsed","data":[` + tt.item + `],"meta":{}}`
			e := newEnv(t, envOptions{wrap: failFirst(1, hrflowtest.RouteParseTexts, 200, "application/json", body, nil)})
			got, err := e.client.ParseTexts(t.Context(), []string{"x"})
			if err != nil {
				t.Fatal(err)
			}
			out := hrflow.ApplyParsing(job, got[0])
			if !tt.found {
				if !reflect.DeepEqual(out, job) {
					t.Errorf("nothing found changed the job: %v", out)
				}
				return
			}
			checkJSON(t, "skills", out["skills"], wantSkills)
			checkJSON(t, "languages", out["languages"], wantLanguages)
		})
	}
}

// checkJSON compares the JSON encoding of v with want.
func checkJSON(t *testing.T, name string, v any, want string) {
	t.Helper()
	got, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s = %s, want %s", name, got, want)
	}
}
