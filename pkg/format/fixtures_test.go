package format

import (
	"testing"

	"github.com/pulljobs/pulljobs/pkg/fixtures"
)

// readFixtureLines returns the non-blank lines of a fixture file.
func readFixtureLines(t testing.TB, path string) [][]byte {
	t.Helper()
	return fixtures.Lines(t, path)
}

// fixtureDir returns the directory of the France Travail fixtures, and
// skips the test when there is none.
func fixtureDir(t testing.TB) string {
	t.Helper()
	return fixtures.Dir(t)
}
