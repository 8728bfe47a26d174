package format

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

// readIDs reads offers from input and returns their ids ("?" for none) and
// the error of ReadOffers.
func readIDs(t *testing.T, input string) ([]string, error) {
	t.Helper()
	var ids []string
	err := ReadOffers(strings.NewReader(input), func(o francetravail.Offer) error {
		id, err := o.ID()
		if err != nil {
			id = "?"
		}
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

func TestReadOffers(t *testing.T) {
	search, err := os.ReadFile(filepath.Join("testdata", "search-response.json"))
	if err != nil {
		t.Fatal(err)
	}
	pretty, err := os.ReadFile(filepath.Join("testdata", "offers", "complete.json"))
	if err != nil {
		t.Fatal(err)
	}
	searchIDs := []string{"199RSPA", "0611111", "199RSPB"}
	tests := []struct {
		name    string
		input   string
		want    []string
		wantErr string
	}{
		{"empty", "", nil, ""},
		{"blank", " \n\n\t\n", nil, ""},
		{"ndjson", `{"id":"A"}` + "\n" + `{"id":"B"}` + "\n", []string{"A", "B"}, ""},
		{"ndjson no final newline, blank lines, CRLF", "\n\r\n" + `{"id":"A"}` + "\r\n\r\n" + `  {"id":"B"}  `, []string{"A", "B"}, ""},
		{"ndjson with BOM", "\xef\xbb\xbf" + `{"id":"A"}`, []string{"A"}, ""},
		{"ndjson malformed line goes on", `{"id":"A"}` + "\n" + `{"id":` + "\n\n" + `{"id":"C"}`, []string{"A", "C"}, "line 2: malformed JSON"},
		{"ndjson non-object line", `{"id":"A"}` + "\n42\n" + `{"id":"C"}`, []string{"A", "C"}, "line 2: not a JSON object"},
		{"ndjson of arrays and responses", `[{"id":"A"},{"id":"B"}]` + "\n" + strings.Join(strings.Fields(string(search)), " "), append([]string{"A", "B"}, searchIDs...), ""},
		{"array", `[{"id":"A"}, {"id":"B"}, {"id":"C"}]`, []string{"A", "B", "C"}, ""},
		{"array pretty", "[\n  {\"id\": \"A\"},\n  {\"id\": \"B\"}\n]\n", []string{"A", "B"}, ""},
		{"empty array", "[]", nil, ""},
		{"array with a non-object", `[{"id":"A"}, 1, {"id":"C"}]`, []string{"A", "C"}, "item 1: not a JSON object"},
		{"array truncated", "[\n{\"id\":\"A\"},\n{\"id\":", []string{"A"}, "read offers: item 1: truncated JSON"},
		{"array malformed", "[\n{\"id\":\"A\"} {\"id\":\"B\"}]", []string{"A"}, "malformed JSON at byte"},
		{"search response", string(search), searchIDs, ""},
		{"search response, filters first", `{"filtresPossibles": [], "resultats": [{"id": "A"}]}`, []string{"A"}, ""},
		{"two search responses", string(search) + string(search), append(searchIDs, searchIDs...), ""},
		{"pretty offer", string(pretty), []string{"199ZZZA"}, ""},
		{"pretty offers", string(pretty) + "\n" + string(pretty), []string{"199ZZZA", "199ZZZA"}, ""},
		{"offer without id is still an offer", `{"intitule":"x"}`, []string{"?"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readIDs(t, tt.input)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ReadOffers() ids = %q, want %q", got, tt.want)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("ReadOffers() error = %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("ReadOffers() error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadOffersKeepsBytes(t *testing.T) {
	const line = `{"id": "A",  "x": [1, 2]}`
	var got []francetravail.Offer
	err := ReadOffers(strings.NewReader(line+"\n"+line), func(o francetravail.Offer) error {
		got = append(got, o)
		return nil
	})
	if err != nil || len(got) != 2 || string(got[0]) != line || &got[0][0] == &got[1][0] {
		t.Fatalf("ReadOffers() = %q, %v; want two distinct copies of %q", got, err, line)
	}
}

func TestReadOffersYieldErrorStops(t *testing.T) {
	stop := errors.New("stop")
	for _, input := range []string{`{"id":"A"}` + "\n" + `{"id":"B"}`, `[{"id":"A"},{"id":"B"}]`, `{"resultats":[{"id":"A"},{"id":"B"}]}`} {
		n := 0
		err := ReadOffers(strings.NewReader(input), func(francetravail.Offer) error {
			n++
			return stop
		})
		if err != stop || n != 1 {
			t.Errorf("ReadOffers(%s) = %v after %d offers, want the yield error after 1", input, err, n)
		}
	}
}

func TestReadOffersCapsErrors(t *testing.T) {
	input := strings.Repeat("nope\n", maxReadErrors+5)
	_, err := readIDs(t, `{"id":"A"}`+"\n"+input)
	if err == nil || !strings.Contains(err.Error(), "and 5 more malformed items") {
		t.Fatalf("ReadOffers() error = %v, want the count of the errors not listed", err)
	}
}

// TestReadOffersFixtures reads the real search response and NDJSON.
func TestReadOffersFixtures(t *testing.T) {
	dir := fixtureDir(t)
	for name, want := range map[string]int{"search-response-sample.json": -1, "offers-dept74-2025-08.ndjson": 838} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		err = ReadOffers(f, func(o francetravail.Offer) error {
			if _, err := o.ID(); err != nil {
				t.Errorf("%s: offer %d: %v", name, n, err)
			}
			n++
			return nil
		})
		f.Close()
		if err != nil || n == 0 || want > 0 && n != want {
			t.Errorf("%s: ReadOffers() read %d offers, error %v; want %d", name, n, err, want)
		}
	}
}
