package format_test

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// A binary that embeds the pipeline registers its Go formats and logics at
// start-up; a configuration then names them like the built-ins.
func init() {
	// A format: the default one, plus a field of our own.
	format.Register("example_with_source", func(o francetravail.Offer) (hrflow.Job, error) {
		job, err := format.PoleEmploi(o)
		if err != nil {
			return nil, err
		}
		job["metadatas"] = []any{map[string]any{"name": "source", "value": "france_travail"}}
		return job, nil
	})
	// A logic: keep permanent contracts only.
	format.RegisterLogic("example_cdi_only", func(job hrflow.Job) (hrflow.Job, bool, error) {
		for _, tag := range job["tags"].([]format.Tag) {
			if tag.Name == "pole_emploi_contractType" {
				contract, _ := tag.Value.(string)
				return job, strings.HasPrefix(contract, "Contrat à durée indéterminée"), nil
			}
		}
		return job, false, nil
	})
}

func Example() {
	// What a configuration's action_parameters hold, here as JSON: the
	// registered format, then a Go logic and a jq logic.
	var spec format.Spec
	err := json.Unmarshal([]byte(`{
		"format": "example_with_source",
		"logics": [
			{"func": "example_cdi_only"},
			{"name": "shout", "jq": ".name |= ascii_upcase"}
		]
	}`), &spec)
	if err != nil {
		fmt.Println(err)
		return
	}
	chain, err := spec.Compile() // once per run
	if err != nil {
		fmt.Println("bad configuration:", err)
		return
	}

	offers := []string{
		`{"id": "199EXA1", "intitule": "Boulanger (H/F)", "typeContratLibelle": "Contrat à durée indéterminée"}`,
		`{"id": "199EXA2", "intitule": "Serveur (H/F)", "typeContratLibelle": "Contrat à durée déterminée - 3 Mois"}`,
		`{"intitule": "Sans identifiant"}`,
	}
	for _, offer := range offers {
		job, outcome, err := chain.Apply(francetravail.Offer(offer))
		switch outcome {
		case format.Kept:
			fmt.Println(outcome, job.Reference(), job["name"], job["metadatas"])
		case format.Discarded:
			fmt.Println(outcome)
		default:
			fmt.Println(outcome, err)
		}
	}
	// Output:
	// kept 199EXA1 BOULANGER (H/F) [map[name:source value:france_travail]]
	// discarded
	// format_failure offer (no id): format "example_with_source": offer has no id
}
