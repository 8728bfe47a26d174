package francetravail_test

import (
	"bytes"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
)

var reDateCreation = regexp.MustCompile(`"dateCreation":"[^"]*"`)

// withCreation returns a copy of o created at t (to the millisecond).
func withCreation(o francetravail.Offer, t time.Time) francetravail.Offer {
	return reDateCreation.ReplaceAll(bytes.Clone(o), []byte(`"dateCreation":"`+t.UTC().Format("2006-01-02T15:04:05.000Z")+`"`))
}

func distinctIDs(t *testing.T, offers []francetravail.Offer) int {
	t.Helper()
	seen := map[string]bool{}
	for _, o := range offers {
		id, err := o.ID()
		if err != nil {
			t.Fatal(err)
		}
		seen[id] = true
	}
	return len(seen)
}

// TestDuplicatesInOneResult: the API serves the same offer twice in the
// result of one query, on the same page or on two (here through the
// emulator's PUT /_emulator/offers, as a test of the whole way would). The
// copies are counted, not passed on, and explain the gap between Total and
// Fetched.
func TestDuplicatesInOneResult(t *testing.T) {
	offers := francetravailtest.SyntheticOffers(297, 21, francetravailtest.SyntheticOptions{Now: testNow})
	offers = append(offers,
		offers[10], // the same bytes: next to the original
		withCreation(offers[100], testNow.Add(-time.Hour)), // the same id, elsewhere in the order
		withCreation(offers[200], testNow.Add(-40*24*time.Hour)))
	e := newEnv(t, francetravailtest.Config{}, nil)
	var body bytes.Buffer
	for _, o := range offers {
		body.Write(o)
		body.WriteByte('\n')
	}
	req, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/_emulator/offers", &body)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /_emulator/offers: %d", resp.StatusCode)
	}
	ids, sum := e.searchAll(t, francetravail.Query{})
	if want := distinctIDs(t, offers); len(ids) != want {
		t.Errorf("%d offers passed on, want the %d distinct ones", len(ids), want)
	}
	if sum.Total != 300 || sum.Fetched != 297 || sum.Duplicates != 3 || sum.Overlaps != 0 || sum.Windows != 1 {
		t.Errorf("summary %+v, want total 300, fetched 297, 3 duplicates, no overlap, one window", sum)
	}
}

// TestDuplicatesAcrossWindows: a query over the cap, split into windows
// that share their boundary second, on offers created on whole seconds
// (about two a second), so that the emulator (whose bounds are inclusive)
// serves those of each shared second in both windows; and ten offers the
// API serves twice, five next to their original and five in another
// window. The overlaps are not duplicates; the duplicates are, wherever they
// are; Total = Fetched + Duplicates.
func TestDuplicatesAcrossWindows(t *testing.T) {
	const n = 8000
	span := time.Hour
	offers := francetravailtest.SyntheticOffers(n, 22, francetravailtest.SyntheticOptions{Now: testNow, Span: span, Departements: []string{"74"}})
	for i, o := range offers {
		created := decode(t, o).DateCreation
		offers[i] = withCreation(o, created.Truncate(time.Second))
	}
	for k := 0; k < 5; k++ {
		offers = append(offers, offers[k*1000+7])
		moved := testNow.Add(-span + time.Duration(k*700+333)*time.Second + 500*time.Millisecond)
		offers = append(offers, withCreation(offers[k*1000+500], moved))
	}
	corpus, err := francetravailtest.Offers(offers)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, francetravailtest.Config{Corpus: corpus}, nil)
	q := francetravail.Query{
		MinCreationDate: testNow.Add(-span).Format(francetravail.CreationDateLayout),
		MaxCreationDate: testNow.Format(francetravail.CreationDateLayout),
	}
	ids, sum := e.searchAll(t, q)
	if len(ids) != n {
		t.Errorf("%d offers passed on, want %d", len(ids), n)
	}
	if sum.Windows < 2 || sum.Overlaps == 0 {
		t.Fatalf("summary %+v: want several windows and offers met on their shared seconds, or the test tests nothing", sum)
	}
	if sum.Total != n+10 || sum.Fetched != n || sum.Duplicates != 10 || sum.Truncated {
		t.Errorf("summary %+v, want total %d, fetched %d, 10 duplicates", sum, n+10, n)
	}
	if sum.Total != sum.Fetched+sum.Duplicates+sum.Unreached {
		t.Errorf("summary %+v: Total ≠ Fetched + Duplicates + Unreached", sum)
	}
	t.Logf("summary %+v", sum)
}
