package francetravailtest

import (
	"cmp"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

// naive answers a query the plain way: every Entry of the corpus, filtered,
// sorted; the index must agree with it, order included.
func naive(c Corpus, p *searchParams, cutoff int64) []int32 {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	var ids []int32
	for i := range c.Len() {
		en := c.Entry(i)
		switch {
		case !in(p.romes, en.ROME), !in(p.communes, en.Commune), !in(p.depts, en.Departement),
			len(p.regions) > 0 && !slices.Contains(p.regions, regionOfDept[en.Departement]),
			!in(p.types, en.TypeContrat), !in(p.natures, en.NatureContrat),
			p.origine != 0 && en.Origine != p.origine,
			p.expExigence != 0 && en.ExperienceExige != p.expExigence,
			p.experience != 0 && en.Experience != p.experience,
			p.qualification == '9' && en.Qualification != '9',
			p.qualification == '0' && (en.Qualification < '1' || en.Qualification > '8'),
			en.Created < cutoff,
			p.hasDates && (en.Created < p.minCreated || en.Created > p.maxCreated):
			continue
		}
		ids = append(ids, int32(i))
	}
	rank := func(i int32) int {
		if p.sort == 0 && c.Entry(int(i)).Origine != '1' {
			return 1
		}
		return 0
	}
	slices.SortFunc(ids, func(a, b int32) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)),
			cmp.Compare(c.Entry(int(b)).Created, c.Entry(int(a)).Created), cmp.Compare(a, b))
	})
	return ids
}

// TestIndexMatchesNaive compares the index's answers with naive ones on a
// corpus whose offers share creation times (ties), for queries on every
// filter, date windows whose bounds fall exactly on offers (inclusive to
// the millisecond), both orders, and results past the cap.
func TestIndexMatchesNaive(t *testing.T) {
	now := time.Date(2025, 8, 6, 12, 0, 0, 0, time.UTC)
	offers := SyntheticOffers(6000, 3, SyntheticOptions{Now: now, Span: 20 * time.Second, Departements: []string{"74", "73", "2A", "971"}})
	// A third of the offers on whole seconds, about a hundred a second:
	// ties, and offers right on the bounds of second-precision windows.
	wholeSecond := regexp.MustCompile(`("dateCreation":"[^".]*)\.[0-9]{3}Z"`)
	for i := 0; i < len(offers); i += 3 {
		offers[i] = wholeSecond.ReplaceAll(offers[i], []byte(`$1.000Z"`))
	}
	c, err := Offers(append(offers, offers[:50]...)) // repeated ids, same times
	if err != nil {
		t.Fatal(err)
	}
	ix := newIndex(c)
	at := func(i int) string { return time.UnixMilli(c.Entry(i).Created).UTC().Format(dateLayout) }
	queries := []string{"", "sort=1", "sort=2", "departement=74,2A", "region=84", "typeContrat=CDI,MIS&sort=1",
		"natureContrat=E1", "origineOffre=2", "qualification=9", "qualification=0", "experienceExigence=E",
		"experience=1", "codeROME=" + c.Entry(0).ROME + "," + c.Entry(1).ROME, "commune=" + c.Entry(5).Commune,
		"codeROME=A0000", "minCreationDate=" + at(10) + "&maxCreationDate=" + at(20),
		"minCreationDate=" + at(30) + "&maxCreationDate=" + at(30) + "&sort=1",
		"minCreationDate=" + at(33) + "&maxCreationDate=" + at(60) + "&origineOffre=1",
		"minCreationDate=2025-08-06T11:59:50Z&maxCreationDate=2025-08-06T11:59:55Z&departement=73"}
	for _, query := range queries {
		v, _ := url.ParseQuery(query)
		p, msg := parseSearchParams(v)
		if msg != "" {
			t.Fatalf("%s: %s", query, msg)
		}
		for _, cutoff := range []int64{0, now.Add(-10 * time.Second).UnixMilli()} {
			want := naive(c, p, cutoff)
			got := compute(c, ix, p, cutoff)
			if got.total != len(want) {
				t.Errorf("%s (cut-off %d): total %d, want %d", query, cutoff, got.total, len(want))
				continue
			}
			if kept := want[:min(len(want), francetravail.MaxReachable)]; !slices.Equal(got.ids, kept) {
				t.Errorf("%s (cut-off %d): the %d ids kept differ from the naive order", query, cutoff, len(kept))
			}
		}
	}
}

// TestIndexIsCompact measures what the index keeps per offer of a
// synthetic corpus.
func TestIndexIsCompact(t *testing.T) {
	const n = 100_000
	c := Synthetic(n, 9, SyntheticOptions{})
	before := heapAlloc()
	ix := newIndex(c)
	perOffer := float64(heapAlloc()-min(before, heapAlloc())) / n
	t.Logf("index of %d offers: %.1f bytes an offer", n, perOffer)
	if perOffer > 48 {
		t.Errorf("the index keeps %.1f bytes an offer, want about 36", perOffer)
	}
	if len(ix.rows) != n {
		t.Fatal("not indexed")
	}
	runtime.KeepAlive(ix)
}

// heapAlloc is the live heap after a collection.
func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
