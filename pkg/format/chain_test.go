package format

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// offerInterim is a small offer written for these tests.
const offerInterim = `{"id": "199TEST", "intitule": "Cariste (H/F)", "typeContrat": "MIS",
	"typeContratLibelle": "Intérim - 3 Mois", "lieuTravail": {"libelle": "74 - Cluses", "codePostal": "74300"},
	"salaire": {"libelle": "Horaire de 12.0 Euros"}}`

func mustCompile(t *testing.T, s Spec) *Chain {
	t.Helper()
	c, err := s.Compile()
	if err != nil {
		t.Fatalf("Compile(%+v) error = %v", s, err)
	}
	return c
}

// tagValue returns the value of the job's tag called name, whatever the
// representation of its tags.
func tagValue(t *testing.T, job hrflow.Job, name string) any {
	t.Helper()
	switch tags := job["tags"].(type) {
	case []Tag:
		for _, tag := range tags {
			if tag.Name == name {
				return tag.Value
			}
		}
	case []any:
		for _, tag := range tags {
			if m, _ := tag.(map[string]any); m["name"] == name {
				return m["value"]
			}
		}
	}
	t.Fatalf("job has no tag %q: %v", name, job["tags"])
	return nil
}

func TestApply(t *testing.T) {
	tests := []struct {
		name     string
		spec     Spec
		offer    string
		want     Outcome
		wantErr  string // substring of the error, "" for none
		wantName any    // the kept job's name
	}{
		{name: "default format", offer: offerInterim, want: Kept, wantName: "Cariste (H/F)"},
		{name: "alias format_job", spec: Spec{Format: FormatSpec{Name: NameFormatJob}}, offer: offerInterim, want: Kept, wantName: "Cariste (H/F)"},
		{name: "rich", spec: Spec{Format: FormatSpec{Name: NameRich}}, offer: offerInterim, want: Kept, wantName: "Cariste (H/F)"},
		{name: "no id", offer: `{"intitule": "x"}`, want: FormatFailed, wantErr: `offer (no id): format "pole_emploi": offer has no id`},
		{name: "empty id", offer: `{"id": ""}`, want: FormatFailed, wantErr: "offer has no id"},
		{name: "numeric id", offer: `{"id": 7}`, want: FormatFailed, wantErr: "offer has no id"},
		{name: "not an object", offer: `[1]`, want: FormatFailed, wantErr: "not a JSON object"},
		{name: "not JSON", offer: `{"id": "x"`, want: FormatFailed, wantErr: "offer has no id"},
		{name: "jq no id", spec: Spec{Format: FormatSpec{JQ: `{name: .intitule}`}}, offer: `{"intitule": "x"}`, want: FormatFailed, wantErr: `format "jq": offer has no id`},
		{name: "jq format", spec: Spec{Format: FormatSpec{JQ: `{name: .intitule, reference: .id}`}}, offer: offerInterim, want: Kept, wantName: "Cariste (H/F)"},
		{name: "jq format sets no reference", spec: Spec{Format: FormatSpec{JQ: `{name: .intitule}`}}, offer: offerInterim, want: Kept, wantName: "Cariste (H/F)"},
		{name: "jq format other reference", spec: Spec{Format: FormatSpec{JQ: `{reference: "x"}`}}, offer: offerInterim, want: FormatFailed, wantErr: `offer 199TEST: format "jq": the job's reference is x, not the offer id "199TEST"`},
		{name: "jq format not an object", spec: Spec{Format: FormatSpec{JQ: `.intitule`}}, offer: offerInterim, want: FormatFailed, wantErr: "produced a JSON string, not an object"},
		{name: "jq format no output", spec: Spec{Format: FormatSpec{JQ: `empty`}}, offer: offerInterim, want: FormatFailed, wantErr: "produced no job"},
		{name: "jq format two outputs", spec: Spec{Format: FormatSpec{JQ: `{}, {}`}}, offer: offerInterim, want: FormatFailed, wantErr: "more than one value"},
		{name: "jq format error", spec: Spec{Format: FormatSpec{JQ: `error("no way")`}}, offer: offerInterim, want: FormatFailed, wantErr: "no way"},
		{name: "jq logic keeps", spec: Spec{Logics: []LogicSpec{{JQ: `.name |= ascii_upcase`}}}, offer: offerInterim, want: Kept, wantName: "CARISTE (H/F)"},
		{name: "jq logic null drops", spec: Spec{Logics: []LogicSpec{{JQ: `null`}}}, offer: offerInterim, want: Discarded},
		{name: "jq logic false drops", spec: Spec{Logics: []LogicSpec{{JQ: `false`}}}, offer: offerInterim, want: Discarded},
		{name: "jq logic empty drops", spec: Spec{Logics: []LogicSpec{{JQ: `empty`}}}, offer: offerInterim, want: Discarded},
		{name: "jq select on tags drops", spec: Spec{Logics: []LogicSpec{{Name: "drop_interim", JQ: `select(any(.tags[]; .name == "pole_emploi_contractType" and (.value // "" | startswith("Intérim"))) | not)`}}}, offer: offerInterim, want: Discarded},
		{name: "jq select keeps", spec: Spec{Logics: []LogicSpec{{JQ: `select(.location.text | endswith("74300"))`}}}, offer: offerInterim, want: Kept, wantName: "Cariste (H/F)"},
		{name: "jq logic error", spec: Spec{Logics: []LogicSpec{{JQ: `.`}, {Name: "strict", JQ: `error("missing salary")`}}}, offer: offerInterim, want: LogicsFailed, wantErr: `offer 199TEST: logics[1] "strict": jq: missing salary`},
		{name: "jq logic number", spec: Spec{Logics: []LogicSpec{{JQ: `1`}}}, offer: offerInterim, want: LogicsFailed, wantErr: "produced a JSON number, not an object (null or false drops the job)"},
		{name: "jq logic two outputs", spec: Spec{Logics: []LogicSpec{{JQ: `., .`}}}, offer: offerInterim, want: LogicsFailed, wantErr: "more than one value"},
		{name: "jq logic changes reference", spec: Spec{Logics: []LogicSpec{{JQ: `.reference = "other"`}}}, offer: offerInterim, want: LogicsFailed, wantErr: `logics[0]: the job's reference is other`},
		{name: "jq logic drops reference", spec: Spec{Logics: []LogicSpec{{JQ: `{name}`}}}, offer: offerInterim, want: Kept, wantName: "Cariste (H/F)"},
		{name: "jq logics chained", spec: Spec{Logics: []LogicSpec{{JQ: `.name = "a"`}, {JQ: `.name += "b"`}, {JQ: `.name += "c"`}}}, offer: offerInterim, want: Kept, wantName: "abc"},
		{name: "jq logic sees no environment", spec: Spec{Logics: []LogicSpec{{JQ: `.name = ($ENV | length | tostring) + (env | length | tostring)`}}}, offer: offerInterim, want: Kept, wantName: "00"},
		{name: "jq drop stops the chain", spec: Spec{Logics: []LogicSpec{{JQ: `empty`}, {JQ: `error("not reached")`}}}, offer: offerInterim, want: Discarded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, tt.spec)
			job, got, err := c.Apply(francetravail.Offer(tt.offer))
			if got != tt.want {
				t.Fatalf("Apply() outcome = %v (error %v), want %v", got, err, tt.want)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Apply() error = %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Apply() error = %v, want one containing %q", err, tt.wantErr)
			}
			if err != nil {
				var ae *ApplyError
				if !errors.As(err, &ae) {
					t.Errorf("Apply() error is a %T, want an *ApplyError", err)
				}
			}
			if tt.want != Kept {
				if job != nil {
					t.Errorf("Apply() job = %v, want nil", job)
				}
				return
			}
			if job.Reference() != "199TEST" {
				t.Errorf("job reference = %q, want %q", job.Reference(), "199TEST")
			}
			if job["name"] != tt.wantName {
				t.Errorf("job name = %v, want %v", job["name"], tt.wantName)
			}
		})
	}
}

func TestApplyNoIDIsErrNoID(t *testing.T) {
	for _, spec := range []Spec{{}, {Format: FormatSpec{Name: NameRich}}, {Format: FormatSpec{JQ: "."}}} {
		_, got, err := mustCompile(t, spec).Apply(francetravail.Offer(`{"intitule": "x"}`))
		if got != FormatFailed || !errors.Is(err, francetravail.ErrNoID) {
			t.Errorf("%+v: Apply() = %v, %v; want FormatFailed wrapping ErrNoID", spec.Format, got, err)
		}
	}
}

func TestApplyGoFuncs(t *testing.T) {
	offer := francetravail.Offer(offerInterim)
	boom := func(hrflow.Job) (hrflow.Job, bool, error) { panic("boom") }
	tests := []struct {
		name    string
		chain   *Chain
		want    Outcome
		wantErr string
	}{
		{"format panics", &Chain{Format: func(francetravail.Offer) (hrflow.Job, error) { panic("kaput") }}, FormatFailed, "offer 199TEST: format: panic: kaput"},
		{"format returns nil", &Chain{Format: func(francetravail.Offer) (hrflow.Job, error) { return nil, nil }}, FormatFailed, "returned no job"},
		{"no format", &Chain{}, FormatFailed, "no format"},
		{"logic panics", &Chain{Format: PoleEmploi, Logics: []Logic{boom}}, LogicsFailed, "offer 199TEST: logics[0]: panic: boom"},
		{"logic keeps nil", &Chain{Format: PoleEmploi, Logics: []Logic{func(hrflow.Job) (hrflow.Job, bool, error) { return nil, true, nil }}}, LogicsFailed, "returned no job"},
		{"logic error", &Chain{Format: PoleEmploi, Logics: []Logic{func(hrflow.Job) (hrflow.Job, bool, error) { return nil, false, errors.New("nope") }}}, LogicsFailed, "logics[0]: nope"},
		{"logic drops", &Chain{Format: PoleEmploi, Logics: []Logic{func(hrflow.Job) (hrflow.Job, bool, error) { return nil, false, nil }, boom}}, Discarded, ""},
		{"logic keeps", &Chain{Format: PoleEmploi, Logics: []Logic{func(j hrflow.Job) (hrflow.Job, bool, error) { j["culture"] = "x"; return j, true, nil }}}, Kept, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := tt.chain.Apply(offer)
			if got != tt.want {
				t.Fatalf("Apply() outcome = %v (error %v), want %v", got, err, tt.want)
			}
			if (tt.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Apply() error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestJQLogicAfterGoLogic checks that a jq logic reads what a Go logic
// wrote, whatever Go types it used.
func TestJQLogicAfterGoLogic(t *testing.T) {
	const name = "test_typed_fields"
	RegisterLogic(name+uniqueSuffix(), func(j hrflow.Job) (hrflow.Job, bool, error) {
		j["metadatas"] = []map[string]string{{"name": "source", "value": "go"}}
		j["tags"] = append(j["tags"].([]Tag), Tag{Name: "extra", Value: int64(3)})
		return j, true, nil
	})
	c := mustCompile(t, Spec{Logics: []LogicSpec{
		{Func: name + currentSuffix()},
		{JQ: `select(.metadatas[0].value == "go" and (.tags[-1] == {name: "extra", value: 3}))`},
	}})
	job, got, err := c.Apply(francetravail.Offer(offerInterim))
	if got != Kept {
		t.Fatalf("Apply() = %v, %v; want kept", got, err)
	}
	if v := tagValue(t, job, "extra"); v != 3 && v != 3.0 {
		t.Errorf("extra tag = %v (%T), want 3", v, v)
	}
}

func TestJQTimeout(t *testing.T) {
	defer func(d time.Duration) { jqTimeout = d }(jqTimeout)
	jqTimeout = 50 * time.Millisecond
	c := mustCompile(t, Spec{Logics: []LogicSpec{{Name: "forever", JQ: `last(range(infinite))`}}})
	_, got, err := c.Apply(francetravail.Offer(offerInterim))
	if got != LogicsFailed || err == nil || !strings.Contains(err.Error(), "ran longer than") {
		t.Fatalf("Apply() = %v, %v; want a logics failure for the time limit", got, err)
	}
}

func TestJQNumbers(t *testing.T) {
	c := mustCompile(t, Spec{Format: FormatSpec{JQ: `{reference: .id, a: 1, b: nan, c: infinite, d: -infinite, e: 100000000000000000000000, f: 9007199254740993, g: 1.5}`}})
	job, got, err := c.Apply(francetravail.Offer(offerInterim))
	if got != Kept {
		t.Fatalf("Apply() = %v, %v", got, err)
	}
	want := map[string]any{"a": 1, "b": nil, "c": 1.7976931348623157e308, "d": -1.7976931348623157e308, "e": json.Number("100000000000000000000000"), "g": 1.5}
	for k, w := range want {
		if job[k] != w {
			t.Errorf("job[%q] = %v (%T), want %v (%T)", k, job[k], job[k], w, w)
		}
	}
	if s := job["f"]; s != 9007199254740993 && s != float64(9007199254740993) {
		t.Errorf("job[f] = %v (%T), want 9007199254740993", s, s)
	}
}
