package format

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// seedCorpus adds the project's own offers and a few odd inputs.
func seedCorpus(f *testing.F) {
	f.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "offers", "*.json"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{``, `null`, `[]`, `{}`, `{"id":"A"}`, `{"id":"A","lieuTravail":{"latitude":"1e999"}}`,
		`{"id":"A","intitule":1e999}`, `{"id":"A","intitule":-}`, `{"id":"A","salaire":{"libelle":"Mensuel de 1 Euros"}}`,
		`{"id":"\ud800","intitule":"\udc00"}`, `{"id":"\u0041\ud83c\udf73"}`, `{"id":"\x"}`, `{"id":"A","id":"B"}`, `{"id":"A","x":[1,,{]}`, `{"id":"A","competences":[{"libelle":["x"]}]}`} {
		f.Add([]byte(s))
	}
}

// checkJob asserts what holds for every job of a built-in format.
func checkJob(t *testing.T, name string, offer []byte, job hrflow.Job, err error) {
	t.Helper()
	if err != nil {
		if job != nil {
			t.Fatalf("%s: job %v with error %v", name, job, err)
		}
		if json.Valid(offer) && bytes.Count(offer, []byte("["))+bytes.Count(offer, []byte("{")) < 250 {
			if _, idErr := francetravail.Offer(offer).ID(); idErr == nil {
				t.Fatalf("%s(%q) error = %v, want a job: the offer has an id", name, offer, err)
			}
		}
		return
	}
	b, err := json.Marshal(job)
	if err != nil {
		t.Fatalf("%s(%q): the job does not encode: %v", name, offer, err)
	}
	for _, key := range []string{"name", "reference", "created_at", "updated_at", "location", "url", "summary", "sections", "tags"} {
		if _, ok := job[key]; !ok {
			t.Fatalf("%s(%q) = %s: no %q", name, offer, b, key)
		}
	}
	if tags := job["tags"].([]Tag); len(tags) < len(historicTags) {
		t.Fatalf("%s(%q): %d tags", name, offer, len(tags))
	}
}

// FuzzPoleEmploi checks that the default format never panics, formats every
// JSON object with an id into a job that encodes, and agrees with a plain
// encoding/json rendering of the spec; and that the scanner decodes offers
// for jq as encoding/json does.
func FuzzPoleEmploi(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, offer []byte) {
		job, err := PoleEmploi(offer)
		checkJob(t, "PoleEmploi", offer, job, err)
		if err != nil || !json.Valid(offer) {
			return
		}
		var m map[string]any
		if json.Unmarshal(offer, &m) != nil {
			return // e.g. a number out of float64 range: the reference cannot decode it
		}
		// What jq formats get is what encoding/json decodes.
		decoded, err := decodeOffer(offer)
		if err != nil {
			t.Fatalf("decodeOffer(%s) error = %v", offer, err)
		}
		gotDecoded, _ := json.Marshal(decoded)
		wantDecoded, _ := json.Marshal(m)
		if !jsonEqual(t, gotDecoded, wantDecoded) {
			t.Fatalf("decodeOffer(%s)\n got %s\nwant %s", offer, gotDecoded, wantDecoded)
		}
		// The reference is the offer id as the rest of the pipeline reads it.
		id, _ := francetravail.Offer(offer).ID()
		m["id"] = id
		got, _ := json.Marshal(job)
		want, _ := json.Marshal(referencePoleEmploi(m))
		if !jsonEqual(t, got, want) {
			t.Fatalf("PoleEmploi(%s)\n got %s\nwant %s", offer, got, want)
		}
	})
}

// FuzzRich checks that the rich format never panics and formats every JSON
// object with an id into a job that encodes.
func FuzzRich(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, offer []byte) {
		job, err := Rich(offer)
		checkJob(t, "Rich", offer, job, err)
	})
}

// FuzzApply checks that a chain of Go logics never panics and that a kept
// job's reference is the offer id, as francetravail reads it.
func FuzzApply(f *testing.F) {
	seedCorpus(f)
	chain := &Chain{Format: Rich, Logics: []Logic{
		func(j hrflow.Job) (hrflow.Job, bool, error) {
			for _, t := range j["tags"].([]Tag) {
				if t.Name == tagPrefix+"contract_code" && t.Value == "MIS" {
					return nil, false, nil
				}
			}
			return j, true, nil
		},
		func(j hrflow.Job) (hrflow.Job, bool, error) { return j, j["name"] != "panic", nil },
	}}
	f.Fuzz(func(t *testing.T, offer []byte) {
		job, outcome, err := chain.Apply(offer)
		switch outcome {
		case Kept:
			id, idErr := francetravail.Offer(offer).ID()
			if err != nil || idErr != nil || job.Reference() != id {
				t.Fatalf("Apply(%q) = %v, kept, %v; want reference %q (%v)", offer, job, err, id, idErr)
			}
		case Discarded:
			if job != nil || err != nil {
				t.Fatalf("Apply(%q) = %v, discarded, %v", offer, job, err)
			}
		default:
			if job != nil || err == nil {
				t.Fatalf("Apply(%q) = %v, %v, %v", offer, job, outcome, err)
			}
		}
	})
}

// referencePoleEmploi is format_job.md written naively on encoding/json
// values: the executable spec the fuzzer compares the fast format with.
func referencePoleEmploi(o map[string]any) map[string]any {
	obj := func(v any) map[string]any { m, _ := v.(map[string]any); return m }
	str := func(v any) string { s, _ := v.(string); return s }
	coord := func(v any) any {
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case string:
			s := strings.TrimSpace(x)
			if !regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`).MatchString(s) {
				return nil
			}
			var err error
			if f, err = strconv.ParseFloat(s, 64); err != nil {
				return nil
			}
		default:
			return nil
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil
		}
		return f
	}
	location := map[string]any{"lat": nil, "lng": nil, "text": ""}
	if lieu := obj(o["lieuTravail"]); lieu != nil {
		var parts []string
		for _, k := range []string{"libelle", "codePostal"} {
			if s := str(lieu[k]); s != "" {
				parts = append(parts, s)
			}
		}
		location = map[string]any{"lat": coord(lieu["latitude"]), "lng": coord(lieu["longitude"]), "text": strings.Join(parts, " ")}
	}
	sections := []any{}
	if desc, ok := obj(o["entreprise"])["description"]; ok {
		sections = append(sections, map[string]any{"name": "pole_emploi_company_description", "title": "Company Description", "description": desc})
	}
	appellation := o["appellationlibelle"]
	if appellation == nil {
		appellation = o["appellationLibelle"]
	}
	contact, salaire := obj(o["contact"]), obj(o["salaire"])
	values := []any{o["romeCode"], o["romeLibelle"], appellation, o["natureContrat"], o["typeContratLibelle"],
		o["experienceLibelle"], salaire["libelle"], o["dureeTravailLibelle"], o["qualificationLibelle"],
		o["secteurActiviteLibelle"], contact["nom"], contact["courriel"], contact["telephone"]}
	tags := make([]any, len(values))
	for i, v := range values {
		tags[i] = map[string]any{"name": historicTags[i], "value": v}
	}
	return map[string]any{
		"name": o["intitule"], "reference": o["id"], "created_at": o["dateCreation"], "updated_at": o["dateActualisation"],
		"location": location, "url": nil, "summary": o["description"], "sections": sections, "tags": tags,
	}
}

// TestReferenceAgrees runs the fuzz property on the project's offers and, when
// present, the real ones.
func TestReferenceAgrees(t *testing.T) {
	var offers [][]byte
	for _, o := range goldenOffers(t) {
		offers = append(offers, o)
	}
	for _, offer := range offers {
		var m map[string]any
		if err := json.Unmarshal(offer, &m); err != nil {
			t.Fatal(err)
		}
		job, err := PoleEmploi(offer)
		if err != nil {
			t.Fatalf("PoleEmploi(%s) error = %v", offer, err)
		}
		got, _ := json.Marshal(job)
		want, _ := json.Marshal(referencePoleEmploi(m))
		if !jsonEqual(t, got, want) {
			t.Errorf("PoleEmploi(%s)\n got %s\nwant %s", offer, got, want)
		}
	}
}
