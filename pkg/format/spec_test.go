package format

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestSpecYAML(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want Spec
	}{
		{"absent", `{}`, Spec{}},
		{"null", `format:`, Spec{}},
		{"name", `format: rich`, Spec{Format: FormatSpec{Name: "rich"}}},
		{"alias", `format: format_job`, Spec{Format: FormatSpec{Name: "format_job"}}},
		{"jq", "format:\n  jq: '{name: .intitule}'", Spec{Format: FormatSpec{JQ: "{name: .intitule}"}}},
		{"jq block", "format:\n  jq: |\n    {name: .intitule}\n", Spec{Format: FormatSpec{JQ: "{name: .intitule}\n"}}},
		{"logics", `
format: pole_emploi
logics:
  - name: drop_interim
    jq: select(.name != "x")
  - func: my_logic
  - {jq: ., name: third}
`, Spec{Format: FormatSpec{Name: "pole_emploi"}, Logics: []LogicSpec{
			{Name: "drop_interim", JQ: `select(.name != "x")`},
			{Func: "my_logic"},
			{Name: "third", JQ: "."},
		}}},
		{"anchors", "x: &p select(.a)\nlogics:\n  - jq: *p\n", Spec{Logics: []LogicSpec{{JQ: "select(.a)"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Spec
			if err := yaml.Unmarshal([]byte(tt.yaml), &got); err != nil {
				t.Fatalf("yaml.Unmarshal(%q) error = %v", tt.yaml, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("yaml.Unmarshal(%q) = %+v, want %+v", tt.yaml, got, tt.want)
			}
			// And back: YAML, then JSON.
			b, err := yaml.Marshal(got)
			if err != nil {
				t.Fatalf("yaml.Marshal(%+v) error = %v", got, err)
			}
			var again Spec
			if err := yaml.Unmarshal(b, &again); err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("YAML round trip of %+v = %+v, %v (via %s)", got, again, err, b)
			}
			j, err := json.Marshal(got)
			if err != nil {
				t.Fatalf("json.Marshal(%+v) error = %v", got, err)
			}
			again = Spec{}
			if err := json.Unmarshal(j, &again); err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("JSON round trip of %+v = %+v, %v (via %s)", got, again, err, j)
			}
		})
	}
}

func TestSpecYAMLErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"format number", `format: 5`, "format: line 1: want a format name or {jq: program}, got int"},
		{"format list", "format: [a]", "got a sequence"},
		{"format unknown key", "format: {jq: ., foo: x}", `line 1: unknown key "foo" (want jq)`},
		{"format without jq", "format: {name: rich}", `unknown key "name"`},
		{"format empty jq", `format: {jq: ""}`, "jq: empty program"},
		{"logic unknown key", "logics:\n  - name: a\n    jqq: .\n", `logic: line 3: unknown key "jqq" (want name, jq, func)`},
		{"logic not a mapping", "logics:\n  - drop\n", "logic: line 2: want a mapping with keys name, jq, func"},
		{"logic jq not a string", "logics:\n  - jq: {a: 1}\n", "jq: want a string, got a mapping"},
		{"logic empty jq", "logics:\n  - name: x\n    jq: ''\n", `logic "x": jq: empty program`},
		{"logic duplicate key", "logics:\n  - jq: .\n    jq: .\n", `key "jq" given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Spec
			err := yaml.Unmarshal([]byte(tt.yaml), &s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("yaml.Unmarshal(%q) error = %v, want one containing %q", tt.yaml, err, tt.want)
			}
		})
	}
}

func TestSpecJSON(t *testing.T) {
	tests := []struct {
		json string
		want Spec
	}{
		{`{}`, Spec{}},
		{`{"format": null}`, Spec{}},
		{`{"format": ""}`, Spec{}},
		{`{"format": "rich"}`, Spec{Format: FormatSpec{Name: "rich"}}},
		{`{"format": {"jq": "{name: .intitule}"}}`, Spec{Format: FormatSpec{JQ: "{name: .intitule}"}}},
		{`{"format": "pole_emploi", "logics": [{"name": "a", "jq": "."}, {"func": "f"}]}`,
			Spec{Format: FormatSpec{Name: "pole_emploi"}, Logics: []LogicSpec{{Name: "a", JQ: "."}, {Func: "f"}}}},
	}
	for _, tt := range tests {
		var got Spec
		if err := json.Unmarshal([]byte(tt.json), &got); err != nil {
			t.Errorf("json.Unmarshal(%s) error = %v", tt.json, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("json.Unmarshal(%s) = %+v, want %+v", tt.json, got, tt.want)
		}
		b, err := json.Marshal(got)
		var again Spec
		if err == nil {
			err = json.Unmarshal(b, &again)
		}
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("round trip of %+v = %+v, %v (via %s)", got, again, err, b)
		}
	}
}

func TestSpecJSONErrors(t *testing.T) {
	tests := []struct{ json, want string }{
		{`{"format": 5}`, "format: want a format name or"},
		{`{"format": {"jq": ".", "x": 1}}`, `format: unknown key "x" (want jq)`},
		{`{"format": {"JQ": "."}}`, `unknown key "JQ"`},
		{`{"format": {}}`, `without "jq"`},
		{`{"format": {"jq": " "}}`, "format: jq: empty program"},
		{`{"format": {"jq": 1}}`, "jq: want a string, got 1"},
		{`{"logics": [{"jq": ".", "when": "x"}]}`, `logic: unknown key "when" (want name, jq, func)`},
		{`{"logics": ["x"]}`, "logic: want an object"},
		{`{"logics": [null]}`, "logic: want an object with keys name, jq, func, got null"},
		{`{"logics": [{"func": ""}]}`, "func: empty name"},
	}
	for _, tt := range tests {
		var s Spec
		err := json.Unmarshal([]byte(tt.json), &s)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("json.Unmarshal(%s) error = %v, want one containing %q", tt.json, err, tt.want)
		}
	}
	if _, err := json.Marshal(FormatSpec{Name: "rich", JQ: "."}); err == nil {
		t.Error("json.Marshal of a FormatSpec with a name and a program succeeded, want an error")
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name      string
		spec      Spec
		wantField string
		want      string
	}{
		{"unknown format", Spec{Format: FormatSpec{Name: "foo"}}, "format", `format: unknown format "foo" (known: pole_emploi, rich`},
		{"name and jq", Spec{Format: FormatSpec{Name: "rich", JQ: "."}}, "format", `format: both a name ("rich") and a jq program`},
		{"format jq syntax", Spec{Format: FormatSpec{JQ: "{name: }"}}, "format", "format: jq: parse: "},
		{"format jq blank", Spec{Format: FormatSpec{JQ: "  "}}, "format", "format: jq: empty program"},
		{"format jq unknown function", Spec{Format: FormatSpec{JQ: "nosuchfunc"}}, "format", "format: jq: compile: function not defined: nosuchfunc/0"},
		{"format jq input", Spec{Format: FormatSpec{JQ: "input"}}, "format", "format: jq: compile: "},
		{"logic jq syntax", Spec{Logics: []LogicSpec{{JQ: "."}, {Name: "drop_interim", JQ: "select(.a"}}}, "logics[1]", `logics[1] "drop_interim": jq: parse: `},
		{"logic unnamed", Spec{Logics: []LogicSpec{{JQ: "]"}}}, "logics[0]", "logics[0]: jq: parse: "},
		{"logic both", Spec{Logics: []LogicSpec{{JQ: ".", Func: "f"}}}, "logics[0]", "logics[0]: both jq and func: want exactly one"},
		{"logic neither", Spec{Logics: []LogicSpec{{Name: "x"}}}, "logics[0]", `logics[0] "x": neither jq nor func`},
		{"logic unknown func", Spec{Logics: []LogicSpec{{Func: "no_such_logic"}}}, "logics[0]", `logics[0]: unknown func "no_such_logic"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.spec.Compile()
			if err == nil {
				t.Fatalf("Compile() = %v, want an error", c)
			}
			var se *SpecError
			if !errors.As(err, &se) || se.Field != tt.wantField {
				t.Fatalf("Compile() error = %#v, want a *SpecError for %q", err, tt.wantField)
			}
			if !strings.HasPrefix(err.Error(), tt.want) && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Compile() error = %q, want %q", err, tt.want)
			}
		})
	}
}
