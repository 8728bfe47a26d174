package format

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/fixtures"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// benchOffers returns the real offers when the shared fixtures are there,
// the project's own edge-case offers otherwise (smaller than real ones: the
// benchmark says so).
func benchOffers(b *testing.B) []francetravail.Offer {
	b.Helper()
	var offers []francetravail.Offer
	dir, why := fixtures.Find()
	if dir == "" {
		b.Logf("%s: benchmarking on testdata/offers, which are smaller than real offers", why)
		for _, o := range goldenOffers(b) {
			offers = append(offers, o)
		}
		return offers
	}
	for _, line := range readFixtureLines(b, filepath.Join(dir, "offers-dept74-2025-08.ndjson")) {
		offers = append(offers, line)
	}
	return offers
}

// benchChain measures what the formatter worker does for each offer: raw
// offer bytes in, Chain.Apply, the job encoded with hrflow.AppendJSON out. It
// reports offers/s of wall time (with -cpu 1, the rate of one core) and
// offers/cpu-s, per second of CPU time the process used, GC included: the
// same rate on an idle machine, and a steadier one on a busy machine.
func benchChain(b *testing.B, spec Spec) {
	offers := benchOffers(b)
	chain, err := spec.Compile()
	if err != nil {
		b.Fatal(err)
	}
	size := 0
	for _, o := range offers {
		size += len(o)
	}
	b.SetBytes(int64(size / len(offers)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, cpuOK := processCPU()
	var buf []byte
	for i := 0; i < b.N; i++ {
		job, outcome, err := chain.Apply(offers[i%len(offers)])
		if outcome != Kept {
			b.Fatalf("Apply() = %v, %v", outcome, err)
		}
		if buf, err = hrflow.AppendJSON(buf[:0], job); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "offers/s")
	if cpu1, ok := processCPU(); ok && cpuOK && cpu1 > cpu0 {
		b.ReportMetric(float64(b.N)/(cpu1-cpu0).Seconds(), "offers/cpu-s")
	}
}

func BenchmarkPoleEmploi(b *testing.B) { benchChain(b, Spec{}) }

func BenchmarkRich(b *testing.B) { benchChain(b, Spec{Format: FormatSpec{Name: NameRich}}) }

// jqFormatBench builds the same job as pole_emploi, in jq.
const jqFormatBench = `{
  name: .intitule, reference: .id, created_at: .dateCreation, updated_at: .dateActualisation,
  location: {lat: .lieuTravail.latitude, lng: .lieuTravail.longitude,
             text: ([.lieuTravail.libelle, .lieuTravail.codePostal] | map(strings | select(. != "")) | join(" "))},
  url: null, summary: .description,
  sections: (if (.entreprise | type) == "object" and (.entreprise | has("description"))
             then [{name: "pole_emploi_company_description", title: "Company Description", description: .entreprise.description}]
             else [] end),
  tags: [{name: "pole_emploi_romeCode", value: .romeCode}, {name: "pole_emploi_contractType", value: .typeContratLibelle},
         {name: "pole_emploi_salary", value: .salaire.libelle?}]
}`

func BenchmarkJQFormat(b *testing.B) { benchChain(b, Spec{Format: FormatSpec{JQ: jqFormatBench}}) }

func BenchmarkJQLogic(b *testing.B) {
	benchChain(b, Spec{Logics: []LogicSpec{{Name: "keep_located", JQ: `select(.location.text != "zzz") | .name |= ascii_upcase`}}})
}

// BenchmarkNaiveBaseline is what a straightforward format costs on the same
// offers: encoding/json decodes the offer into a map, and encodes a job of
// nine of its fields. It is measured in the same run as BenchmarkPoleEmploi
// so that their ratio holds on a machine whose speed wanders.
func BenchmarkNaiveBaseline(b *testing.B) {
	offers := benchOffers(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var o map[string]any
		if err := json.Unmarshal(offers[i%len(offers)], &o); err != nil {
			b.Fatal(err)
		}
		job := map[string]any{"name": o["intitule"], "reference": o["id"], "created_at": o["dateCreation"],
			"updated_at": o["dateActualisation"], "location": o["lieuTravail"], "url": nil,
			"summary": o["description"], "sections": []any{}, "tags": []any{o["romeCode"], o["salaire"]}}
		if _, err := json.Marshal(job); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "offers/s")
}
