package hrflow

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

// same reports whether a and b are the same JSON value.
func same(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("AppendJSON wrote invalid JSON %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(va, vb)
}

type tag struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

func TestAppendJSON(t *testing.T) {
	values := []any{
		nil, true, false, "", "plain", "é à ü 中文 🙂", "quote \" backslash \\ slash /", "\n\r\t\b\f\x00\x1f\x7f",
		"<html>&amp;</html>", "\u2028\u2029", "a\u2028b é", "bad utf-8: \xff\xfe", "é\xe2\x80", "\xe2\x80\xa9\xff", 0.0, math.Copysign(0, -1), 1.0, 43.61, 45.896834, 6.641384,
		1e21, 1e20, 1e-6, 1e-7, 123456789.0, -2.5e-9, math.MaxFloat64, float32(0.1), 3, int64(-7), uint64(9), json.Number("12.50"),
		json.RawMessage(`{"a":[1,2]}`), []any{}, []any{1.0, "x", nil, []any{true}},
		map[string]any{}, map[string]any{"z": 1.0, "a": "b", "m": map[string]any{"k": nil}},
		Job{"name": "n", "tags": []tag{{"a", nil}, {"b", "c"}}, "location": map[string]any{"lat": nil, "text": ""}},
		[]any(nil), map[string]any(nil),
	}
	for _, v := range values {
		got, err := AppendJSON(nil, v)
		if err != nil {
			t.Errorf("AppendJSON(%#v): %v", v, err)
			continue
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !same(t, got, want) {
			t.Errorf("AppendJSON(%#v) = %s, want %s", v, got, want)
		}
		// Byte for byte, but for the HTML escaping encoding/json adds.
		var plain bytes.Buffer
		enc := json.NewEncoder(&plain)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		if w := bytes.TrimSuffix(plain.Bytes(), []byte("\n")); !bytes.Equal(got, w) {
			t.Errorf("AppendJSON(%#v) = %s, want exactly %s", v, got, w)
		}
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), []any{math.Inf(-1)}} {
		if _, err := AppendJSON(nil, bad); err == nil {
			t.Errorf("AppendJSON(%v): err = nil, want an error", bad)
		}
	}
}

func TestJobMarshalJSON(t *testing.T) {
	job := Job{"reference": "204XKQA", "name": "Cuisinier (H/F)", "tags": []any{map[string]any{"name": "t", "value": 2.5}}}
	b, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"Cuisinier (H/F)","reference":"204XKQA","tags":[{"name":"t","value":2.5}]}`; string(b) != want {
		t.Errorf("json.Marshal(job) = %s, want %s", b, want)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "\x00\xff", "\u2028é", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("appendString(%q) = %s: invalid JSON: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("appendString(%q) reads back as %q, want %q", s, back, wantBack)
		}
	})
}

// benchText is French prose shaped like an offer's description.
var benchText = strings.Repeat("Rattaché(e) au responsable d'exploitation, vous assurez la préparation des commandes, "+
	"le contrôle qualité et la mise à jour des stocks.\nVos missions : réception, étiquetage, expédition.\n", 25)

// BenchmarkAppendString encodes a description; BenchmarkMarshalString is
// encoding/json on the same text, the baseline of the same run.
func BenchmarkAppendString(b *testing.B) {
	b.SetBytes(int64(len(benchText)))
	var buf []byte
	for b.Loop() {
		buf = appendString(buf[:0], benchText)
	}
}

func BenchmarkMarshalString(b *testing.B) {
	b.SetBytes(int64(len(benchText)))
	for b.Loop() {
		if _, err := json.Marshal(benchText); err != nil {
			b.Fatal(err)
		}
	}
}
