package francetravail_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
)

var testNow = time.Date(2025, 8, 6, 12, 0, 0, 0, time.UTC)

// filterCorpus is a materialised synthetic corpus over a few départements,
// with its offers decoded independently of the emulator.
func filterCorpus(t *testing.T) ([]francetravail.Offer, []offerFields, francetravailtest.Corpus) {
	t.Helper()
	offers := francetravailtest.SyntheticOffers(1200, 11, francetravailtest.SyntheticOptions{Now: testNow, Departements: []string{"74", "73", "2A", "971", "75"}})
	corpus, err := francetravailtest.Offers(offers)
	if err != nil {
		t.Fatal(err)
	}
	fields := make([]offerFields, len(offers))
	for i, o := range offers {
		fields[i] = decode(t, o)
	}
	return offers, fields, corpus
}

func deptOf(f offerFields) string {
	if c := f.LieuTravail.Commune; len(c) == 5 {
		if strings.HasPrefix(c, "97") {
			return c[:3]
		}
		return c[:2]
	}
	d, _, _ := strings.Cut(f.LieuTravail.Libelle, " - ")
	return d
}

func TestFilters(t *testing.T) {
	_, fields, corpus := filterCorpus(t)
	e := newEnv(t, francetravailtest.Config{Corpus: corpus, Now: func() time.Time { return testNow }}, nil)
	aCommune := ""
	for _, f := range fields {
		if f.LieuTravail.Commune != "" && strings.HasPrefix(f.LieuTravail.Commune, "73") {
			aCommune = f.LieuTravail.Commune
			break
		}
	}
	lower := func(f offerFields) string {
		return strings.ToLower(strings.Join([]string{f.Intitule, f.Description, f.AppellationLibelle, f.RomeLibelle, f.Entreprise.Nom}, " "))
	}
	min, max := testNow.Add(-10*24*time.Hour), testNow.Add(-5*24*time.Hour)
	tests := []struct {
		name string
		q    francetravail.Query
		want func(offerFields) bool
	}{
		{"codeROME", francetravail.Query{CodeROME: "D1507,G1602"}, func(f offerFields) bool { return f.RomeCode == "D1507" || f.RomeCode == "G1602" }},
		{"departement", francetravail.Query{Departement: "73,2A"}, func(f offerFields) bool { d := deptOf(f); return d == "73" || d == "2A" }},
		{"region", francetravail.Query{Region: "84"}, func(f offerFields) bool { d := deptOf(f); return d == "73" || d == "74" }},
		{"commune", francetravail.Query{Commune: aCommune, Distance: ptr(0)}, func(f offerFields) bool { return f.LieuTravail.Commune == aCommune }},
		{"typeContrat", francetravail.Query{TypeContrat: "CDD,MIS"}, func(f offerFields) bool { return f.TypeContrat == "CDD" || f.TypeContrat == "MIS" }},
		{"natureContrat", francetravail.Query{NatureContrat: "E2"}, func(f offerFields) bool { return f.NatureContrat == "Contrat apprentissage" }},
		{"motsCles", francetravail.Query{MotsCles: "rayon,commandes"}, func(f offerFields) bool {
			s := lower(f)
			return strings.Contains(s, "rayon") && strings.Contains(s, "commandes")
		}},
		{"origineOffre", francetravail.Query{OrigineOffre: "2"}, func(f offerFields) bool { return f.OrigineOffre.Origine == "2" }},
		{"publieeDepuis", francetravail.Query{PublieeDepuis: "7"}, func(f offerFields) bool { return !f.DateCreation.Before(testNow.Add(-7 * 24 * time.Hour)) }},
		{"creation dates", francetravail.Query{MinCreationDate: min.Format(francetravail.CreationDateLayout), MaxCreationDate: max.Format(francetravail.CreationDateLayout)},
			func(f offerFields) bool { return !f.DateCreation.Before(min) && !f.DateCreation.After(max) }},
		{"qualification 9", francetravail.Query{Qualification: "9"}, func(f offerFields) bool { return f.QualificationCode == "9" }},
		{"qualification 0", francetravail.Query{Qualification: "0"}, func(f offerFields) bool { return f.QualificationCode != "" && f.QualificationCode != "9" }},
		{"experienceExigence", francetravail.Query{ExperienceExigence: "S"}, func(f offerFields) bool { return f.ExperienceExige == "S" }},
		{"combined", francetravail.Query{Departement: "74", TypeContrat: "CDI", OrigineOffre: "1", Sort: ptr(1)}, func(f offerFields) bool {
			return deptOf(f) == "74" && f.TypeContrat == "CDI" && f.OrigineOffre.Origine == "1"
		}},
		{"unknown parameters ignored", francetravail.Query{TempsPlein: ptr(true), Permis: "B"}, func(offerFields) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []string
			for _, f := range fields {
				if tt.want(f) {
					want = append(want, f.ID)
				}
			}
			if len(want) == 0 || len(want) == len(fields) && tt.name != "unknown parameters ignored" {
				t.Fatalf("%d of %d offers match: the case tests nothing", len(want), len(fields))
			}
			got, sum := e.searchAll(t, tt.q)
			if sum.Total != len(want) {
				t.Errorf("Total = %d, want %d", sum.Total, len(want))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("got %d offers, want %d", len(got), len(want))
			}
		})
	}
}

func TestSortOrders(t *testing.T) {
	_, fields, corpus := filterCorpus(t)
	byID := map[string]offerFields{}
	for _, f := range fields {
		byID[f.ID] = f
	}
	e := newEnv(t, francetravailtest.Config{Corpus: corpus}, nil)
	ids, _ := e.searchAll(t, francetravail.Query{Departement: "74"})
	if !sort.SliceIsSorted(ids, func(i, j int) bool {
		a, b := byID[ids[i]], byID[ids[j]]
		if a.OrigineOffre.Origine != b.OrigineOffre.Origine {
			return a.OrigineOffre.Origine < b.OrigineOffre.Origine
		}
		return a.DateCreation.After(b.DateCreation)
	}) {
		t.Error("default order is not France Travail offers first, then partners, each newest first")
	}
	ids, _ = e.searchAll(t, francetravail.Query{Departement: "74", Sort: ptr(1)})
	if !sort.SliceIsSorted(ids, func(i, j int) bool { return byID[ids[i]].DateCreation.After(byID[ids[j]].DateCreation) }) {
		t.Error("sort=1 is not newest first")
	}
}

// TestFacetsOverWholeSet checks filtresPossibles against counts over every
// match, not the page.
func TestFacetsOverWholeSet(t *testing.T) {
	_, fields, corpus := filterCorpus(t)
	e := newEnv(t, francetravailtest.Config{Corpus: corpus}, nil)
	cc := clientcredentials.Config{ClientID: francetravailtest.DefaultClientID, ClientSecret: francetravailtest.DefaultClientSecret,
		TokenURL: francetravailtest.TokenURL(e.srv.URL), Scopes: francetravail.Scopes, AuthStyle: oauth2.AuthStyleInParams}
	hc := cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, e.srv.Client()))
	resp, err := hc.Get(francetravailtest.APIBaseURL(e.srv.URL) + "/offres/search?range=0-9&departement=74")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var body struct {
		Resultats        []json.RawMessage `json:"resultats"`
		FiltresPossibles []struct {
			Filtre     string `json:"filtre"`
			Agregation []struct {
				Valeur string `json:"valeurPossible"`
				N      int    `json:"nbResultats"`
			} `json:"agregation"`
		} `json:"filtresPossibles"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]int{"typeContrat": {}, "qualification": {}, "natureContrat": {}}
	natures := map[string]string{}
	for _, n := range francetravail.BuiltinReferential(francetravail.RefNaturesContrats) {
		natures[n.Libelle] = n.Code
	}
	total := 0
	for _, f := range fields {
		if deptOf(f) != "74" {
			continue
		}
		total++
		want["typeContrat"][f.TypeContrat]++
		want["natureContrat"][natures[f.NatureContrat]]++
		switch q := f.QualificationCode; {
		case q == "9":
			want["qualification"]["9"]++
		case q == "":
			want["qualification"]["X"]++
		default:
			want["qualification"]["0"]++
		}
	}
	if len(body.Resultats) != 10 || len(body.FiltresPossibles) != 4 {
		t.Fatalf("%d offers and %d facets, want 10 and 4", len(body.Resultats), len(body.FiltresPossibles))
	}
	for _, fp := range body.FiltresPossibles {
		got := map[string]int{}
		sum := 0
		for _, a := range fp.Agregation {
			got[a.Valeur] = a.N
			sum += a.N
		}
		if sum != total {
			t.Errorf("%s: counts add up to %d, want the %d matches", fp.Filtre, sum, total)
		}
		if w, ok := want[fp.Filtre]; ok && !maps.Equal(got, w) {
			t.Errorf("%s: %v, want %v", fp.Filtre, got, w)
		}
	}
}

// TestSplitsLargeDepartement is the acceptance test: 20 000 offers of
// one département, 2 % injected 5xx and a quota that answers some 429s; one
// query returns every offer exactly once, split by date windows.
//
// So that 429s come whatever the speed of the machine (under -race a call
// can take longer than the quota's interval), another user of the same
// credentials, as a second replica would, drains the quota during the
// search's first second.
func TestSplitsLargeDepartement(t *testing.T) {
	if testing.Short() {
		t.Skip("fetches 20 000 offers")
	}
	n := 20_000
	if raceEnabled {
		n = 5_000 // still past the cap: split by date all the same
	}
	corpus := francetravailtest.Synthetic(n, 2026, francetravailtest.SyntheticOptions{Departements: []string{"74"}})
	e := newEnv(t, francetravailtest.Config{
		Corpus: corpus,
		Quota:  40,
		Faults: emulator.Config{ErrorRate: 0.02, Seed: 1},
	}, func(c *francetravail.Config) { c.RateLimit = 200 })
	drained := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		cc := clientcredentials.Config{ClientID: francetravailtest.DefaultClientID, ClientSecret: francetravailtest.DefaultClientSecret,
			TokenURL: francetravailtest.TokenURL(e.srv.URL), Scopes: francetravail.Scopes, AuthStyle: oauth2.AuthStyleInParams}
		hc := cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, e.srv.Client()))
		var until time.Time
		for k := 0; k < 2000 && (until.IsZero() || time.Now().Before(until)); k++ {
			resp, err := hc.Get(francetravailtest.APIBaseURL(e.srv.URL) + "/referentiel/regions")
			if err != nil {
				continue // an injected fault
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests && until.IsZero() {
				until = time.Now().Add(time.Second)
				close(drained)
			}
		}
		if until.IsZero() {
			close(drained)
		}
	}()
	<-drained
	start := time.Now()
	ids, sum := e.searchAll(t, francetravail.Query{Departement: "74"})
	<-done
	if len(ids) != n {
		t.Errorf("%d offers, want %d", len(ids), n)
	}
	want := make([]string, n)
	for i := range want {
		want[i] = corpus.Entry(i).ID
	}
	slices.Sort(want)
	got := slices.Clone(ids)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Error("the offers fetched are not the corpus")
	}
	if sum.Windows < 2 || sum.Truncated || sum.Unreached != 0 || sum.Total != n || sum.Fetched != n || sum.Duplicates != 0 {
		t.Errorf("summary %+v, want %d offers over several windows, nothing truncated", sum, n)
	}
	st := e.emu.Stats()
	if st.Count("GET /offres/search", 429) == 0 {
		t.Error("no 429: the quota is not exercised")
	}
	faults := 0
	for _, byStatus := range st.Requests {
		faults += int(byStatus[500] + byStatus[502] + byStatus[503])
	}
	if faults == 0 {
		t.Error("no 5xx: the faults are not exercised")
	}
	pages := (n + francetravail.PageSize - 1) / francetravail.PageSize
	t.Logf("%d offers in %v: %d windows, %d requests (%d pages minimum), %d overlaps; answers %v",
		n, time.Since(start).Round(time.Millisecond), sum.Windows, sum.Requests, pages, sum.Overlaps, st.Requests["GET /offres/search"])
}

// TestTruncatedWhenUnsplittable: more offers than the cap, all created in
// the same second, cannot be split by date.
func TestTruncatedWhenUnsplittable(t *testing.T) {
	const n = 3400
	corpus := francetravailtest.Synthetic(n, 5, francetravailtest.SyntheticOptions{Now: testNow, Span: time.Second, Departements: []string{"74"}})
	e := newEnv(t, francetravailtest.Config{Corpus: corpus}, nil)
	ids, sum := e.searchAll(t, francetravail.Query{})
	if !sum.Truncated || sum.Unreached != n-francetravail.MaxReachable || sum.Fetched != francetravail.MaxReachable || len(ids) != francetravail.MaxReachable || sum.Total != n {
		t.Errorf("summary %+v, want truncated with %d fetched and %d unreached", sum, francetravail.MaxReachable, n-francetravail.MaxReachable)
	}
	// The same with the user's own one-second window.
	q := francetravail.Query{MinCreationDate: testNow.Add(-time.Second).Format(francetravail.CreationDateLayout), MaxCreationDate: testNow.Format(francetravail.CreationDateLayout)}
	_, sum = e.searchAll(t, q)
	if !sum.Truncated || sum.Unreached != n-francetravail.MaxReachable || sum.Windows != 1 {
		t.Errorf("user window: summary %+v, want one truncated window", sum)
	}
}

// TestUserWindowIsKept: with the user's creation dates (or publieeDepuis),
// the split stays inside them.
func TestUserWindowIsKept(t *testing.T) {
	const n = 8000
	corpus := francetravailtest.Synthetic(n, 8, francetravailtest.SyntheticOptions{Now: testNow, Departements: []string{"74"}})
	e := newEnv(t, francetravailtest.Config{Corpus: corpus, Now: func() time.Time { return testNow }}, nil)
	lo, hi := testNow.Add(-20*24*time.Hour), testNow.Add(-2*24*time.Hour)
	want := 0
	for i := 0; i < n; i++ {
		c := time.UnixMilli(corpus.Entry(i).Created)
		if !c.Before(lo) && !c.After(hi) {
			want++
		}
	}
	ids, sum := e.searchAll(t, francetravail.Query{MinCreationDate: lo.Format(francetravail.CreationDateLayout), MaxCreationDate: hi.Format(francetravail.CreationDateLayout)})
	if len(ids) != want || sum.Windows < 2 {
		t.Errorf("%d offers in %d windows, want %d in several", len(ids), sum.Windows, want)
	}
	want = 0
	for i := 0; i < n; i++ {
		if !time.UnixMilli(corpus.Entry(i).Created).Before(testNow.Add(-14 * 24 * time.Hour)) {
			want++
		}
	}
	ids, sum = e.searchAll(t, francetravail.Query{PublieeDepuis: "14"})
	if len(ids) != want || sum.Windows < 2 {
		t.Errorf("publieeDepuis 14: %d offers in %d windows, want %d in several", len(ids), sum.Windows, want)
	}
}

// TestRealFixtures runs the client on the real offers of the shared
// fixtures, served by the emulator.
func TestRealFixtures(t *testing.T) {
	f, err := os.Open(sharedFixture(t, "offers-dept74-2025-08.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	corpus, err := francetravailtest.ReadNDJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, francetravailtest.Config{Corpus: corpus}, nil)
	ids, sum := e.searchAll(t, francetravail.Query{Departement: "74"})
	if len(ids) != corpus.Len() || sum.Windows != 1 {
		t.Errorf("%d offers in %d windows, want %d in one", len(ids), sum.Windows, corpus.Len())
	}
	cdi, _ := e.searchAll(t, francetravail.Query{TypeContrat: "CDI", OrigineOffre: "1"})
	want := 0
	for i := 0; i < corpus.Len(); i++ {
		if en := corpus.Entry(i); en.TypeContrat == "CDI" && en.Origine == '1' {
			want++
		}
	}
	if len(cdi) != want || want == 0 {
		t.Errorf("%d France Travail CDI offers, want %d", len(cdi), want)
	}
	for _, id := range []string{"193MWGT", "0659322"} {
		o, err := e.c.Offer(context.Background(), id)
		if err != nil {
			t.Errorf("Offer(%s): %v", id, err)
			continue
		}
		if got, _ := o.ID(); got != id {
			t.Errorf("Offer(%s) returned %s", id, got)
		}
	}
}

// TestKeptOffersStayIntact checks that an offer kept after yield returns
// keeps its bytes while the search reads further pages: a fetcher
// publishing asynchronously publishes an offer again when NATS failed it,
// long after. Pages once shared one reused buffer, and such offers were
// published as fragments of later pages.
func TestKeptOffersStayIntact(t *testing.T) {
	offers := francetravailtest.SyntheticOffers(900, 7, francetravailtest.SyntheticOptions{Now: testNow})
	corpus, err := francetravailtest.Offers(offers)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // id → the offer as served
	for _, o := range offers {
		id, err := o.ID()
		if err != nil {
			t.Fatal(err)
		}
		want[id] = string(o)
	}
	e := newEnv(t, francetravailtest.Config{Corpus: corpus}, nil)
	var kept []francetravail.Offer
	sum, err := e.c.Search(context.Background(), francetravail.Query{}, func(o francetravail.Offer) error {
		kept = append(kept, o)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Requests < 2 || len(kept) != len(offers) {
		t.Fatalf("%d offers in %d requests; want %d offers over several pages", len(kept), sum.Requests, len(offers))
	}
	bad := 0
	for _, o := range kept {
		id, err := o.ID()
		if err != nil || want[id] != string(o) {
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d offers kept after yield changed while later pages were read", bad, len(kept))
	}
}
