package francetravailtest

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sharedFixture returns the path of a file of shared/fixtures/francetravail,
// found through $PULLJOBS_SHARED or by walking up from the working
// directory; the test is skipped when it is absent.
func sharedFixture(t testing.TB, name string) string {
	t.Helper()
	if dir := os.Getenv("PULLJOBS_SHARED"); dir != "" {
		p := filepath.Join(dir, "fixtures", "francetravail", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		for _, shared := range []string{filepath.Join(dir, "shared"), filepath.Join(dir, "..", "shared")} {
			p := filepath.Join(shared, "fixtures", "francetravail", name)
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skipf("shared fixture %s not found (set PULLJOBS_SHARED to the shared/ folder)", name)
		}
		dir = parent
	}
}
