package config

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/cli"
)

const board = "0123456789abcdef0123456789abcdef01234567"

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func parse(t *testing.T, yaml string, vars map[string]string) (Config, error) {
	t.Helper()
	return Parse(strings.NewReader(yaml), env(vars))
}

const full = `
origin_parameters:
  client_id: my-app
  client_secret: ${FT_SECRET}
  departement: "74"
  typeContrat: CDI,CDD
  tempsPlein: true
  distance: 10
  rate_limit: ${FT_RATE:-4}
target_parameters:
  api_secret: ${HRFLOW_SECRET}
  api_user: me@example.com
  board_key: ` + board + `
  update_content: true
action_parameters:
  format: rich
  logics:
    - name: cdi_only
      jq: 'select(.tags[] | select(.name == "pole_emploi_contractType") | .value == "CDI")'
pipeline:
  concurrency: 8
  ack_wait: 90s
`

func TestParseFull(t *testing.T) {
	c, err := parse(t, full, map[string]string{"FT_SECRET": "s3cret", "HRFLOW_SECRET": "ask_x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(RoleAll); err != nil {
		t.Fatal(err)
	}
	if c.Origin.ClientSecret != "s3cret" || c.Target.APISecret != "ask_x" {
		t.Errorf("secrets not expanded: %q %q", c.Origin.ClientSecret, c.Target.APISecret)
	}
	if c.Origin.Departement != "74" || c.Origin.TempsPlein == nil || !*c.Origin.TempsPlein {
		t.Errorf("criteria not decoded: %+v", c.Origin.Query)
	}
	if got := c.FranceTravail().RateLimit; got != 4 {
		t.Errorf("rate limit from ${FT_RATE:-4} = %v, want 4", got)
	}
	if c.Pipeline.Concurrency != 8 || c.Pipeline.AckWait != 90*time.Second {
		t.Errorf("pipeline = %+v, want concurrency 8 and ack_wait 90s", c.Pipeline)
	}
	spec := c.RunSpec()
	if !spec.Sync || !spec.UpdateContent || spec.EnrichWithParsing || spec.SyncMaxShare != 0.5 {
		t.Errorf("spec = %+v, want sync on by default, update_content on, sync_max_share 0.5", spec)
	}
	if spec.Action.Format.Name != "rich" || len(spec.Action.Logics) != 1 {
		t.Errorf("action = %+v", spec.Action)
	}
	if got := c.HrFlowRateLimit(); got != (HrFlowRate{PerSecond: DefaultHrFlowRateLimit}) {
		t.Errorf("hrflow rate = %v, want the default %v", got, DefaultHrFlowRateLimit)
	}
}

func TestZeroRateMeansUnlimited(t *testing.T) {
	c, err := parse(t, "origin_parameters: {rate_limit: 0}\ntarget_parameters: {rate_limit: 0}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.FranceTravail().RateLimit; got >= 0 {
		t.Errorf("france travail rate = %v, want the client's 'no limit' (negative)", got)
	}
	if got := c.HrFlowRateLimit(); got != (HrFlowRate{}) {
		t.Errorf("hrflow rate = %v, want 0", got)
	}
}

// TestHrFlowRateAuto: rate_limit takes auto, in any case and from the
// environment, beside a number; list_limit reaches the client.
func TestHrFlowRateAuto(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		vars map[string]string
		want HrFlowRate
	}{
		{"target_parameters: {rate_limit: auto}", nil, HrFlowRate{Auto: true}},
		{"target_parameters: {rate_limit: Auto}", nil, HrFlowRate{Auto: true}},
		{"target_parameters:\n  rate_limit: ${RATE}\n", map[string]string{"RATE": "auto"}, HrFlowRate{Auto: true}},
		{"target_parameters:\n  rate_limit: ${RATE}\n", map[string]string{"RATE": "12.5"}, HrFlowRate{PerSecond: 12.5}},
		{"target_parameters: {rate_limit: 60}", nil, HrFlowRate{PerSecond: 60}},
	} {
		c, err := parse(t, tt.yaml, tt.vars)
		if err != nil {
			t.Errorf("%s %v: %v", tt.yaml, tt.vars, err)
			continue
		}
		if got := c.HrFlowRateLimit(); got != tt.want {
			t.Errorf("%s %v: rate %+v (%s), want %+v", tt.yaml, tt.vars, got, got, tt.want)
		}
	}
	c, err := parse(t, "target_parameters: {list_limit: 250}", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.HrFlow().ListLimit; got != 250 {
		t.Errorf("client list limit = %d, want 250", got)
	}
}

func TestErrorsNameTheirKey(t *testing.T) {
	base := map[string]string{"FT_SECRET": "s", "HRFLOW_SECRET": "ask_x"}
	tests := []struct {
		name    string
		yaml    string
		vars    map[string]string
		role    Role
		wantKey string
		want    string // in the message
		reason  string
	}{
		{"unknown section", "origine_parameters: {}", base, RoleAll, "origine_parameters", "did you mean origin_parameters", "bad_configuration"},
		{"typo in a criterion", strings.Replace(full, "departement:", "departemnt:", 1), base, RoleAll, "origin_parameters.departemnt", "did you mean departement", "bad_origin_parameters"},
		{"historic experienceExige", strings.Replace(full, "departement:", "experienceExige: E\n  departement:", 1), base, RoleAll, "origin_parameters.experienceExige", "did you mean experienceExigence", "bad_origin_parameters"},
		{"unset variable", full, map[string]string{"FT_SECRET": "s"}, RoleAll, "target_parameters.api_secret", "HRFLOW_SECRET is not set", "bad_target_parameters"},
		{"missing client id", strings.Replace(full, "client_id: my-app", "", 1), base, RoleFetcher, "origin_parameters.client_id", "required", "bad_origin_parameters"},
		{"bad criterion", strings.Replace(full, `departement: "74"`, `departement: "999"`, 1), base, RoleFetcher, "origin_parameters.departement", "999", "bad_origin_parameters"},
		{"bad board", strings.Replace(full, board, "nope", 1), base, RoleFetcher, "target_parameters.board_key", "40 lowercase", "bad_target_parameters"},
		{"bad jq", strings.Replace(full, "select(.tags[]", "select(.tags[[", 1), base, RoleFetcher, "action_parameters.logics[0]", "cdi_only", "bad_action_parameters"},
		{"unknown format", strings.Replace(full, "format: rich", "format: fancy", 1), base, RoleFetcher, "action_parameters.format", "fancy", "bad_action_parameters"},
		{"pusher needs api_user", strings.Replace(full, "api_user: me@example.com", "", 1), base, RolePusher, "target_parameters.api_user", "required", "bad_target_parameters"},
		{"wrong type", strings.Replace(full, "concurrency: 8", "concurrency: many", 1), base, RoleAll, "pipeline", "many", "bad_pipeline_parameters"},
		{"negative rate", strings.Replace(full, "${FT_RATE:-4}", "-1", 1), base, RoleFetcher, "origin_parameters.rate_limit", "≥ 0", "bad_origin_parameters"},
		{"zero weight", strings.Replace(full, "update_content: true", "update_content: true\n  weight: 0", 1), base, RoleFetcher, "target_parameters.weight", "(0, 1000]", "bad_target_parameters"},
		{"negative hrflow rate", strings.Replace(full, "update_content: true", "rate_limit: -2", 1), base, RolePusher, "target_parameters.rate_limit", "or auto", "bad_target_parameters"},
		{"hrflow rate neither", strings.Replace(full, "update_content: true", "rate_limit: fast", 1), base, RolePusher, "target_parameters", `"fast": want calls per second, or auto`, "bad_target_parameters"},
		{"negative list limit", strings.Replace(full, "update_content: true", "list_limit: -1", 1), base, RolePusher, "target_parameters.list_limit", "≥ 1", "bad_target_parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(t, tt.yaml, tt.vars)
			if err == nil {
				err = c.Validate(tt.role)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *config.Error", err)
			}
			if ce.Key != tt.wantKey {
				t.Errorf("key = %q, want %q (err: %v)", ce.Key, tt.wantKey, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to mention %q", err, tt.want)
			}
			if got := ce.Reason(); got != tt.reason {
				t.Errorf("reason = %q, want %q", got, tt.reason)
			}
			if got := cli.ExitCode(fmt.Errorf("load: %w", err), io.Discard); got != cli.ExitUsage {
				t.Errorf("exit code %d, want %d (usage)", got, cli.ExitUsage)
			}
		})
	}
}

// TestFormatterNeedsNoSecrets checks a formatter can start with a pipeline
// section only: its runs bring their own spec.
func TestFormatterNeedsNoSecrets(t *testing.T) {
	c, err := parse(t, "pipeline: {format_concurrency: 2}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(RoleFormatter); err != nil {
		t.Errorf("formatter config: %v, want valid", err)
	}
	if err := c.Validate(RolePusher); err == nil {
		t.Error("pusher config without credentials: err = nil, want an error")
	}
}

func TestExpandString(t *testing.T) {
	lookup := env(map[string]string{"A": "1", "EMPTY": ""})
	tests := []struct{ in, want, err string }{
		{"x${A}y", "x1y", ""},
		{"${EMPTY:-d}", "d", ""},
		{"${NOPE:-}", "", ""},
		{"$${A}", "${A}", ""},
		{"$x and $__loc__", "$x and $__loc__", ""}, // jq variables stay
		{"${NOPE}", "", "NOPE is not set"},
		{"${A", "", "unterminated"},
		{"${1A}", "", "not an environment variable name"},
	}
	for _, tt := range tests {
		got, err := expandString(tt.in, lookup)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("expand(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	yaml := strings.Replace(full, "api_user: me@example.com", "", 1)
	c, err := parse(t, yaml, map[string]string{"FT_SECRET": "ft-very-secret", "HRFLOW_SECRET": "ask_verysecret"})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate(RoleAll)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, s := range []string{"ft-very-secret", "ask_verysecret"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q leaks a secret", err)
		}
	}
}

// TestWeight checks that target_parameters.weight reaches the runs' spec,
// and that its absence leaves the default to the pipeline.
func TestWeight(t *testing.T) {
	base := map[string]string{"FT_SECRET": "s", "HRFLOW_SECRET": "ask_x"}
	for _, tc := range []struct {
		yaml string
		want float64
	}{
		{full, 0},
		{strings.Replace(full, "update_content: true", "update_content: true\n  weight: 2.5", 1), 2.5},
	} {
		c, err := parse(t, tc.yaml, base)
		if err == nil {
			err = c.Validate(RoleAll)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := c.RunSpec().Weight; got != tc.want {
			t.Errorf("weight %v, want %v", got, tc.want)
		}
	}
}
