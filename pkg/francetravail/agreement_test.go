package francetravail_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
)

// agreementSeeds set each parameter, alone or in its pair, to a valid value
// and to values that break each part of its rule.
var agreementSeeds = []string{
	`{}`, `{"range":"0-149"}`, `{"range":"3000-3149"}`, `{"range":"3001-3001"}`, `{"range":"0-150"}`, `{"range":"9-8"}`,
	`{"range":"0000000000-1"}`, `{"range":"1 -2"}`, `{"sort":2}`, `{"sort":-1}`, `{"domaine":"M13"}`, `{"domaine":"M 13"}`,
	`{"codeROME":"M1805,D1507"}`, `{"codeROME":"Z1805"}`, `{"theme":"12"}`, `{"theme":"1a"}`, `{"appellation":"10320,"}`,
	`{"secteurActivite":"01,02,03"}`, `{"codeNAF":"56.10A"}`, `{"codeNAF":"56.10a"}`, `{"experience":"4"}`, `{"experience":"04"}`,
	`{"experienceExigence":"S"}`, `{"experienceExigence":"s"}`, `{"typeContrat":"CDI,MIS"}`, `{"typeContrat":"CDI,"}`,
	`{"natureContrat":"E2"}`, `{"natureContrat":"e2"}`, `{"origineOffre":"2"}`, `{"origineOffre":"3"}`, `{"qualification":"9"}`,
	`{"tempsPlein":true}`, `{"commune":"2A004,74010"}`, `{"commune":"74010","distance":0}`, `{"commune":"74010","distance":-1}`,
	`{"distance":-1}`, `{"departement":"971,2B,01,02,03"}`, `{"departement":"01,02,03,04,05,06"}`, `{"departement":"20"}`,
	`{"inclureLimitrophes":false}`, `{"region":"84"}`, `{"region":"05"}`, `{"paysContinent":"01"}`, `{"niveauFormation":"NV1"}`,
	`{"permis":"B,"}`, `{"motsCles":"ski,été"}`, `{"motsCles":"ski, é"}`, `{"motsCles":"a,b,c,d,e,f,g,h"}`,
	`{"motsCles":"aa,bb,cc,dd,ee,ff,gg"}`, `{"salaireMin":1800,"periodeSalaire":"M"}`, `{"salaireMin":1800}`,
	`{"periodeSalaire":"A"}`, `{"salaireMin":-1,"periodeSalaire":"M"}`, `{"salaireMin":1e300,"periodeSalaire":"J"}`,
	`{"grandDomaine":"M18"}`, `{"grandDomaine":"M19"}`, `{"publieeDepuis":"31"}`, `{"publieeDepuis":"30"}`,
	`{"minCreationDate":"2025-08-01T00:00:00Z","maxCreationDate":"2025-08-01T00:00:00Z"}`,
	`{"minCreationDate":"2025-08-01T00:00:01Z","maxCreationDate":"2025-08-01T00:00:00Z"}`,
	`{"minCreationDate":"2025-02-30T00:00:00Z","maxCreationDate":"2025-08-01T00:00:00Z"}`,
	`{"minCreationDate":"2025-08-01T00:00:00.000Z","maxCreationDate":"2025-08-01T00:00:00Z"}`,
	`{"maxCreationDate":"2025-08-01T00:00:00Z"}`, `{"partenaires":"INDEED","modeSelectionPartenaires":"INCLUS"}`,
	`{"partenaires":"IN DEED","modeSelectionPartenaires":"INCLUS"}`, `{"modeSelectionPartenaires":"EXCLU"}`,
	`{"dureeHebdo":"2"}`, `{"dureeHebdoMin":830,"dureeHebdoMax":3530}`, `{"dureeHebdoMin":3530,"dureeHebdoMax":830}`,
	`{"dureeHebdoMin":860}`, `{"dureeHebdoMax":10000}`, `{"dureeContratMin":1.5,"dureeContratMax":99}`,
	`{"dureeContratMin":12,"dureeContratMax":6}`, `{"dureeContratMax":99.5}`,
}

// FuzzValidateAgreesWithEmulator decodes a JSON object into a Query, as a
// configuration is decoded, and holds Query.Validate and the emulator to
// the same contract: the emulator refuses (400) the query string that
// Values sends exactly when Validate refuses the query. The two check
// tables of rules written separately.
func FuzzValidateAgreesWithEmulator(f *testing.F) {
	for _, s := range agreementSeeds {
		f.Add(s)
	}
	e := newEnv(f, francetravailtest.Config{Corpus: francetravailtest.Synthetic(20, 1, francetravailtest.SyntheticOptions{})}, nil)
	f.Fuzz(func(t *testing.T, doc string) {
		var q francetravail.Query
		if json.Unmarshal([]byte(doc), &q) != nil {
			return
		}
		if q.Commune == "" {
			q.Distance = nil // Values leaves it out: the API never sees it
		}
		verr := q.Validate()
		_, err := e.c.SearchRaw(context.Background(), q.Values())
		var apiErr *francetravail.APIError
		if err != nil && (!errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest) {
			t.Fatalf("%s: %v", doc, err)
		}
		switch refused := err != nil; {
		case refused && verr == nil:
			t.Fatalf("%s: Validate accepts it, the emulator refuses it: %v", doc, err)
		case !refused && verr != nil:
			t.Fatalf("%s: Validate refuses it (%v), the emulator accepts it", doc, verr)
		}
	})
}
