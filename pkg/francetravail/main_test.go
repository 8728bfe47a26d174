package francetravail_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/fixtures"

	"go.uber.org/goleak"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/retry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fastRetry keeps retried tests quick: waits of a few milliseconds, unless
// the server asks for more with Retry-After.
var fastRetry = retry.Policy{InitialInterval: time.Millisecond, MaxInterval: 20 * time.Millisecond, MaxAttempts: 30}

// env is a client talking to an emulator on 127.0.0.1.
type env struct {
	emu *francetravailtest.Emulator
	srv *httptest.Server
	c   *francetravail.Client
	cfg francetravail.Config
}

// newEnv starts an emulator configured by ecfg and a client for it, without
// client-side rate limit and with fastRetry; mod, if not nil, changes the
// client's config.
func newEnv(t testing.TB, ecfg francetravailtest.Config, mod func(*francetravail.Config)) *env {
	t.Helper()
	emu, err := francetravailtest.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	cfg := francetravail.Config{
		ClientID:     francetravailtest.DefaultClientID,
		ClientSecret: francetravailtest.DefaultClientSecret,
		APIBaseURL:   francetravailtest.APIBaseURL(srv.URL),
		TokenURL:     francetravailtest.TokenURL(srv.URL),
		RateLimit:    -1,
		HTTPClient:   srv.Client(),
		Retry:        fastRetry,
	}
	if ecfg.ClientSecret != "" {
		cfg.ClientSecret = ecfg.ClientSecret
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := francetravail.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{emu: emu, srv: srv, c: c, cfg: cfg}
}

// searchAll runs a search and returns the ids in the order yielded; it fails
// the test on an error or on an id yielded twice.
func (e *env) searchAll(t testing.TB, q francetravail.Query) ([]string, francetravail.Summary) {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	sum, err := e.c.Search(context.Background(), q, func(o francetravail.Offer) error {
		id, err := o.ID()
		if err != nil {
			return err
		}
		if seen[id] {
			t.Errorf("offer %s yielded twice", id)
		}
		seen[id] = true
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		t.Fatalf("Search(%+v): %v (summary %+v)", q, err, sum)
	}
	if sum.Fetched != len(ids) {
		t.Errorf("Summary.Fetched = %d, yielded %d", sum.Fetched, len(ids))
	}
	return ids, sum
}

// sharedFixture returns the path of a file of the shared France Travail
// fixtures, and skips the test when it is absent.
func sharedFixture(t testing.TB, name string) string {
	t.Helper()
	return fixtures.Path(t, name)
}

// offerFields are the fields tests filter on, decoded independently of the
// emulator's index.
type offerFields struct {
	ID                 string `json:"id"`
	Intitule           string `json:"intitule"`
	Description        string `json:"description"`
	DateCreation       time.Time
	DateCreationRaw    string `json:"dateCreation"`
	RomeCode           string `json:"romeCode"`
	RomeLibelle        string `json:"romeLibelle"`
	AppellationLibelle string `json:"appellationlibelle"`
	TypeContrat        string `json:"typeContrat"`
	NatureContrat      string `json:"natureContrat"`
	ExperienceExige    string `json:"experienceExige"`
	QualificationCode  string `json:"qualificationCode"`
	LieuTravail        struct {
		Libelle string `json:"libelle"`
		Commune string `json:"commune"`
	} `json:"lieuTravail"`
	Entreprise struct {
		Nom string `json:"nom"`
	} `json:"entreprise"`
	OrigineOffre struct {
		Origine string `json:"origine"`
	} `json:"origineOffre"`
}

func decode(t testing.TB, o francetravail.Offer) offerFields {
	t.Helper()
	var f offerFields
	if err := json.Unmarshal(o, &f); err != nil {
		t.Fatalf("offer %s: %v", o, err)
	}
	d, err := time.Parse(time.RFC3339Nano, f.DateCreationRaw)
	if err != nil {
		t.Fatalf("offer %s: dateCreation: %v", f.ID, err)
	}
	f.DateCreation = d
	return f
}
