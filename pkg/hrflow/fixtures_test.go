package hrflow_test

import (
	"testing"

	"github.com/pulljobs/pulljobs/pkg/fixtures"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// fixtureJobs reads up to n real jobs, the expected output of the default
// format on the shared offers (read in place, never copied); it skips the
// test when they are absent.
func fixtureJobs(t testing.TB, n int) []hrflow.Job {
	t.Helper()
	var jobs []hrflow.Job
	for _, j := range fixtures.ExpectedJobs(t, n) {
		jobs = append(jobs, hrflow.Job(j))
	}
	return jobs
}
