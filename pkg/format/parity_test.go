package format

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

// TestPoleEmploiParity checks the default format against the historic
// connector's output on 838 real offers, compared as JSON values.
func TestPoleEmploiParity(t *testing.T) {
	dir := fixtureDir(t)
	offers := readFixtureLines(t, filepath.Join(dir, "offers-dept74-2025-08.ndjson"))
	want := readFixtureLines(t, filepath.Join(dir, "format_job-expected.ndjson"))
	if len(offers) != len(want) {
		t.Fatalf("%d offers but %d expected jobs", len(offers), len(want))
	}
	for i, offer := range offers {
		job, err := PoleEmploi(francetravail.Offer(offer))
		if err != nil {
			t.Errorf("line %d: PoleEmploi() error = %v", i+1, err)
			continue
		}
		got, err := json.Marshal(job)
		if err != nil {
			t.Errorf("line %d: marshal job: %v", i+1, err)
			continue
		}
		if !jsonEqual(t, got, want[i]) {
			t.Errorf("line %d (offer %s):\n got %s\nwant %s", i+1, job.Reference(), got, want[i])
		}
	}
}

// jsonEqual reports whether a and b hold equal JSON values: key order and
// number spelling do not matter.
func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("invalid JSON %q: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}
