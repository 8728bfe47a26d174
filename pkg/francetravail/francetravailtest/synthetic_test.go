package francetravailtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

var (
	reFTID      = regexp.MustCompile(`^[0-9]{3}[A-Z]{4}$`)
	rePartnerID = regexp.MustCompile(`^[0-9]{7}$`)
)

func TestSyntheticDeterministicAndUnique(t *testing.T) {
	now := time.Date(2025, 8, 6, 0, 0, 0, 0, time.UTC)
	opts := SyntheticOptions{Now: now}
	a, b := Synthetic(3000, 42, opts), Synthetic(3000, 42, opts)
	other := Synthetic(3000, 43, opts)
	ids := map[string]int{}
	sameAsOther := 0
	for i := 0; i < a.Len(); i++ {
		oa, ob := a.Offer(i), b.Offer(i)
		if !bytes.Equal(oa, ob) {
			t.Fatalf("offer %d differs between two corpora of the same (n, seed, opts)", i)
		}
		id := a.Entry(i).ID
		if j, dup := ids[id]; dup {
			t.Fatalf("offers %d and %d share id %q", j, i, id)
		}
		ids[id] = i
		if other.Entry(i).ID == id {
			sameAsOther++
		}
		if got, ok := a.Index(id); !ok || got != i {
			t.Fatalf("Index(%q) = %d, %v; want %d, true", id, got, ok, i)
		}
	}
	if sameAsOther > 10 {
		t.Errorf("%d ids are the same with another seed; want ids to depend on the seed", sameAsOther)
	}
	for _, id := range []string{"", "abc", "000AAAA", "0000000", "12345678", "999ZZZZ"} {
		if i, ok := a.Index(id); ok && a.Entry(i).ID != id {
			t.Errorf("Index(%q) = %d, whose id is %q", id, i, a.Entry(i).ID)
		}
	}
}

// TestSyntheticEntryMatchesOffer checks that the index the emulator filters
// on says what the generated offer says.
func TestSyntheticEntryMatchesOffer(t *testing.T) {
	c := Synthetic(5000, 7, SyntheticOptions{})
	var p fastjson.Parser
	for i := 0; i < c.Len(); i++ {
		o := c.Offer(i)
		if !json.Valid(o) {
			t.Fatalf("offer %d is not valid JSON: %s", i, o)
		}
		got, err := entryOf(&p, o)
		if err != nil {
			t.Fatalf("offer %d: %v", i, err)
		}
		if want := c.Entry(i); got != want {
			t.Fatalf("offer %d: indexed from its bytes as\n%+v\nbut Entry says\n%+v", i, got, want)
		}
		id := got.ID
		if got.Origine == '1' && !reFTID.MatchString(id) || got.Origine == '2' && !rePartnerID.MatchString(id) {
			t.Fatalf("offer %d: id %q does not look like an origin %c id", i, id, got.Origine)
		}
	}
}

func TestSyntheticShape(t *testing.T) {
	now := time.Date(2025, 8, 6, 12, 0, 0, 0, time.UTC)
	const n = 6000
	c := Synthetic(n, 1, SyntheticOptions{Now: now})
	depts, romes := map[string]bool{}, map[string]bool{}
	origins := map[byte]int{}
	var size int
	for i := 0; i < n; i++ {
		e := c.Entry(i)
		created := time.UnixMilli(e.Created)
		if created.Before(now.Add(-DefaultSpan)) || !created.Before(now) {
			t.Fatalf("offer %d created %v, want within the 31 days before %v", i, created, now)
		}
		depts[e.Departement] = true
		romes[e.ROME] = true
		origins[e.Origine]++
		size += len(c.Offer(i))
	}
	if len(depts) < 90 {
		t.Errorf("%d départements, want nearly all", len(depts))
	}
	if len(romes) < 40 {
		t.Errorf("%d ROME codes, want many", len(romes))
	}
	if share := float64(origins['2']) / n; share < 0.5 || share > 0.64 {
		t.Errorf("partner share %.2f, want about %.2f", share, DefaultPartnerShare)
	}
	if avg := size / n; avg < 3000 || avg > 4200 {
		t.Errorf("average offer size %d bytes, want about 3.5 KB like the real ones", avg)
	}
	one := Synthetic(2000, 1, SyntheticOptions{Now: now, Departements: []string{"74"}, PartnerShare: -1})
	for i := 0; i < one.Len(); i++ {
		if e := one.Entry(i); e.Departement != "74" || e.Origine != '1' {
			t.Fatalf("offer %d in %q from origin %c, want 74 and France Travail only", i, e.Departement, e.Origine)
		}
	}
}

// TestSyntheticPresenceRates compares, origin by origin, how often each
// top-level field is present in synthetic offers and in the real sample.
func TestSyntheticPresenceRates(t *testing.T) {
	path := sharedFixture(t, "offers-dept74-2025-08.ndjson")
	real := presence(t, func(yield func([]byte)) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			yield(sc.Bytes())
		}
	})
	c := Synthetic(4000, 3, SyntheticOptions{})
	synth := presence(t, func(yield func([]byte)) {
		for i := 0; i < c.Len(); i++ {
			yield(c.Offer(i))
		}
	})
	const tolerance = 0.15
	for origin, fields := range real {
		for field, want := range fields {
			got := synth[origin][field]
			if got < want-tolerance || got > want+tolerance {
				t.Errorf("origin %s: %s present in %.0f%% of synthetic offers, %.0f%% of real ones", origin, field, 100*got, 100*want)
			}
		}
		for field, got := range synth[origin] {
			if _, ok := fields[field]; !ok && got > tolerance {
				t.Errorf("origin %s: %s present in %.0f%% of synthetic offers, never in real ones", origin, field, 100*got)
			}
		}
	}
}

// presence returns, per origin, the share of offers carrying each top-level field.
func presence(t *testing.T, each func(func([]byte))) map[string]map[string]float64 {
	t.Helper()
	counts := map[string]map[string]float64{}
	totals := map[string]float64{}
	var p fastjson.Parser
	each(func(b []byte) {
		v, err := p.ParseBytes(b)
		if err != nil {
			t.Fatalf("offer: %v", err)
		}
		origin := string(v.GetStringBytes("origineOffre", "origine"))
		totals[origin]++
		if counts[origin] == nil {
			counts[origin] = map[string]float64{}
		}
		v.GetObject().Visit(func(k []byte, _ *fastjson.Value) { counts[origin][string(k)]++ })
	})
	for o, m := range counts {
		for k := range m {
			m[k] /= totals[o]
		}
	}
	return counts
}

// TestSyntheticMemory measures what a synthetic corpus costs per offer.
func TestSyntheticMemory(t *testing.T) {
	const n = 100_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := Synthetic(n, 9, SyntheticOptions{})
	runtime.GC()
	runtime.ReadMemStats(&after)
	perOffer := float64(after.HeapAlloc-min(before.HeapAlloc, after.HeapAlloc)) / n
	t.Logf("synthetic corpus of %d offers: %.2f bytes/offer kept (offers are generated on demand)", n, perOffer)
	if perOffer > 8 {
		t.Errorf("synthetic corpus keeps %.1f bytes per offer, want ~0", perOffer)
	}
	runtime.KeepAlive(c)
}

func TestOffersRejectsBadCorpora(t *testing.T) {
	tests := []struct {
		name   string
		offers []string
	}{
		{"missing id", []string{`{"intitule":"x"}`}},
		{"empty id", []string{`{"id":""}`}},
		{"not an object", []string{`[1]`}},
		{"not JSON", []string{`{`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			for _, o := range tt.offers {
				b.WriteString(o + "\n")
			}
			if _, err := ReadNDJSON(&b); err == nil {
				t.Errorf("ReadNDJSON accepted %q", tt.offers)
			}
		})
	}
}

func TestEntryOfRealOffers(t *testing.T) {
	f, err := os.Open(sharedFixture(t, "offers-dept74-2025-08.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := ReadNDJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != 838 {
		t.Errorf("Len = %d, want 838", c.Len())
	}
	for i := 0; i < c.Len(); i++ {
		e := c.Entry(i)
		if e.Departement != "74" || e.Created == 0 || e.Origine == 0 || e.TypeContrat == "" || e.NatureContrat == "" || e.Experience == 0 {
			t.Errorf("offer %s indexed as %+v", e.ID, e)
		}
	}
}

func TestExperienceClass(t *testing.T) {
	tests := []struct {
		exige   byte
		libelle string
		want    byte
	}{
		{'D', "Débutant accepté", '4'},
		{'S', "", '0'},
		{'E', "Expérience exigée", '2'},
		{'E', "6 Mois", '1'},
		{'E', "Expérience exigée de 1 An(s)", '2'},
		{'E', "3 An(s)", '2'},
		{'E', "5 An(s)", '3'},
		{'E', "24 Mois", '2'},
		{0, "", 0},
	}
	for _, tt := range tests {
		if got := experienceClass(tt.exige, tt.libelle); got != tt.want {
			t.Errorf("experienceClass(%c, %q) = %q, want %q", tt.exige, tt.libelle, got, tt.want)
		}
	}
}
