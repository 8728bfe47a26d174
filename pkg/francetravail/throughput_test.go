package francetravail_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
)

// TestThroughput measures the fetch rate against the emulator with its quota
// at 10 calls/s and the client's rate limit at 10 calls/s: a ceiling of
// 10 × 150 = 1 500 offers/s. It prints the figure and asserts nothing about
// time. Run it with
//
//	PULLJOBS_THROUGHPUT=20000 go test ./pkg/francetravail -run TestThroughput -v
//
// where the value is the number of offers, all in one département, so the
// search has to split them by date as a real sweep does.
func TestThroughput(t *testing.T) {
	v := os.Getenv("PULLJOBS_THROUGHPUT")
	if v == "" {
		t.Skip("set PULLJOBS_THROUGHPUT to a number of offers to measure")
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("PULLJOBS_THROUGHPUT=%q: want a number of offers", v)
	}
	const quota = 10
	e := newEnv(t, francetravailtest.Config{
		Quota:  quota,
		Corpus: francetravailtest.Synthetic(n, 1, francetravailtest.SyntheticOptions{Departements: []string{"74"}}),
	}, func(c *francetravail.Config) { c.RateLimit = quota })
	start := time.Now()
	ids, sum := e.searchAll(t, francetravail.Query{Departement: "74"})
	elapsed := time.Since(start)
	if len(ids) != n {
		t.Errorf("%d offers, want %d", len(ids), n)
	}
	ceiling := float64(quota * francetravail.PageSize)
	rate := float64(len(ids)) / elapsed.Seconds()
	minCalls := (n + francetravail.PageSize - 1) / francetravail.PageSize
	t.Logf("%d offers in %v: %.0f offers/s against a ceiling of %.0f (%.0f%%); %d calls (%.1f/s) for %d pages at least, %d windows; answers %v",
		len(ids), elapsed.Round(time.Millisecond), rate, ceiling, 100*rate/ceiling, sum.Requests,
		float64(sum.Requests)/elapsed.Seconds(), minCalls, sum.Windows, e.emu.Stats().Requests["GET /offres/search"])
}
