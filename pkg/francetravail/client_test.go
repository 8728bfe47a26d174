package francetravail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/retry"
)

func TestNewClientChecksConfig(t *testing.T) {
	for _, cfg := range []francetravail.Config{
		{},
		{ClientID: "id"},
		{ClientSecret: "secret"},
		{ClientID: "id", ClientSecret: "secret", APIBaseURL: "api.francetravail.io/partenaire"},
		{ClientID: "id", ClientSecret: "secret", TokenURL: "://x"},
		{ClientID: "id", ClientSecret: "secret", CallTimeout: -time.Second},
	} {
		if _, err := francetravail.NewClient(cfg); err == nil {
			t.Errorf("NewClient(%v) accepted a bad config", cfg)
		}
	}
	c, err := francetravail.NewClient(francetravail.Config{ClientID: "id", ClientSecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RateLimit(); got != francetravail.DefaultRateLimit {
		t.Errorf("default rate limit %v, want %v", got, francetravail.DefaultRateLimit)
	}
	c.CloseIdleConnections()
}

func TestTokenErrors(t *testing.T) {
	e := newEnv(t, francetravailtest.Config{}, func(c *francetravail.Config) { c.ClientSecret = "wrong" })
	_, err := e.c.Offer(context.Background(), "193MWGT")
	if !errors.Is(err, francetravail.ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	var te *francetravail.TokenError
	if !errors.As(err, &te) || te.Status != 400 || te.Code != "invalid_client" || te.Description != "Client authentication failed" {
		t.Errorf("err = %#v, want a 400 invalid_client TokenError", err)
	}
	if retry.IsRetryable(err) {
		t.Error("a refused credential is retryable")
	}
	if n := e.emu.Stats().Total("POST /token"); n != 1 {
		t.Errorf("%d token calls, want 1 (no retry of a refusal)", n)
	}
	if n := e.emu.Stats().Total("GET /offres/{id}"); n != 0 {
		t.Errorf("%d API calls without a token", n)
	}
}

func TestTokenCachedAndRefreshedBeforeExpiry(t *testing.T) {
	const lifetime = 2 * time.Second
	// The client refreshes a token once less than a fifth of its life is left.
	const refreshAfter = lifetime * 4 / 5
	e := newEnv(t, francetravailtest.Config{TokenLifetime: lifetime, Corpus: francetravailtest.Synthetic(5, 1, francetravailtest.SyntheticOptions{})}, nil)
	ctx := context.Background()
	call := func() {
		t.Helper()
		if _, err := e.c.Referential(ctx, francetravail.RefTypesContrats); err != nil {
			t.Fatal(err)
		}
	}
	tokens := func() int64 { return e.emu.Stats().Total("POST /token") }

	first := time.Now()
	call()
	call()
	// A machine stalled past refreshAfter between the two calls would
	// rightly have refreshed: only a prompt second call must reuse the token.
	if time.Since(first) < refreshAfter {
		if n := tokens(); n != 1 {
			t.Errorf("%d token calls for two prompt API calls, want 1 (cached)", n)
		}
	}
	before := tokens()
	time.Sleep(refreshAfter - time.Since(first) + 100*time.Millisecond)
	// Past refreshAfter the token is refreshed before use, however late the
	// call comes: never presented expired.
	call()
	if n := tokens(); n != before+1 {
		t.Errorf("%d token calls after the refresh point, want %d", n, before+1)
	}
	if n := e.emu.Stats().Count("GET /referentiel/{name}", 401); n != 0 {
		t.Errorf("%d answers 401: the token was not refreshed before expiry", n)
	}
}

func TestReauthenticatesOnceOn401(t *testing.T) {
	e := newEnv(t, francetravailtest.Config{Corpus: francetravailtest.Synthetic(20, 1, francetravailtest.SyntheticOptions{})}, nil)
	ctx := context.Background()
	if _, err := e.c.Referential(ctx, francetravail.RefRegions); err != nil {
		t.Fatal(err)
	}
	e.emu.ExpireTokens() // the cached token is now refused
	ids, _ := e.searchAll(t, francetravail.Query{})
	if len(ids) != 20 {
		t.Errorf("%d offers, want 20", len(ids))
	}
	st := e.emu.Stats()
	if got := st.Count("GET /offres/search", 401); got != 1 {
		t.Errorf("%d answers 401, want 1", got)
	}
	if got := st.Total("POST /token"); got != 2 {
		t.Errorf("%d token calls, want 2", got)
	}
}

func TestUnauthorizedAfterReauth(t *testing.T) {
	// A clock that jumps an hour at every reading: each token has expired
	// by the time it is used.
	var mu = make(chan struct{}, 1)
	t0 := time.Date(2025, 8, 6, 0, 0, 0, 0, time.UTC)
	n := 0
	now := func() time.Time {
		mu <- struct{}{}
		defer func() { <-mu }()
		n++
		return t0.Add(time.Duration(n) * time.Hour)
	}
	e := newEnv(t, francetravailtest.Config{Now: now}, nil)
	_, err := e.c.Referential(context.Background(), francetravail.RefRegions)
	if !errors.Is(err, francetravail.ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	var ae *francetravail.APIError
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Retryable() {
		t.Errorf("err = %#v, want a non-retryable 401 APIError", err)
	}
	st := e.emu.Stats()
	if got := st.Count("GET /referentiel/{name}", 401); got != 2 {
		t.Errorf("%d answers 401, want 2 (one re-authentication)", got)
	}
	if got := st.Total("POST /token"); got != 2 {
		t.Errorf("%d token calls, want 2", got)
	}
}

// TestAPIMessages sends each invalid parameter past Validate and checks the
// APIError carries the API's exact message and codeErreur.
func TestAPIMessages(t *testing.T) {
	e := newEnv(t, francetravailtest.Config{Corpus: francetravailtest.Synthetic(10, 1, francetravailtest.SyntheticOptions{})}, nil)
	tests := []struct{ query, want string }{
		{"range=0-150", "La plage de résultats demandée est trop importante."},
		{"range=3001-3100", "La position de début doit être inférieure ou égale à 3000."},
		{"range=0_149", "Format du paramètre « range » incorrect. <entier>-<entier> attendu."},
		{"motsCles=a,bb", "Format du paramètre « motsCles » incorrect. 7 mots-clé au maximum séparés par des virgules et d'au moins 2 caractères."},
		{"experience=7", "Format du paramètre « experience » incorrect. 0, 1, 2, 3 ou 4 attendu."},
		{"experienceExigence=Y", "Format du paramètre « experienceExigence » incorrect. D, E ou S attendu."},
		{"tempsPlein=yes", "Format du paramètre « tempsPlein » incorrect. Booléen attendu."},
		{"departement=999", "Valeur du paramètre « departement » incorrecte."},
		{"commune=ABCDE", "Valeur du paramètre « commune » incorrecte."},
		{"region=42", "Valeur du paramètre « region » incorrecte."},
		{"typeContrat=CDX", "Valeur du paramètre « typeContrat » incorrecte."},
		{"natureContrat=E9", "Valeur du paramètre « natureContrat » incorrecte."},
	}
	for _, tt := range tests {
		v, _ := url.ParseQuery(tt.query)
		_, err := e.c.SearchRaw(context.Background(), v)
		var ae *francetravail.APIError
		if !errors.As(err, &ae) {
			t.Errorf("%s: err = %v, want an APIError", tt.query, err)
			continue
		}
		if ae.Status != 400 || ae.Message != tt.want || ae.Retryable() {
			t.Errorf("%s: %d %q retryable=%v, want 400 %q, not retryable", tt.query, ae.Status, ae.Message, ae.Retryable(), tt.want)
		}
		if ae.Code == "" || strings.Trim(ae.Code, "0123456789") != "" {
			t.Errorf("%s: codeErreur %q, want epoch milliseconds", tt.query, ae.Code)
		}
		if !strings.Contains(ae.Error(), "GET /partenaire/offresdemploi/v2/offres/search") || !strings.Contains(ae.Error(), tt.want) {
			t.Errorf("%s: Error() = %q, want method, path and message", tt.query, ae.Error())
		}
	}
	// Each of these queries, checked by Validate first, makes no call.
	before := e.emu.Stats().Total("GET /offres/search")
	for _, q := range []francetravail.Query{{Range: "0-150"}, {Departement: "999"}, {MotsCles: "a"}, {ExperienceExigence: "Y"}} {
		if _, err := e.c.Search(context.Background(), q, func(francetravail.Offer) error { return nil }); !errors.Is(err, francetravail.ErrInvalidQuery) {
			t.Errorf("Search(%+v) = %v, want ErrInvalidQuery", q, err)
		}
	}
	if after := e.emu.Stats().Total("GET /offres/search"); after != before {
		t.Errorf("invalid queries made %d calls", after-before)
	}
}

// TestStatusesAndContentRange covers 200, 206, both 204 forms and range
// semantics.
func TestStatusesAndContentRange(t *testing.T) {
	e := newEnv(t, francetravailtest.Config{Corpus: francetravailtest.Synthetic(200, 1, francetravailtest.SyntheticOptions{Departements: []string{"74", "73"}})}, nil)
	ctx := context.Background()
	all, _ := e.searchAll(t, francetravail.Query{})
	tests := []struct {
		query      string
		status     int
		first      int
		last       int
		total      int
		wantOffers int
	}{
		{"range=0-149", 206, 0, 149, 200, 150},
		{"", 206, 0, 149, 200, 150},
		{"range=150-299", 206, 150, 199, 200, 50},
		{"range=190-199", 206, 190, 199, 200, 10},
		{"range=5-5", 206, 5, 5, 200, 1},
		{"range=200-210", 204, -1, -1, 200, 0},
		{"range=0-149&departement=01", 204, -1, -1, 0, 0},
	}
	for _, tt := range tests {
		v, _ := url.ParseQuery(tt.query)
		p, err := e.c.SearchRaw(ctx, v)
		if err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		if p.Status != tt.status || p.Range != (francetravail.ContentRange{First: tt.first, Last: tt.last, Total: tt.total}) || len(p.Offers) != tt.wantOffers {
			t.Errorf("%s: %d %+v with %d offers, want %d %d-%d/%d with %d", tt.query, p.Status, p.Range, len(p.Offers), tt.status, tt.first, tt.last, tt.total, tt.wantOffers)
		}
		for i, o := range p.Offers {
			if id, _ := o.ID(); id != all[tt.first+i] {
				t.Errorf("%s: offer %d is %s, want %s", tt.query, tt.first+i, id, all[tt.first+i])
				break
			}
		}
	}
	// 200 when one page holds everything.
	v, _ := url.ParseQuery("departement=73")
	p, err := e.c.SearchRaw(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != 200 || p.Range.First != 0 || p.Range.Last != p.Range.Total-1 || len(p.Offers) != p.Range.Total {
		t.Errorf("a single full page: %d %+v, want 200 0-%d/%d", p.Status, p.Range, p.Range.Total-1, p.Range.Total)
	}
	// Search with Range fetches exactly that range.
	ids, sum := e.searchAll(t, francetravail.Query{Range: "10-19"})
	if len(ids) != 10 || strings.Join(ids, ",") != strings.Join(all[10:20], ",") || sum.Requests != 1 || sum.Total != 200 {
		t.Errorf("Range 10-19: %v (summary %+v), want %v in 1 request", ids, sum, all[10:20])
	}
	if ids, _ := e.searchAll(t, francetravail.Query{Range: "300-310"}); len(ids) != 0 {
		t.Errorf("a range past the end gave %d offers", len(ids))
	}
}

// TestStartCap: a range may start at 3000 but not after.
func TestStartCap(t *testing.T) {
	e := newEnv(t, francetravailtest.Config{Corpus: francetravailtest.Synthetic(3200, 2, francetravailtest.SyntheticOptions{Departements: []string{"74"}})}, nil)
	ids, sum := e.searchAll(t, francetravail.Query{Range: "3000-3149"})
	if len(ids) != 150 || sum.Total != 3200 {
		t.Errorf("range 3000-3149: %d offers of %d, want 150 of 3200", len(ids), sum.Total)
	}
	_, err := e.c.SearchRaw(context.Background(), url.Values{"range": {"3050-3199"}})
	var ae *francetravail.APIError
	if !errors.As(err, &ae) || ae.Message != "La position de début doit être inférieure ou égale à 3000." {
		t.Errorf("range 3050-3199: %v", err)
	}
}

func TestOfferByID(t *testing.T) {
	offers := francetravailtest.SyntheticOffers(50, 3, francetravailtest.SyntheticOptions{})
	corpus, err := francetravailtest.Offers(offers)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, francetravailtest.Config{Corpus: corpus}, nil)
	ctx := context.Background()
	id, _ := offers[7].ID()
	got, err := e.c.Offer(ctx, id)
	if err != nil || !bytes.Equal(got, offers[7]) {
		t.Errorf("Offer(%s) = %.60s, %v; want the offer's bytes", id, got, err)
	}
	if _, err := e.c.Offer(ctx, "100AAAA"); !errors.Is(err, francetravail.ErrNotFound) {
		t.Errorf("unknown id: %v, want ErrNotFound", err)
	}
	_, err = e.c.Offer(ctx, "not an id!")
	var ae *francetravail.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Message != "Le format de l'id de l'offre recherchée est incorrect." {
		t.Errorf("malformed id: %v", err)
	}
	st := e.emu.Stats()
	for status, want := range map[int]int64{200: 1, 204: 1, 400: 1} {
		if got := st.Count("GET /offres/{id}", status); got != want {
			t.Errorf("%d answers %d, want %d", got, status, want)
		}
	}
}

func TestReferentials(t *testing.T) {
	e := newEnv(t, francetravailtest.Config{Corpus: francetravailtest.Synthetic(300, 1, francetravailtest.SyntheticOptions{Departements: []string{"74"}})}, nil)
	ctx := context.Background()
	for _, name := range francetravail.ReferentialNames() {
		entries, err := e.c.Referential(ctx, name)
		if err != nil || len(entries) == 0 {
			t.Errorf("%s: %d entries, %v", name, len(entries), err)
		}
		for _, en := range entries {
			if en.Code == "" {
				t.Errorf("%s: entry without code %+v", name, en)
			}
		}
	}
	deps, _ := e.c.Referential(ctx, francetravail.RefDepartements)
	found := false
	for _, d := range deps {
		if d.Code == "74" {
			found = d.Libelle == "Haute-Savoie" && d.Region != nil && d.Region.Code == "84"
		}
	}
	if !found {
		t.Error("departements lacks 74 Haute-Savoie in region 84")
	}
	communes, _ := e.c.Referential(ctx, francetravail.RefCommunes)
	for _, c := range communes {
		if c.CodeDepartement != "74" || !strings.HasPrefix(c.Code, "74") || c.CodePostal == "" || c.Libelle == "" {
			t.Errorf("commune %+v", c)
		}
	}
	// Every commune of the referential is accepted by the filter.
	ids, _ := e.searchAll(t, francetravail.Query{Commune: communes[0].Code})
	if len(ids) == 0 {
		t.Errorf("no offer in commune %s of the referential", communes[0].Code)
	}
	before := e.emu.Stats().Total("GET /referentiel/{name}")
	if _, err := e.c.Referential(ctx, "../offres/search"); err == nil {
		t.Error("an unknown referential was accepted")
	}
	if e.emu.Stats().Total("GET /referentiel/{name}") != before {
		t.Error("an unknown referential name reached the network")
	}
}

// TestQuota429 checks that a client faster than the quota gets 429s, waits
// Retry-After, lowers its pace to the announced capacity and completes. A
// quota of 1 call/s makes the second call a 429 however slow the machine.
func TestQuota429(t *testing.T) {
	e := newEnv(t, francetravailtest.Config{Quota: 1, Corpus: francetravailtest.Synthetic(400, 1, francetravailtest.SyntheticOptions{Departements: []string{"74"}})},
		func(c *francetravail.Config) { c.RateLimit = 100 })
	start := time.Now()
	ids, sum := e.searchAll(t, francetravail.Query{})
	if len(ids) != 400 {
		t.Errorf("%d offers, want 400", len(ids))
	}
	st := e.emu.Stats()
	if n := st.Count("GET /offres/search", 429); n == 0 {
		t.Error("no 429: the test does not exercise the quota")
	}
	if got := e.c.RateLimit(); got != 1 {
		t.Errorf("rate limit after 429s: %v, want the announced capacity 1", got)
	}
	if sum.Requests != int(st.Total("GET /offres/search")) {
		t.Errorf("Summary.Requests = %d, emulator counted %d", sum.Requests, st.Total("GET /offres/search"))
	}
	t.Logf("%d offers in %v, %v", len(ids), time.Since(start), st.Requests["GET /offres/search"])
}

// TestTransientFailures: 5xx (JSON and HTML gateway pages) and resets are
// retried; every offer still arrives once.
func TestTransientFailures(t *testing.T) {
	e := newEnv(t, francetravailtest.Config{
		Faults: emulator.Config{ErrorRate: 0.25, ResetRate: 0.1, Seed: 7},
		Corpus: francetravailtest.Synthetic(2000, 1, francetravailtest.SyntheticOptions{Departements: []string{"74"}}),
	}, nil)
	ids, _ := e.searchAll(t, francetravail.Query{})
	if len(ids) != 2000 {
		t.Errorf("%d offers, want 2000", len(ids))
	}
	st := e.emu.Stats()
	for _, status := range []int{0, 500, 502, 503} {
		if st.Count("GET /offres/search", status) == 0 {
			t.Errorf("no %d: the test does not exercise it (%v)", status, st.Requests)
		}
	}
}

func TestErrorsOfFailedCalls(t *testing.T) {
	tests := []struct {
		status  int
		message string
	}{
		{500, "Internal Server Error"},
		{502, "502 Bad Gateway"},
		{503, "Service Unavailable"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			e := newEnv(t, francetravailtest.Config{}, func(c *francetravail.Config) { c.Retry.MaxAttempts = 3 })
			if err := e.emu.Faults().Set(emulator.Config{ErrorRate: 1, ErrorStatuses: []int{tt.status}}); err != nil {
				t.Fatal(err)
			}
			_, err := e.c.Offer(context.Background(), "193MWGT")
			if !errors.Is(err, retry.ErrExhausted) {
				t.Errorf("err = %v, want retries exhausted", err)
			}
			var te *francetravail.TokenError // the token endpoint fails first
			if !errors.As(err, &te) || te.Status != tt.status || !te.Retryable() {
				t.Errorf("err = %v, want a retryable token error %d", err, tt.status)
			}
			e.emu.Faults().Set(emulator.Config{})
			if _, err := e.c.Referential(context.Background(), francetravail.RefRegions); err != nil {
				t.Fatal(err)
			}
			e.emu.Faults().Set(emulator.Config{ErrorRate: 1, ErrorStatuses: []int{tt.status}})
			_, err = e.c.Offer(context.Background(), "193MWGT")
			var ae *francetravail.APIError
			if !errors.As(err, &ae) || ae.Status != tt.status || ae.Message != tt.message || !ae.Retryable() {
				t.Errorf("err = %v, want a retryable %d APIError with message %q", err, tt.status, tt.message)
			}
			if n := e.emu.Stats().Count("GET /offres/{id}", tt.status); n != 3 {
				t.Errorf("%d attempts, want 3", n)
			}
		})
	}
}

func TestCallTimeoutAndContext(t *testing.T) {
	e := newEnv(t, francetravailtest.Config{Corpus: francetravailtest.Synthetic(10, 1, francetravailtest.SyntheticOptions{})}, func(c *francetravail.Config) {
		c.CallTimeout = 50 * time.Millisecond
		c.Retry.MaxAttempts = 2
	})
	if _, err := e.c.Referential(context.Background(), francetravail.RefRegions); err != nil {
		t.Fatal(err)
	}
	// Without the call time-out the answer would come after the latency.
	e.emu.Faults().Set(emulator.Config{Latency: emulator.Duration(300 * time.Millisecond)})
	_, err := e.c.Referential(context.Background(), francetravail.RefRegions)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, retry.ErrExhausted) {
		t.Errorf("err = %v, want a time-out, retried", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e2 := newEnv(t, francetravailtest.Config{Corpus: francetravailtest.Synthetic(1000, 1, francetravailtest.SyntheticOptions{})}, nil)
	n := 0
	_, err = e2.c.Search(ctx, francetravail.Query{}, func(francetravail.Offer) error {
		if n++; n == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled search: %v, want context.Canceled", err)
	}
	stop := errors.New("enough")
	n = 0
	sum, err := e2.c.Search(context.Background(), francetravail.Query{}, func(francetravail.Offer) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || sum.Fetched != 3 {
		t.Errorf("yield error: %v after %d offers, want %v after 3", err, sum.Fetched, stop)
	}
}

// TestSecretNeverShows looks for the client secret in every error, log line
// and formatting of the configuration.
func TestSecretNeverShows(t *testing.T) {
	const secret = "S3cr3t-Value-4242"
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnv(t, francetravailtest.Config{ClientSecret: secret, Faults: emulator.Config{ErrorRate: 0.3, ResetRate: 0.05, Seed: 3},
		Corpus: francetravailtest.Synthetic(400, 1, francetravailtest.SyntheticOptions{})},
		func(c *francetravail.Config) { c.Logger = logger })
	var texts []string
	e.searchAll(t, francetravail.Query{})
	e.emu.ExpireTokens()
	e.searchAll(t, francetravail.Query{Departement: "74"})
	_, err := e.c.Offer(context.Background(), "bad id!")
	texts = append(texts, fmt.Sprint(err))
	bad, err := francetravail.NewClient(francetravail.Config{ClientID: "x", ClientSecret: secret + "-wrong", APIBaseURL: e.cfg.APIBaseURL,
		TokenURL: e.cfg.TokenURL, HTTPClient: e.srv.Client(), Logger: logger, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Referential(context.Background(), francetravail.RefRegions)
	if err == nil {
		t.Fatal("a wrong secret was accepted")
	}
	texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
	cfg := e.cfg
	cfg.Logger = nil
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		texts = append(texts, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg))
	}
	texts = append(texts, cfg.String(), cfg.GoString())
	logger.Info("config", "cfg", cfg)
	texts = append(texts, logs.String())
	if !strings.Contains(logs.String(), "retrying") || !strings.Contains(logs.String(), "re-authenticating") {
		t.Errorf("the logs do not show the retries and the re-authentication:\n%s", logs.String())
	}
	for _, s := range texts {
		if strings.Contains(s, secret) || strings.Contains(s, fmt.Sprintf("%x", secret)) {
			t.Errorf("secret found in %q", s)
		}
	}
	if !strings.Contains(fmt.Sprint(cfg), "[REDACTED]") {
		t.Errorf("Config formats as %v, want the secret shown as [REDACTED]", cfg)
	}
}
