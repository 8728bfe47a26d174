package hrflowtest

import (
	"bytes"
	"encoding/json"
	"testing"
)

// checkSplit compares readObject's reading of body with encoding/json's.
func checkSplit(t *testing.T, body []byte) {
	t.Helper()
	var want map[string]json.RawMessage
	wantErr := json.Unmarshal(body, &want) != nil || want == nil
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		if !wantErr {
			t.Fatalf("Compact(%q): %v", body, err)
		}
		return
	}
	in := bytes.Clone(body)
	var got map[string]json.RawMessage
	var err error
	if json.Valid(in) {
		got, err = splitObject(compactInPlace(in))
	} else {
		err = errNotObject
	}
	if (err != nil) != wantErr {
		t.Fatalf("split(%q) error %v, want error %t", body, err, wantErr)
	}
	if wantErr {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("split(%q) = %d fields, want %d", body, len(got), len(want))
	}
	for k, w := range want {
		var cw bytes.Buffer
		json.Compact(&cw, w)
		if !bytes.Equal(got[k], cw.Bytes()) {
			t.Errorf("split(%q)[%q] = %s, want %s", body, k, got[k], cw.Bytes())
		}
	}
}

var splitCases = []string{
	`{}`,
	` { } `,
	`{"a":1}`,
	`{ "a" : [1, 2, {"b" : "c d"}] , "e\"f" : "g\\"  , "h":null,"i":true,"j":-1.5e3}`,
	`{"a":"}", "b":"{[", "c":{"d":"]\\\" ,"}}`,
	`{"a":1,"a":2}`,
	"{\"t\":\"tab\\tnew\\nline é \\u00e9 \\ud83d\\ude00\"}\n",
	`{"nested":{"job":{"x":[[],[{}]]}}}`,
	`[1,2]`,
	`"s"`,
	`{"a":}`,
	`{"a":1} x`,
	`null`,
}

func TestSplitObject(t *testing.T) {
	for _, c := range splitCases {
		checkSplit(t, []byte(c))
	}
}

func FuzzSplitObject(f *testing.F) {
	for _, c := range splitCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkSplit(t, body) })
}
