package hrflow

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"strings"
)

// MaxTextsPerCall is the number of texts ParseTexts sends in one call: the
// API takes fewer than 32.
const MaxTextsPerCall = 31

// Entity labels that the enrichment uses.
const (
	LabelSkillHard     = "skill_hard"
	LabelSkillSoft     = "skill_soft"
	LabelLanguage      = "language"
	LabelCertification = "certification"
	LabelCourse        = "course"
	LabelTask          = "task"
)

// TextParsing is the parsing of one text.
type TextParsing struct {
	// Text is the text as the API parsed it; entities index into it.
	Text string `json:"text"`
	// Entities are the spans found in Text.
	Entities []Entity `json:"entities"`
	// Parsing is the API's structured reading of the text, left raw.
	Parsing json.RawMessage `json:"parsing,omitempty"`
}

// Entity is a span of a parsed text: Text[Start:End] in Unicode code points
// (Python's str slicing, End exclusive), with its label ("skill_hard",
// "language"…).
type Entity struct {
	Start int    `json:"start"`
	End   int    `json:"end"`
	Label string `json:"label"`
}

// Span returns the text of e within text, slicing by code points, and false
// when e does not fit in text.
func (e Entity) Span(text []rune) (string, bool) {
	if e.Start < 0 || e.End > len(text) || e.Start >= e.End {
		return "", false
	}
	return string(text[e.Start:e.End]), true
}

// ParseTexts parses texts with POST /text/parsing, MaxTextsPerCall texts per
// call, and returns one TextParsing per text, in order. No text, no call.
func (c *Client) ParseTexts(ctx context.Context, texts []string) ([]TextParsing, error) {
	out := make([]TextParsing, 0, len(texts))
	for start := 0; start < len(texts); start += MaxTextsPerCall {
		chunk := texts[start:min(start+MaxTextsPerCall, len(texts))]
		got, _, err := call[[]TextParsing](ctx, c, http.MethodPost, pathParsing, nil, map[string]any{"texts": chunk})
		if err != nil {
			return nil, fmt.Errorf("hrflow: parse texts %d-%d: %w", start, start+len(chunk)-1, err)
		}
		if len(got) != len(chunk) {
			return nil, fmt.Errorf("hrflow: parse texts %d-%d: %d parsings for %d texts", start, start+len(chunk)-1, len(got), len(chunk))
		}
		out = append(out, got...)
	}
	return out, nil
}

// EnrichmentText is the text the enrichment parses: the job's summary and
// each section's description, the non-empty ones joined with a newline,
// HTML tags stripped, entities unescaped, spaces trimmed. "" means nothing
// to parse.
func EnrichmentText(job Job) string {
	var parts []string
	if s, ok := job["summary"].(string); ok && s != "" {
		parts = append(parts, s)
	}
	for _, sec := range objects(job["sections"]) {
		if d, ok := sec["description"].(string); ok && d != "" {
			parts = append(parts, d)
		}
	}
	text := strings.Join(parts, "\n")
	text = tagRE.ReplaceAllString(text, "")
	return strings.TrimSpace(html.UnescapeString(text))
}

// objects returns the JSON objects of a list value, skipping the rest.
func objects(v any) []map[string]any {
	switch l := v.(type) {
	case []map[string]any:
		return l
	case []any:
		out := make([]map[string]any, 0, len(l))
		for _, e := range l {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

// enrichField says where an entity label goes.
type enrichField struct {
	field    string // job field
	skillTyp string // skills only: "hard" or "soft"
}

var enrichFields = map[string]enrichField{
	LabelSkillHard:     {"skills", "hard"},
	LabelSkillSoft:     {"skills", "soft"},
	LabelLanguage:      {"languages", ""},
	LabelCertification: {"certifications", ""},
	LabelCourse:        {"courses", ""},
	LabelTask:          {"tasks", ""},
}

// ApplyParsing returns a copy of job enriched with the entities of p: for
// each entity, name = p.Text[start:end] (code points); skill_hard and
// skill_soft become skills {name, type: "hard"|"soft", value: null};
// language, certification, course and task become languages,
// certifications, courses and tasks {name, value: null}. An entry whose name
// (and type, for skills) is already in the list is skipped; other labels and
// entities outside the text are ignored. A field that holds something other
// than a list is left as it is. job itself is not modified.
func ApplyParsing(job Job, p TextParsing) Job {
	out := make(Job, len(job)+len(enrichFields))
	for k, v := range job {
		out[k] = v
	}
	text := []rune(p.Text)
	lists := map[string][]any{}          // fields being extended, copied on first use
	have := map[string]map[string]bool{} // field → "type\x00name" present
	for _, e := range p.Entities {
		ef, ok := enrichFields[e.Label]
		if !ok {
			continue
		}
		name, ok := e.Span(text)
		if !ok {
			continue
		}
		l, started := lists[ef.field]
		if !started {
			var ok bool
			if l, ok = listCopy(job[ef.field]); !ok {
				continue
			}
			seen := make(map[string]bool, len(l))
			for _, m := range objects(l) {
				n, _ := m["name"].(string)
				t, _ := m["type"].(string)
				seen[dedupeKey(ef.field, t, n)] = true
			}
			have[ef.field] = seen
		}
		k := dedupeKey(ef.field, ef.skillTyp, name)
		if have[ef.field][k] {
			lists[ef.field] = l
			continue
		}
		have[ef.field][k] = true
		var entry map[string]any
		if ef.field == "skills" {
			entry = map[string]any{"name": name, "type": ef.skillTyp, "value": nil}
		} else {
			entry = map[string]any{"name": name, "value": nil}
		}
		lists[ef.field] = append(l, entry)
	}
	for f, l := range lists {
		out[f] = l
	}
	return out
}

// dedupeKey identifies an entry of an enriched list: its name, and its type
// for skills.
func dedupeKey(field, typ, name string) string {
	if field != "skills" {
		typ = ""
	}
	return typ + "\x00" + name
}

// listCopy returns a copy of a list value (null or absent is an empty
// list), and false when the value is not a list.
func listCopy(v any) ([]any, bool) {
	switch l := v.(type) {
	case nil:
		return []any{}, true
	case []any:
		return append([]any(nil), l...), true
	case []map[string]any:
		out := make([]any, len(l))
		for i, m := range l {
			out[i] = m
		}
		return out, true
	}
	return nil, false
}
