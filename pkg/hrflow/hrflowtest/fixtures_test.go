package hrflowtest

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/fixtures"

	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// fixtureFile is the expected output of the default format: real jobs.
const fixtureFile = "francetravail/format_job-expected.ndjson"

// fixtureJobs reads up to n jobs of the shared fixtures (third-party data,
// read in place, never copied), found under $PULLJOBS_SHARED or in a
// shared/fixtures directory above the working directory; it skips the test
// when they are absent.
func fixtureJobs(t testing.TB, n int) []hrflow.Job {
	t.Helper()
	path := findFixture(fixtureFile)
	if path == "" {
		t.Skipf("shared fixtures not found (set PULLJOBS_SHARED to the shared directory): %s", fixtureFile)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var jobs []hrflow.Job
	for sc.Scan() && len(jobs) < n {
		var j hrflow.Job
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		jobs = append(jobs, j)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return jobs
}

// findFixture returns the path of a shared fixture, or "" when absent.
func findFixture(rel string) string {
	dir, _ := fixtures.Find()
	if dir == "" {
		return ""
	}
	p := filepath.Join(dir, filepath.Base(rel))
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}
