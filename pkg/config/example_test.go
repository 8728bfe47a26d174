package config_test

import (
	"fmt"
	"strings"

	"github.com/pulljobs/pulljobs/pkg/config"
)

func ExampleParse() {
	yaml := `
origin_parameters:
  client_id: my-app
  client_secret: ${FT_SECRET}
  departement: "74"
  typeContrat: CDI
target_parameters:
  api_secret: ${HRFLOW_SECRET}
  api_user: me@example.com
  board_key: 0123456789abcdef0123456789abcdef01234567
action_parameters:
  format: pole_emploi
`
	env := map[string]string{"FT_SECRET": "s3cret", "HRFLOW_SECRET": "ask_0123"}
	cfg, err := config.Parse(strings.NewReader(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil {
		err = cfg.Validate(config.RoleAll)
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	spec := cfg.RunSpec()
	fmt.Println(spec.Query.Departement, spec.Query.TypeContrat, spec.Sync, spec.Action.Format.Name)

	// A typo is an error that names its key.
	_, err = config.Parse(strings.NewReader("origin_parameters:\n  departemnt: '74'\n"), nil)
	fmt.Println(err)
	// Output:
	// 74 CDI true pole_emploi
	// configuration: origin_parameters.departemnt: line 2: unknown key (did you mean departement?)
}
