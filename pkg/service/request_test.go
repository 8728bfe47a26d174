package service

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/time/rate"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		body       string
		want       Request
		code, says string
	}{
		{body: "", want: Request{}},
		{body: "  \n", want: Request{}},
		{body: "{}", want: Request{}},
		{body: `{"dry_run": true, "replay_of": "20261128T180302123Z-9f86d081"}`, want: Request{DryRun: true, ReplayOf: "20261128T180302123Z-9f86d081"}},
		{body: `{"origin_parameters": null}`, want: Request{Origin: []byte("null")}},
		{body: `{"weight": 2.5}`, want: Request{Weight: 2.5}},
		{body: `{"weight": 0}`, code: CodeBadRequest, says: "weight: want a number in (0, 1000]"},
		{body: `{"weight": "high"}`, code: CodeBadRequest, says: "weight: want a number"},
		{body: `[]`, code: CodeBadRequest, says: "want a JSON object"},
		{body: `null`, code: CodeBadRequest, says: "want a JSON object"},
		{body: `{"dry_run": "yes"}`, code: CodeBadRequest, says: "dry_run: want true or false"},
		{body: `{"replay_of": "a.b"}`, code: CodeBadRequest, says: "replay_of: want a run id"},
		{body: `{"origin_parameters": "departement=74"}`, code: CodeBadRequest, says: "want an object of search criteria"},
		{body: `{"replay": "x"}`, code: CodeBadRequest, says: "replay: unknown key (did you mean replay_of?)"},
		{body: `{"target_parameters": {}}`, code: CodeForbidden, says: "target_parameters: refused"},
		{body: `{"pipeline": {"replicas": 3}}`, code: CodeForbidden, says: "pipeline: refused"},
		{body: `{"schedule": {"cron": "@hourly"}}`, code: CodeForbidden, says: "schedule: refused"},
	} {
		t.Run(tc.body, func(t *testing.T) {
			got, err := ParseRequest([]byte(tc.body))
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got.DryRun != tc.want.DryRun || got.ReplayOf != tc.want.ReplayOf || got.Weight != tc.want.Weight || string(got.Origin) != string(tc.want.Origin) {
					t.Errorf("got %+v, want %+v", got, tc.want)
				}
				return
			}
			var re *RequestError
			if !errors.As(err, &re) || re.Code != tc.code || !strings.Contains(re.Description, tc.says) {
				t.Errorf("error = %v, want code %s saying %q", err, tc.code, tc.says)
			}
		})
	}
}

func TestProfileRunSpec(t *testing.T) {
	e := newEnv(t, 1)
	e.profile("annecy", "")
	ps, _, err := loadProfiles(t.Context(), e.dir, nil, nil, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	p := ps.valid["annecy"]
	spec, err := p.RunSpec(Request{DryRun: true, Origin: []byte(`{"departement": "73", "motsCles": "comptable"}`)}, runstatus.TriggerEvent)
	if err != nil {
		t.Fatal(err)
	}
	if !spec.DryRun || spec.Query.Departement != "73" || spec.Query.MotsCles != "comptable" || spec.Trigger != runstatus.TriggerEvent || spec.Profile != "annecy" {
		t.Errorf("spec = %+v", spec)
	}
	if p.Config.Origin.Departement != "" {
		t.Error("a request changed the profile")
	}
	if spec.Weight != 0 {
		t.Errorf("weight %v of a profile that sets none, want 0 (read as 1)", spec.Weight)
	}
	if weighted, err := p.RunSpec(Request{Weight: 3}, runstatus.TriggerRequest); err != nil || weighted.Weight != 3 {
		t.Errorf("a request's weight: %v, %v; want 3", weighted.Weight, err)
	}
	_, err = p.RunSpec(Request{Origin: []byte(`{"client_secret": "stolen-secret"}`)}, runstatus.TriggerRequest)
	var re *RequestError
	if !errors.As(err, &re) || re.Code != CodeForbidden || strings.Contains(re.Description, "stolen-secret") {
		t.Errorf("secret override: %v, want a %s refusal that quotes no secret", err, CodeForbidden)
	}
}

func TestLoadProfiles(t *testing.T) {
	e := newEnv(t, 1)
	e.profile("annecy", "")
	e.profile("chambery", "schedule:\n  cron: '@daily'\n  timezone: Europe/Paris\n")
	e.profile("typo", "schedule:\n  crn: '@daily'\n")
	e.profile("badcron", "schedule:\n  cron: '0 25 * * *'\n")
	e.profile("other-fleet", "  replicas: 3\n") // appended to the pipeline section
	e.profile("bad name", "")
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(e.dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("nosecret.yaml", "origin_parameters:\n  client_id: x\n  client_secret: ${PULLJOBS_TEST_UNSET}\n")
	write("notes.txt", "not a profile")
	write(".hidden.yaml", "not: a profile")
	if err := os.Mkdir(filepath.Join(e.dir, "sub.yaml"), 0o700); err != nil {
		t.Fatal(err)
	}

	ps, settings, err := loadProfiles(t.Context(), e.dir, nil, nil, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ps.names(), ","); got != "annecy,chambery" {
		t.Errorf("valid profiles %s, want annecy,chambery", got)
	}
	if ps.valid["chambery"].ticks == nil || ps.valid["annecy"].ticks != nil {
		t.Error("ticks of the scheduled profile missing, or of the other set")
	}
	if settings.AckWait != testSettings.AckWait {
		t.Errorf("settings %+v, want the profiles' pipeline section", settings)
	}
	for name, says := range map[string]string{
		"typo":        "schedule.crn: line",
		"badcron":     "schedule.cron",
		"other-fleet": "pipeline: differs from profile annecy's",
		"bad name":    "file name",
		"nosecret":    "PULLJOBS_TEST_UNSET is not set",
	} {
		pe := ps.invalid[name]
		if pe == nil {
			t.Errorf("profile %q not refused", name)
			continue
		}
		if !strings.Contains(pe.Error(), says) || !strings.Contains(pe.Error(), pe.Path) {
			t.Errorf("profile %q: %v, want its file and %q", name, pe, says)
		}
	}
	if len(ps.invalid) != 5 {
		t.Errorf("%d invalid profiles, want 5: %v", len(ps.invalid), ps.invalid)
	}

	// A reload keeps the running settings: a profile that changes them is
	// refused, even alone.
	want := testSettings
	want.AckWait = 3 * want.AckWait
	ps, _, err = loadProfiles(t.Context(), e.dir, &want, nil, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if pe := ps.invalid["annecy"]; pe == nil || !strings.Contains(pe.Error(), "differs from the running service's") {
		t.Errorf("annecy with other settings than the running ones: %v", pe)
	}
	if _, _, err := loadProfiles(t.Context(), filepath.Join(e.dir, "missing"), nil, nil, logger(t)); err == nil {
		t.Error("a missing directory is not an error")
	}
}

// TestProfileSharedLimiter: each profile's France Travail client gets the
// shared limiter of its application; a profile whose limiter cannot be
// had is refused, naming why, and the others are served.
func TestProfileSharedLimiter(t *testing.T) {
	e := newEnv(t, 1)
	e.profile("annecy", "")
	e.profile("lyon", "")
	var asked []string
	limiter := func(_ context.Context, clientID string) (francetravail.Limiter, error) {
		asked = append(asked, clientID)
		if len(asked) == 2 {
			return nil, errors.New("no NATS")
		}
		return rate.NewLimiter(rate.Inf, 1), nil
	}
	ps, _, err := loadProfiles(t.Context(), e.dir, nil, limiter, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 2 || asked[0] != francetravailtest.DefaultClientID {
		t.Errorf("limiters asked for %q, want one per profile, by the client id %q", asked, francetravailtest.DefaultClientID)
	}
	if len(ps.valid) != 1 || len(ps.invalid) != 1 {
		t.Fatalf("%d valid and %d invalid profiles, want one of each", len(ps.valid), len(ps.invalid))
	}
	for _, pe := range ps.invalid {
		if !strings.Contains(pe.Error(), "shared limiter: no NATS") {
			t.Errorf("refused profile: %v, want the limiter's error", pe)
		}
	}
}
