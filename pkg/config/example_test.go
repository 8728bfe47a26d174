package config_test

import (
	"fmt"
	"strings"
	"time"

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

// ExampleSchedule_Ticks shows when a profile's schedule fires.
func ExampleSchedule_Ticks() {
	from := time.Date(2026, 11, 27, 7, 10, 0, 0, time.UTC) // a Friday
	for _, s := range []config.Schedule{
		{Cron: "0 6 * * 1-5", Timezone: "Europe/Paris"},
		{Cron: "@every 30m"},
	} {
		ticks, err := s.Ticks()
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(s.Cron, "→", ticks.Next(from).UTC().Format(time.RFC3339))
	}
	_, err := config.Schedule{Cron: "0 6 * * 8"}.Ticks()
	fmt.Println(err)
	// Output:
	// 0 6 * * 1-5 → 2026-11-30T05:00:00Z
	// @every 30m → 2026-11-27T07:30:00Z
	// configuration: schedule.cron: "0 6 * * 8": end of range (8) above maximum (6): 8
}
