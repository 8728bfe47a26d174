package hrflowtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"unicode"
)

// Entity is a span the emulator's text parsing finds: Start and End count
// Unicode code points (Python's str indexing, End exclusive), the choice
// the client's slicing follows (UNVERIFIED: the API documents text[start:end]
// in Python, where a str indexes code points).
type Entity struct {
	Start int    `json:"start"`
	End   int    `json:"end"`
	Label string `json:"label"`
}

type textParsing struct {
	Text     string              `json:"text"`
	Entities []Entity            `json:"entities"`
	Parsing  map[string][]string `json:"parsing"`
}

// parsingKeys maps each entity label to its key in a parsing's "parsing"
// object: the plural of the label (skill_hard is skills_hard, company is
// companies). Every key is always there, a list, empty when nothing of the
// label was found, as HrFlow's own SDK tests expect.
var parsingKeys = map[string]string{
	"certification":   "certifications",
	"company":         "companies",
	"course":          "courses",
	"date":            "dates",
	"duration":        "durations",
	"education_title": "education_titles",
	"email":           "emails",
	"first_name":      "first_names",
	"interest":        "interests",
	"job_title":       "job_titles",
	"language":        "languages",
	"last_name":       "last_names",
	"location":        "locations",
	"phone":           "phones",
	"school":          "schools",
	"skill_hard":      "skills_hard",
	"skill_soft":      "skills_soft",
	"task":            "tasks",
}

// parse is the parsing of one text: its entities, never null, and the
// texts of the entities grouped under every key of parsingKeys.
func parse(text string) textParsing {
	p := textParsing{Text: text, Entities: Extract(text), Parsing: make(map[string][]string, len(parsingKeys))}
	if p.Entities == nil {
		p.Entities = []Entity{}
	}
	for _, key := range parsingKeys {
		p.Parsing[key] = []string{}
	}
	runes := []rune(text)
	for _, en := range p.Entities {
		key := parsingKeys[en.Label]
		p.Parsing[key] = append(p.Parsing[key], string(runes[en.Start:en.End]))
	}
	return p
}

// parseTexts serves POST /text/parsing: {"texts": [...]} with fewer than
// MaxTexts texts, or {"text": "..."} for one (as the SDK allows).
func (e *Emulator) parseTexts(r *http.Request) (int, string, []byte, error) {
	body, err := readBody(r)
	if err != nil {
		return 0, "", nil, err
	}
	var texts []string
	if raw, ok := body["texts"]; ok {
		if err := json.Unmarshal(raw, &texts); err != nil {
			return 0, "", nil, badRequest("texts: Not a valid list of strings.")
		}
	} else if raw, ok := body["text"]; ok {
		var t string
		if err := json.Unmarshal(raw, &t); err != nil {
			return 0, "", nil, badRequest("text: Not a valid string.")
		}
		texts = []string{t}
	}
	if len(texts) == 0 {
		return 0, "", nil, badRequest("texts: Missing data for required field.")
	}
	if len(texts) >= MaxTexts {
		return 0, "", nil, badRequest("texts: Must hold fewer than %d texts, got %d.", MaxTexts, len(texts))
	}
	out := make([]textParsing, len(texts))
	for i, t := range texts {
		out[i] = parse(t)
	}
	data, err := json.Marshal(out)
	if err != nil {
		return 0, "", nil, fmt.Errorf("encode parsing: %w", err)
	}
	return http.StatusOK, "Text parsed", data, nil
}

// trieNode is a node of the dictionary, keyed by folded runes; ' ' stands
// for any run of white space.
type trieNode struct {
	next  map[rune]*trieNode
	label string // non-empty when a term ends here
}

var (
	trieOnce sync.Once
	trieRoot *trieNode
)

// fold maps a rune to the form the dictionary is matched in: lower case,
// typographic apostrophes as ', every space as ' '. It maps one rune to one
// rune, so that offsets in the folded text are offsets in the text.
func fold(r rune) rune {
	switch {
	case unicode.IsSpace(r):
		return ' '
	case r == '’' || r == 'ʼ' || r == '‘':
		return '\''
	}
	return unicode.ToLower(r)
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func buildTrie() *trieNode {
	root := &trieNode{}
	for label, terms := range dictionary {
		for _, term := range terms {
			n := root
			prevSpace := false
			for _, r := range term {
				r = fold(r)
				if r == ' ' {
					if prevSpace {
						continue
					}
					prevSpace = true
				} else {
					prevSpace = false
				}
				if n.next == nil {
					n.next = make(map[rune]*trieNode)
				}
				c := n.next[r]
				if c == nil {
					c = &trieNode{}
					n.next[r] = c
				}
				n = c
			}
			if n.label != "" && n.label != label {
				panic(fmt.Sprintf("hrflowtest: term %q is both %s and %s", term, n.label, label))
			}
			n.label = label
		}
	}
	return root
}

// Extract finds the dictionary's terms in text: case-insensitive, on word
// boundaries, any run of white space matching a space of a term, the
// longest term winning at a position, spans never overlapping, in order.
// Offsets are in code points. It is deterministic: the same text gives the
// same entities.
func Extract(text string) []Entity {
	trieOnce.Do(func() { trieRoot = buildTrie() })
	rs := []rune(text)
	var out []Entity
	for i := 0; i < len(rs); {
		if !isWordRune(rs[i]) || (i > 0 && isWordRune(rs[i-1])) {
			i++
			continue
		}
		n, j := trieRoot, i
		best, label := -1, ""
		for j < len(rs) {
			c := fold(rs[j])
			next := n.next[c]
			if next == nil {
				break
			}
			n = next
			if c == ' ' {
				for j < len(rs) && unicode.IsSpace(rs[j]) {
					j++
				}
				continue
			}
			j++
			if n.label != "" && (j == len(rs) || !isWordRune(rs[j]) || !isWordRune(rs[j-1])) {
				best, label = j, n.label
			}
		}
		if best < 0 {
			i++
			continue
		}
		out = append(out, Entity{Start: i, End: best, Label: label})
		i = best
	}
	return out
}
