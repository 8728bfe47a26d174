package francetravail_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
)

func TestSplitResults(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		ids     []string
		offers  []string
		wantErr bool
	}{
		{name: "page", body: `{"resultats":[{"id":"193MWGT","a":[1,{"b":"}"}]},{"x":"\"{","id":"0659322"}],"filtresPossibles":[]}`,
			ids: []string{"193MWGT", "0659322"}, offers: []string{`{"id":"193MWGT","a":[1,{"b":"}"}]}`, `{"x":"\"{","id":"0659322"}`}},
		{name: "spaces", body: " {\n \"filtresPossibles\" : [ ] ,\n \"resultats\" : [ { \"id\" : \"A1\" , \"n\" : -1.5e3 , \"t\" : true , \"z\" : null } ] } \n",
			ids: []string{"A1"}, offers: []string{`{ "id" : "A1" , "n" : -1.5e3 , "t" : true , "z" : null }`}},
		{name: "nested id is not the id", body: `{"resultats":[{"entreprise":{"id":"X"},"id":"Y"}]}`, ids: []string{"Y"}, offers: []string{`{"entreprise":{"id":"X"},"id":"Y"}`}},
		{name: "no id", body: `{"resultats":[{"intitule":"x"},{"id":7}]}`, ids: []string{"", ""}, offers: []string{`{"intitule":"x"}`, `{"id":7}`}},
		{name: "escaped id", body: `{"resultats":[{"id":"A\u0031"}]}`, ids: []string{""}, offers: []string{`{"id":"A\u0031"}`}},
		{name: "empty", body: `{"resultats":[]}`},
		{name: "null", body: `{"resultats":null}`},
		{name: "no resultats", body: `{}`},
		{name: "truncated", body: `{"resultats":[{"id":"A"}`, wantErr: true},
		{name: "unterminated string", body: `{"resultats":[{"id":"A}]}`, wantErr: true},
		{name: "not an object", body: `[]`, wantErr: true},
		{name: "element not an object", body: `{"resultats":[1]}`, wantErr: true},
		{name: "trailing garbage", body: `{"resultats":[]} x`, wantErr: true},
		{name: "missing comma", body: `{"resultats":[{"id":"A"} {"id":"B"}]}`, wantErr: true},
		{name: "bad literal", body: `{"resultats":[{"id":"A","x":nope}]}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offers, ids, err := francetravail.SplitResults([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if len(offers) != len(tt.offers) {
				t.Fatalf("%d offers, want %d", len(offers), len(tt.offers))
			}
			for i := range offers {
				if string(offers[i]) != tt.offers[i] || ids[i] != tt.ids[i] {
					t.Errorf("offer %d = %s id %q, want %s id %q", i, offers[i], ids[i], tt.offers[i], tt.ids[i])
				}
			}
		})
	}
}

// TestSplitResultsRealPage checks the scanner against encoding/json on a
// real answer: same offers, byte for byte, same ids.
func TestSplitResultsRealPage(t *testing.T) {
	body, err := os.ReadFile(sharedFixture(t, "search-response-sample.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Resultats []json.RawMessage `json:"resultats"`
	}
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatal(err)
	}
	offers, ids, err := francetravail.SplitResults(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(offers) != len(want.Resultats) || len(offers) == 0 {
		t.Fatalf("%d offers, want %d", len(offers), len(want.Resultats))
	}
	for i, o := range offers {
		if !bytes.Equal(o, want.Resultats[i]) {
			t.Errorf("offer %d differs from encoding/json's raw value", i)
		}
		if id, _ := o.ID(); id != ids[i] {
			t.Errorf("offer %d: id %q, Offer.ID says %q", i, ids[i], id)
		}
	}
}

func FuzzSplitResults(f *testing.F) {
	f.Add([]byte(`{"resultats":[{"id":"193MWGT","a":[1,{"b":"}"}]}],"filtresPossibles":[]}`))
	f.Add([]byte(`{"resultats":null}`))
	f.Add([]byte(`{"resultats":[{"id":"A\u0031"}]}`))
	f.Add([]byte(`{"resultats":[{"id":"1","d":"a\"b\\","e":"\\"},{"id":"2","f":"\\\""}]}`))
	f.Add([]byte(`{"resultats":[{"id":"3","d":"\n\n\"}\"","x":[]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		offers, ids, err := francetravail.SplitResults(body)
		if want, ok := decodeResults(body); ok {
			if err != nil {
				t.Fatalf("%s: %v, and encoding/json reads %d offers", body, err, len(want))
			}
			if len(offers) != len(want) {
				t.Fatalf("%s: %d offers, encoding/json reads %d", body, len(offers), len(want))
			}
			for i := range want {
				if !bytes.Equal(offers[i], want[i]) {
					t.Fatalf("offer %d: %s, encoding/json reads %s", i, offers[i], want[i])
				}
			}
		}
		if err != nil {
			return
		}
		for i, o := range offers {
			if !json.Valid(o) && json.Valid(body) {
				t.Fatalf("offer %d of a valid body is not valid JSON: %s", i, o)
			}
			if ids[i] != "" {
				if id, err := o.ID(); err == nil && id != ids[i] {
					t.Fatalf("offer %d: id %q, Offer.ID says %q", i, ids[i], id)
				}
			}
		}
	})
}

// decodeResults reads "resultats" with encoding/json, when the body is one
// the scanner must read: valid JSON, one "resultats" key, offers that are
// objects.
func decodeResults(body []byte) ([]json.RawMessage, bool) {
	var page struct {
		Resultats []json.RawMessage `json:"resultats"`
	}
	if !json.Valid(body) || bytes.Count(body, []byte(`"resultats"`)) != 1 || json.Unmarshal(body, &page) != nil {
		return nil, false
	}
	for _, o := range page.Resultats {
		if len(o) == 0 || o[0] != '{' {
			return nil, false
		}
	}
	return page.Resultats, true
}

// BenchmarkSplitResults reads a page of 150 synthetic offers, against
// encoding/json reading the same page into raw messages (the baseline).
func BenchmarkSplitResults(b *testing.B) {
	var page bytes.Buffer
	page.WriteString(`{"resultats":[`)
	for i, o := range francetravailtest.SyntheticOffers(francetravail.PageSize, 1, francetravailtest.SyntheticOptions{}) {
		if i > 0 {
			page.WriteByte(',')
		}
		page.Write(o)
	}
	page.WriteString(`],"filtresPossibles":[]}`)
	body := page.Bytes()
	b.Run("Scanner", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, _, err := francetravail.SplitResults(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("EncodingJSONBaseline", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var page struct {
				Resultats []json.RawMessage `json:"resultats"`
			}
			if err := json.Unmarshal(body, &page); err != nil {
				b.Fatal(err)
			}
		}
	})
}
