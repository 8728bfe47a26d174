package francetravailtest

import (
	"testing"

	"github.com/pulljobs/pulljobs/pkg/fixtures"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sharedFixture returns the path of a file of the shared France Travail
// fixtures, and skips the test when it is absent.
func sharedFixture(t testing.TB, name string) string {
	t.Helper()
	return fixtures.Path(t, name)
}
