package francetravail_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

func ptr[T any](v T) *T { return &v }

// apiNames are the search parameters of the seed's "Source Parameters"
// table, plus codeNAF and employeursHandiEngages.
var apiNames = []string{"range", "sort", "domaine", "codeROME", "theme", "appellation", "secteurActivite", "codeNAF",
	"experience", "experienceExigence", "typeContrat", "natureContrat", "origineOffre", "qualification", "tempsPlein",
	"commune", "distance", "departement", "inclureLimitrophes", "region", "paysContinent", "niveauFormation", "permis",
	"motsCles", "salaireMin", "periodeSalaire", "accesTravailleurHandicape", "offresMRS", "offresManqueCandidats",
	"entreprisesAdaptees", "employeursHandiEngages", "grandDomaine", "publieeDepuis", "minCreationDate",
	"maxCreationDate", "partenaires", "modeSelectionPartenaires", "dureeHebdo", "dureeHebdoMin", "dureeHebdoMax",
	"dureeContratMin", "dureeContratMax"}

func TestQueryTags(t *testing.T) {
	typ := reflect.TypeOf(francetravail.Query{})
	var got []string
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		j, y := f.Tag.Get("json"), f.Tag.Get("yaml")
		name, _, _ := strings.Cut(j, ",")
		if j != name+",omitempty" || y != j {
			t.Errorf("field %s: tags json %q yaml %q, want both %q", f.Name, j, y, name+",omitempty")
		}
		got = append(got, name)
	}
	var table []string
	for _, r := range francetravail.SearchParams() {
		table = append(table, r.Name)
	}
	if !slices.Equal(table, got) {
		t.Errorf("SearchParams\n%v\nwant Query's fields in order\n%v", table, got)
	}
	want := slices.Clone(apiNames)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Query's parameters\n%v\nwant\n%v", got, want)
	}
}

// full sets every criterion to a valid value.
func full() francetravail.Query {
	return francetravail.Query{
		Range: "0-149", Sort: ptr(1), Domaine: "M13", CodeROME: "M1805,D1507", Theme: "12", Appellation: "10320",
		SecteurActivite: "56,78", CodeNAF: "56.10A", Experience: "2", ExperienceExigence: "E", TypeContrat: "CDI,CDD",
		NatureContrat: "E1", OrigineOffre: "1", Qualification: "9", TempsPlein: ptr(true), Commune: "74010",
		Distance: ptr(0), Departement: "74,2A,971", InclureLimitrophes: ptr(false), Region: "84", PaysContinent: "01",
		NiveauFormation: "NV4", Permis: "B", MotsCles: "ski,saison", SalaireMin: ptr(1800.5), PeriodeSalaire: "M",
		AccesTravailleurHandicape: ptr(false), OffresMRS: ptr(true), OffresManqueCandidats: ptr(false),
		EntreprisesAdaptees: ptr(false), EmployeursHandiEngages: ptr(true), GrandDomaine: "M13", PublieeDepuis: "7",
		MinCreationDate: "2025-08-01T00:00:00Z", MaxCreationDate: "2025-08-05T12:00:00Z", Partenaires: "INDEED,METEOJOB",
		ModeSelectionPartenaires: "EXCLU", DureeHebdo: "1", DureeHebdoMin: ptr(830), DureeHebdoMax: ptr(3530),
		DureeContratMin: ptr(1.5), DureeContratMax: ptr(12.0),
	}
}

func TestQueryValues(t *testing.T) {
	v := full().Values()
	for _, name := range apiNames {
		if !v.Has(name) {
			t.Errorf("Values() lacks %s", name)
		}
	}
	for name, want := range map[string]string{
		"experienceExigence": "E", "tempsPlein": "true", "sort": "1", "distance": "0", "salaireMin": "1800.5",
		"dureeHebdoMin": "0830", "dureeHebdoMax": "3530", "dureeContratMax": "12", "departement": "74,2A,971",
	} {
		if got := v.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if v.Has("experienceExige") {
		t.Error("Values() sends experienceExige, which the API ignores")
	}
	if got := (francetravail.Query{Distance: ptr(10)}).Values(); got.Has("distance") {
		t.Errorf("distance without commune sent: %v", got)
	}
	if got := (francetravail.Query{}).Values().Encode(); got != "" {
		t.Errorf("zero Query sends %q, want nothing", got)
	}
}

func TestQueryDecoding(t *testing.T) {
	const y = `
codeROME: M1805
departement: "74"
publieeDepuis: 7
sort: 1
tempsPlein: true
salaireMin: 1800
periodeSalaire: M
experienceExigence: D
distance: 10
`
	var q francetravail.Query
	if err := yaml.Unmarshal([]byte(y), &q); err != nil {
		t.Fatal(err)
	}
	want := francetravail.Query{CodeROME: "M1805", Departement: "74", PublieeDepuis: "7", Sort: ptr(1), TempsPlein: ptr(true),
		SalaireMin: ptr(1800.0), PeriodeSalaire: "M", ExperienceExigence: "D", Distance: ptr(10)}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("YAML decoded to %+v, want %+v", q, want)
	}
	b, err := json.Marshal(full())
	if err != nil {
		t.Fatal(err)
	}
	var back francetravail.Query
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, full()) {
		t.Errorf("JSON round trip changed the query:\n%s", b)
	}
}

func TestQueryValidate(t *testing.T) {
	if err := full().Validate(); err != nil {
		t.Fatalf("full query: %v", err)
	}
	if err := (francetravail.Query{}).Validate(); err != nil {
		t.Fatalf("zero query: %v", err)
	}
	for _, ok := range []francetravail.Query{
		{Range: "3000-3149"}, {Range: "7-7"}, {Departement: "01"}, {Departement: "2B"}, {Commune: "2A004"},
		{MotsCles: "aa,bb,cc,dd,ee,ff,gg"}, {Distance: ptr(10)},
		{MinCreationDate: "2025-08-01T00:00:00Z", MaxCreationDate: "2025-08-01T00:00:00Z"},
		{Range: "000000000-000000149"}, {DureeHebdoMin: ptr(0), DureeHebdoMax: ptr(0)}, {DureeHebdoMax: ptr(9959)},
		{DureeContratMin: ptr(99.0), DureeContratMax: ptr(99.0)}, {SalaireMin: ptr(0.0), PeriodeSalaire: "H"},
		{Sort: ptr(0)}, {Sort: ptr(2)}, {GrandDomaine: "M18"}, {MotsCles: " ski , été "},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	tests := []struct {
		name  string
		q     francetravail.Query
		field string
		value string
	}{
		{"range too wide", francetravail.Query{Range: "0-150"}, "range", "0-150"},
		{"range start", francetravail.Query{Range: "3001-3010"}, "range", "3001-3010"},
		{"range format", francetravail.Query{Range: "0:149"}, "range", "0:149"},
		{"range reversed", francetravail.Query{Range: "20-10"}, "range", "20-10"},
		{"sort", francetravail.Query{Sort: ptr(3)}, "sort", "3"},
		{"codeROME", francetravail.Query{CodeROME: "M18"}, "codeROME", "M18"},
		{"codeROME count", francetravail.Query{CodeROME: strings.Repeat("M1805,", 200) + "M1805"}, "codeROME", strings.Repeat("M1805,", 200) + "M1805"},
		{"secteurActivite", francetravail.Query{SecteurActivite: "01,02,03"}, "secteurActivite", "01,02,03"},
		{"codeNAF", francetravail.Query{CodeNAF: "5610A"}, "codeNAF", "5610A"},
		{"experience", francetravail.Query{Experience: "5"}, "experience", "5"},
		{"experienceExigence", francetravail.Query{ExperienceExigence: "X"}, "experienceExigence", "X"},
		{"typeContrat", francetravail.Query{TypeContrat: "CDI,XYZ"}, "typeContrat", "CDI,XYZ"},
		{"natureContrat", francetravail.Query{NatureContrat: "Z9"}, "natureContrat", "Z9"},
		{"origineOffre", francetravail.Query{OrigineOffre: "3"}, "origineOffre", "3"},
		{"qualification", francetravail.Query{Qualification: "5"}, "qualification", "5"},
		{"commune", francetravail.Query{Commune: "7401"}, "commune", "7401"},
		{"commune count", francetravail.Query{Commune: "74001,74002,74003,74004,74005,74006"}, "commune", "74001,74002,74003,74004,74005,74006"},
		{"distance", francetravail.Query{Commune: "74010", Distance: ptr(-1)}, "distance", "-1"},
		{"departement", francetravail.Query{Departement: "999"}, "departement", "999"},
		{"departement count", francetravail.Query{Departement: "01,02,03,04,05,06"}, "departement", "01,02,03,04,05,06"},
		{"region", francetravail.Query{Region: "99"}, "region", "99"},
		{"motsCles short", francetravail.Query{MotsCles: "ski,a"}, "motsCles", "ski,a"},
		{"motsCles count", francetravail.Query{MotsCles: "aa,bb,cc,dd,ee,ff,gg,hh"}, "motsCles", "aa,bb,cc,dd,ee,ff,gg,hh"},
		{"salaireMin alone", francetravail.Query{SalaireMin: ptr(1.0)}, "periodeSalaire", ""},
		{"periodeSalaire alone", francetravail.Query{PeriodeSalaire: "M"}, "salaireMin", ""},
		{"periodeSalaire", francetravail.Query{SalaireMin: ptr(1.0), PeriodeSalaire: "J"}, "periodeSalaire", "J"},
		{"grandDomaine", francetravail.Query{GrandDomaine: "Z"}, "grandDomaine", "Z"},
		{"publieeDepuis", francetravail.Query{PublieeDepuis: "2"}, "publieeDepuis", "2"},
		{"minCreationDate alone", francetravail.Query{MinCreationDate: "2025-08-01T00:00:00Z"}, "maxCreationDate", ""},
		{"minCreationDate millis", francetravail.Query{MinCreationDate: "2025-08-01T00:00:00.000Z", MaxCreationDate: "2025-08-02T00:00:00Z"}, "minCreationDate", "2025-08-01T00:00:00.000Z"},
		{"maxCreationDate offset", francetravail.Query{MinCreationDate: "2025-08-01T00:00:00Z", MaxCreationDate: "2025-08-02T00:00:00+02:00"}, "maxCreationDate", "2025-08-02T00:00:00+02:00"},
		{"dates reversed", francetravail.Query{MinCreationDate: "2025-08-02T00:00:00Z", MaxCreationDate: "2025-08-01T00:00:00Z"}, "minCreationDate", "2025-08-02T00:00:00Z"},
		{"partenaires alone", francetravail.Query{Partenaires: "INDEED"}, "modeSelectionPartenaires", ""},
		{"modeSelectionPartenaires", francetravail.Query{Partenaires: "INDEED", ModeSelectionPartenaires: "TOUS"}, "modeSelectionPartenaires", "TOUS"},
		{"dureeHebdo", francetravail.Query{DureeHebdo: "3"}, "dureeHebdo", "3"},
		{"dureeHebdoMin", francetravail.Query{DureeHebdoMin: ptr(3575)}, "dureeHebdoMin", "3575"},
		{"dureeContratMax", francetravail.Query{DureeContratMax: ptr(100.0)}, "dureeContratMax", "100"},
		{"sort negative", francetravail.Query{Sort: ptr(-1)}, "sort", "-1"},
		{"range of ten digits", francetravail.Query{Range: "0000000000-0000000149"}, "range", "0000000000-0000000149"},
		{"salaireMin NaN", francetravail.Query{SalaireMin: ptr(math.NaN()), PeriodeSalaire: "M"}, "salaireMin", "NaN"},
		{"salaireMin infinite", francetravail.Query{SalaireMin: ptr(math.Inf(1)), PeriodeSalaire: "M"}, "salaireMin", "+Inf"},
		{"salaireMin negative", francetravail.Query{SalaireMin: ptr(-1.0), PeriodeSalaire: "M"}, "salaireMin", "-1"},
		{"dureeHebdoMin negative", francetravail.Query{DureeHebdoMin: ptr(-1)}, "dureeHebdoMin", "-001"},
		{"dureeHebdo reversed", francetravail.Query{DureeHebdoMin: ptr(3600), DureeHebdoMax: ptr(3530)}, "dureeHebdoMin", "3600"},
		{"dureeContrat reversed", francetravail.Query{DureeContratMin: ptr(12.5), DureeContratMax: ptr(12.0)}, "dureeContratMin", "12.5"},
		{"mode alone", francetravail.Query{ModeSelectionPartenaires: "EXCLU"}, "partenaires", ""},
		{"maxCreationDate alone", francetravail.Query{MaxCreationDate: "2025-08-01T00:00:00Z"}, "minCreationDate", ""},
		{"distance without commune", francetravail.Query{Distance: ptr(-5)}, "distance", "-5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.q.Validate()
			if !errors.Is(err, francetravail.ErrInvalidQuery) {
				t.Fatalf("Validate() = %v, want an error wrapping ErrInvalidQuery", err)
			}
			var ve *francetravail.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			if ve.Field != tt.field || ve.Value != tt.value || ve.Rule == "" {
				t.Errorf("got field %q value %q rule %q, want field %q value %q", ve.Field, ve.Value, ve.Rule, tt.field, tt.value)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.field) || !strings.Contains(msg, ve.Rule) {
				t.Errorf("message %q does not name the field and the rule", msg)
			}
		})
	}
	t.Run("all violations", func(t *testing.T) {
		err := francetravail.Query{Departement: "999", Experience: "9", Range: "a"}.Validate()
		joined, ok := err.(interface{ Unwrap() []error })
		if !ok {
			t.Fatalf("%v does not list its violations", err)
		}
		var n int
		for _, e := range joined.Unwrap() {
			var ve *francetravail.ValidationError
			if errors.As(e, &ve) {
				n++
			}
		}
		if n != 3 {
			t.Errorf("%d violations in %v, want 3", n, err)
		}
		const want = `departement "999": valeur inconnue du référentiel des départements`
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	})
}
