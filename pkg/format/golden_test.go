package format

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

// updateRich rewrites the rich format's golden files from the current code
// (go test -run Golden -update-rich); review the diff before committing. The
// pole_emploi golden files are written from the spec, never generated.
var updateRich = flag.Bool("update-rich", false, "rewrite testdata/rich golden files")

// goldenOffers returns the project's own edge-case offers, testdata/offers/*.json,
// by case name.
func goldenOffers(t testing.TB) map[string]francetravail.Offer {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "offers", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata offers (%v)", err)
	}
	offers := make(map[string]francetravail.Offer, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		offers[strings.TrimSuffix(filepath.Base(f), ".json")] = b
	}
	return offers
}

// TestGolden formats each edge-case offer and compares the job, as a JSON
// value, with testdata/<format>/<case>.json.
func TestGolden(t *testing.T) {
	formats := []struct {
		name   string
		format Func
		update bool
	}{
		{NamePoleEmploi, PoleEmploi, false},
		{NameRich, Rich, *updateRich},
	}
	offers := goldenOffers(t)
	for _, f := range formats {
		for name, offer := range offers {
			t.Run(f.name+"/"+name, func(t *testing.T) {
				job, err := f.format(offer)
				if err != nil {
					t.Fatalf("%s(%s) error = %v, want a job", f.name, name, err)
				}
				got, err := json.MarshalIndent(job, "", "  ")
				if err != nil {
					t.Fatalf("marshal job: %v", err)
				}
				path := filepath.Join("testdata", f.name, name+".json")
				if f.update {
					if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("golden file: %v", err)
				}
				if !jsonEqual(t, got, want) {
					t.Errorf("%s(%s):\n got %s\nwant %s", f.name, name, compact(got), compact(want))
				}
			})
		}
	}
}

func compact(b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}
