package francetravail_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

// ftID and partnerID make ids of the two shapes France Travail gives.
func ftID(r *rand.Rand) string {
	b := []byte(fmt.Sprintf("%03d", r.IntN(1000)))
	for range 4 {
		b = append(b, byte('A'+r.IntN(26)))
	}
	return string(b)
}

func partnerID(r *rand.Rand) string { return fmt.Sprintf("%07d", r.IntN(10_000_000)) }

// TestIDSetExact checks the set against a map on ids of every shape,
// including ids that differ by one character and near-misses of the usual
// shapes, which must not be taken for one another.
func TestIDSetExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s francetravail.IDSet
	ref := map[string]bool{}
	ids := []string{"193MWGT", "193MWGU", "0659322", "0659323", "000AAAA", "999ZZZZ", "0000000", "9999999",
		"193mwgt", "193MWG", "193MWGT0", "1934WGT", "19AMWGT", "065932A", "", "é93MWGT", "4570000", "456976000"}
	for range 200_000 {
		ids = append(ids, ftID(r), partnerID(r))
	}
	for _, id := range ids {
		if got, want := s.Add(id), !ref[id]; got != want {
			t.Fatalf("Add(%q) = %v, want %v", id, got, want)
		}
		ref[id] = true
	}
	if s.Len() != len(ref) {
		t.Errorf("Len() = %d, want %d", s.Len(), len(ref))
	}
	for id := range ref {
		if s.Add(id) || !s.Has(id) {
			t.Fatalf("Add(%q) after it was added = true, or Has false", id)
		}
	}
	for range 1000 {
		if id := ftID(r) + "X"; s.Has(id) != ref[id] {
			t.Fatalf("Has(%q) = %v, want %v", id, s.Has(id), ref[id])
		}
		if id := partnerID(r); s.Has(id) != ref[id] {
			t.Fatalf("Has(%q) = %v, want %v", id, s.Has(id), ref[id])
		}
	}
}

func TestIDSetZeroValue(t *testing.T) {
	var s francetravail.IDSet
	if s.Has("193MWGT") || s.Has("x") || s.Len() != 0 || !s.Add("193MWGT") || s.Add("193MWGT") || s.Len() != 1 {
		t.Errorf("zero IDSet: Len %d after adding one id twice, want 1", s.Len())
	}
}

// BenchmarkIDSet adds a million ids shaped as the API's (57 % partners'),
// and reports the heap each id costs against a map[string]struct{} of the
// same ids, built in the same run.
func BenchmarkIDSet(b *testing.B) {
	const n = 1_000_000
	r := rand.New(rand.NewPCG(3, 4))
	ids := make([]string, n)
	for i := range ids {
		if r.Float64() < 0.57 {
			ids[i] = partnerID(r)
		} else {
			ids[i] = ftID(r)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	b.Run("IDSet", func(b *testing.B) {
		for b.Loop() {
			before := heap()
			var s francetravail.IDSet
			for _, id := range ids {
				s.Add(id)
			}
			b.ReportMetric(float64(heap()-before)/n, "B/id")
			runtime.KeepAlive(&s)
		}
	})
	b.Run("MapBaseline", func(b *testing.B) {
		for b.Loop() {
			before := heap()
			s := map[string]struct{}{}
			for _, id := range ids {
				s[id] = struct{}{}
			}
			b.ReportMetric(float64(heap()-before)/n, "B/id")
			runtime.KeepAlive(s)
		}
	})
}
