package config

import (
	"errors"
	"strings"
	"testing"
)

// profile is a valid fetcher configuration with a secret and endpoints.
func profile(t *testing.T) Config {
	t.Helper()
	c, err := parse(t, `
origin_parameters:
  client_id: my-app
  client_secret: s3cret-value
  api_base_url: https://api.example.com/v2
  token_url: https://auth.example.com/token
  departement: "74"
  typeContrat: CDI
  motsCles: comptable
target_parameters:
  board_key: `+board+`
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(RoleFetcher); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWithCriteriaOverrides(t *testing.T) {
	c := profile(t)
	got, err := c.WithCriteria([]byte(`{"departement": "73", "motsCles": null, "tempsPlein": true, "distance": 5, "commune": "73065"}`))
	if err != nil {
		t.Fatal(err)
	}
	q := got.Origin.Query
	if q.Departement != "73" || q.MotsCles != "" || q.TypeContrat != "CDI" || q.TempsPlein == nil || !*q.TempsPlein || q.Distance == nil || *q.Distance != 5 {
		t.Errorf("criteria = %+v, want departement 73, motsCles cleared, typeContrat kept, tempsPlein and distance set", q)
	}
	if got.Origin.ClientSecret != c.Origin.ClientSecret || got.Origin.APIBaseURL != c.Origin.APIBaseURL {
		t.Error("credentials or endpoints changed")
	}
	if c.Origin.Departement != "74" {
		t.Error("the profile itself changed")
	}
	// A number reads as the file would read it.
	if got, err := c.WithCriteria([]byte(`{"departement": 38}`)); err != nil || got.Origin.Departement != "38" {
		t.Errorf("departement 38 as a number: %q, %v", got.Origin.Departement, err)
	}
	for _, empty := range []string{"", "{}", "null"} {
		if got, err := c.WithCriteria([]byte(empty)); err != nil || got.Origin.Query.Departement != "74" {
			t.Errorf("WithCriteria(%q) = %+v, %v; want the profile's criteria", empty, got.Origin.Query, err)
		}
	}
}

func TestWithCriteriaRefusals(t *testing.T) {
	c := profile(t)
	for _, tc := range []struct {
		body, key, says string
		notCriterion    bool
	}{
		{`{"client_secret": "stolen-secret"}`, "origin_parameters.client_secret", "not a search criterion", true},
		{`{"client_id": "other"}`, "origin_parameters.client_id", "not a search criterion", true},
		{`{"api_base_url": "https://evil.example.com"}`, "origin_parameters.api_base_url", "not a search criterion", true},
		{`{"token_url": "https://evil.example.com/token"}`, "origin_parameters.token_url", "not a search criterion", true},
		{`{"rate_limit": 1000}`, "origin_parameters.rate_limit", "not a search criterion", true},
		{`{"departemnt": "73"}`, "origin_parameters.departemnt", "did you mean departement?", false},
		{`{"distance": "far"}`, "origin_parameters.distance", "far", false},
		{`{"departement": "999"}`, "origin_parameters.departement", `departement "999"`, false},
		{`{"experienceExigence": "X"}`, "origin_parameters.experienceExigence", "X", false},
		{`["departement"]`, "origin_parameters", "want a mapping", false},
		{`{"departement": `, "origin_parameters", "unreadable", false},
	} {
		t.Run(tc.body, func(t *testing.T) {
			_, err := c.WithCriteria([]byte(tc.body))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error = %v, want a *config.Error", err)
			}
			if ce.Key != tc.key || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error = %q (key %q), want key %q saying %q", err, ce.Key, tc.key, tc.says)
			}
			if got := errors.Is(err, ErrNotCriterion); got != tc.notCriterion {
				t.Errorf("errors.Is(err, ErrNotCriterion) = %v, want %v", got, tc.notCriterion)
			}
			for _, secret := range []string{"stolen-secret", "s3cret-value", "evil.example.com"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q quotes the refused value %q", err, secret)
				}
			}
		})
	}
}

// TestWithCriteriaSameMessagesAsTheFile checks that a criterion refused in
// a request reads exactly as the same criterion refused in the file.
func TestWithCriteriaSameMessagesAsTheFile(t *testing.T) {
	c := profile(t)
	_, reqErr := c.WithCriteria([]byte(`{"publieeDepuis": "2"}`))
	file, err := parse(t, "origin_parameters:\n  client_id: a\n  client_secret: b\n  publieeDepuis: \"2\"\ntarget_parameters:\n  board_key: "+board+"\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	fileErr := file.Validate(RoleFetcher)
	if reqErr == nil || fileErr == nil || reqErr.Error() != fileErr.Error() {
		t.Errorf("request: %v\nfile:    %v\nwant the same error", reqErr, fileErr)
	}
}

func TestSuggest(t *testing.T) {
	if got := Suggest("dryrun", "dry_run", "replay_of"); got != " (did you mean dry_run?)" {
		t.Errorf("Suggest = %q", got)
	}
	if got := Suggest("zzzzzzzz", "dry_run"); got != "" {
		t.Errorf("Suggest of a far key = %q, want none", got)
	}
}
