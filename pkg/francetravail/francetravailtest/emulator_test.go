package francetravailtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/pulljobs/pulljobs/pkg/emulator"
)

// newServer serves an emulator on 127.0.0.1 for the test's lifetime.
func newServer(t *testing.T, cfg Config) (*Emulator, *httptest.Server) {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return e, srv
}

// token gets a token with the given credentials and scopes through the
// same OAuth2 library the client uses.
func token(t *testing.T, srv *httptest.Server, id, secret string, scopes ...string) (*oauth2.Token, error) {
	t.Helper()
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: TokenURL(srv.URL), Scopes: scopes, AuthStyle: oauth2.AuthStyleInParams}
	return cc.Token(context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client()))
}

func get(t *testing.T, srv *httptest.Server, tok, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestTokenEndpoint(t *testing.T) {
	_, srv := newServer(t, Config{})
	tests := []struct {
		name, id, secret string
		scopes           []string
		wantCode         string
		wantDesc         string
	}{
		{"ok", DefaultClientID, DefaultClientSecret, []string{"api_offresdemploiv2", "o2dsoffre"}, "", ""},
		{"ok with application scope", DefaultClientID, DefaultClientSecret, []string{"api_offresdemploiv2", "o2dsoffre", "application_" + DefaultClientID}, "", ""},
		{"bad secret", DefaultClientID, "nope", []string{"api_offresdemploiv2"}, "invalid_client", "Client authentication failed"},
		{"unknown client", "who", DefaultClientSecret, []string{"api_offresdemploiv2"}, "invalid_client", "Client authentication failed"},
		{"unknown scope", DefaultClientID, DefaultClientSecret, []string{"api_offresdemploiv2", "x"}, "invalid_scope", "Unknown/invalid scope(s): [x]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := token(t, srv, tt.id, tt.secret, tt.scopes...)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tok.AccessToken == "" || tok.TokenType != "Bearer" || time.Until(tok.Expiry) < 1400*time.Second {
					t.Errorf("token %+v, want a Bearer token living 1499 s", tok)
				}
				if got := tok.Extra("scope"); got != strings.Join(tt.scopes, " ") {
					t.Errorf("scope = %v, want %q", got, strings.Join(tt.scopes, " "))
				}
				return
			}
			re, ok := err.(*oauth2.RetrieveError)
			if !ok {
				t.Fatalf("err = %v, want an OAuth2 error", err)
			}
			if re.Response.StatusCode != http.StatusBadRequest || re.ErrorCode != tt.wantCode || re.ErrorDescription != tt.wantDesc {
				t.Errorf("got %d %q %q, want 400 %q %q", re.Response.StatusCode, re.ErrorCode, re.ErrorDescription, tt.wantCode, tt.wantDesc)
			}
		})
	}
	t.Run("grant and realm", func(t *testing.T) {
		for _, tc := range []struct {
			query, body, wantCode string
			status                int
		}{
			{"realm=%2Fpartenaire", "grant_type=client_credentials&client_id=sandbox-client&client_secret=sandbox-secret&scope=api_offresdemploiv2", "", 200},
			{"realm=/partenaire", "grant_type=client_credentials&client_id=sandbox-client&client_secret=sandbox-secret", "", 200},
			{"realm=partenaire", "grant_type=client_credentials&client_id=sandbox-client&client_secret=sandbox-secret", "", 200},
			{"realm=%2Fpartenaire", "grant_type=password&client_id=sandbox-client&client_secret=sandbox-secret", "unsupported_grant_type", 400},
			{"realm=%2Fpartenaire", "client_id=sandbox-client&client_secret=sandbox-secret", "unsupported_grant_type", 400},
			{"realm=%2Fautre", "grant_type=client_credentials&client_id=sandbox-client&client_secret=sandbox-secret", "invalid_request", 400},
		} {
			resp, err := srv.Client().Post(srv.URL+TokenPath+"?"+tc.query, "application/x-www-form-urlencoded", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || (tc.wantCode != "" && body["error"] != tc.wantCode) {
				t.Errorf("%s %s: %d %v, want %d %s", tc.query, tc.body, resp.StatusCode, body, tc.status, tc.wantCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
		}
	})
}

func TestUnauthorized(t *testing.T) {
	now := time.Date(2025, 8, 6, 0, 0, 0, 0, time.UTC)
	t0 := now
	clock := &now
	e, srv := newServer(t, Config{TokenLifetime: time.Minute, Now: func() time.Time { return *clock }, Corpus: Synthetic(10, 1, SyntheticOptions{})})
	tok, err := token(t, srv, DefaultClientID, DefaultClientSecret, "api_offresdemploiv2", "o2dsoffre")
	if err != nil {
		t.Fatal(err)
	}
	check := func(name, tok string, want int) {
		t.Helper()
		resp := get(t, srv, tok, APIPath+"/offres/search")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", name, resp.StatusCode, want)
		}
		if want == http.StatusUnauthorized && len(body) != 0 {
			t.Errorf("%s: 401 body %q, want empty", name, body)
		}
	}
	check("valid", tok.AccessToken, http.StatusOK)
	check("missing", "", http.StatusUnauthorized)
	check("unknown", "0123456789", http.StatusUnauthorized)
	*clock = t0.Add(time.Minute)
	check("expired", tok.AccessToken, http.StatusUnauthorized)
	*clock = t0.Add(time.Minute - time.Millisecond)
	check("valid again before expiry", tok.AccessToken, http.StatusOK)
	e.ExpireTokens()
	check("after ExpireTokens", tok.AccessToken, http.StatusUnauthorized)
}

func TestQuota(t *testing.T) {
	e, srv := newServer(t, Config{Quota: 3, Corpus: Synthetic(10, 1, SyntheticOptions{})})
	tok, err := token(t, srv, DefaultClientID, DefaultClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	var statuses []int
	var last *http.Response
	for i := 0; i < 5; i++ {
		last = get(t, srv, tok.AccessToken, APIPath+"/offres/search")
		statuses = append(statuses, last.StatusCode)
		if last.StatusCode == http.StatusOK {
			if got := last.Header.Get(hdrRemaining); got != strconv.Itoa(2-i) {
				t.Errorf("call %d: remaining %q, want %d", i, got, 2-i)
			}
		}
	}
	if statuses[0] != 200 || statuses[2] != 200 || statuses[3] != 429 || statuses[4] != 429 {
		t.Fatalf("statuses %v, want 3 answers then 429s", statuses)
	}
	h := last.Header
	if h.Get("Retry-After") != "1" || h.Get(hdrBurst) != "3" || h.Get(hdrRemaining) != "0" || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Errorf("429 headers %v", h)
	}
	if got := e.Stats().Count("GET /offres/search", 429); got != 2 {
		t.Errorf("stats count %d 429s, want 2", got)
	}
	time.Sleep(1100 * time.Millisecond)
	if resp := get(t, srv, tok.AccessToken, APIPath+"/offres/search"); resp.StatusCode != 200 {
		t.Errorf("after Retry-After: %d, want 200", resp.StatusCode)
	}
	e.SetQuota(0)
	for i := 0; i < 10; i++ {
		if resp := get(t, srv, tok.AccessToken, APIPath+"/offres/search"); resp.StatusCode != 200 || resp.Header.Get(hdrBurst) != "" {
			t.Fatalf("without quota: %d %v", resp.StatusCode, resp.Header)
		}
	}
}

func TestAdminRoutes(t *testing.T) {
	e, srv := newServer(t, Config{})
	c := srv.Client()
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	var nd strings.Builder
	for _, o := range SyntheticOffers(7, 1, SyntheticOptions{}) {
		nd.Write(o)
		nd.WriteByte('\n')
	}
	if st, out := do(http.MethodPut, "/_emulator/offers", nd.String()); st != 200 || out["offers"] != 7.0 {
		t.Errorf("PUT offers: %d %v", st, out)
	}
	if e.Corpus().Len() != 7 {
		t.Errorf("corpus has %d offers, want 7", e.Corpus().Len())
	}
	if st, _ := do(http.MethodPut, "/_emulator/offers", "{\"id\":\"1\"}\n{\"id\":\"1\"\n"); st != 400 {
		t.Errorf("PUT malformed offers: %d, want 400", st)
	}
	if st, out := do(http.MethodPut, "/_emulator/faults", `{"error_rate":0.5,"latency":"10ms"}`); st != 200 || out["error_rate"] != 0.5 {
		t.Errorf("PUT faults: %d %v", st, out)
	}
	if cfg := e.Faults().Config(); cfg.ErrorRate != 0.5 || cfg.Latency != emulator.Duration(10*time.Millisecond) {
		t.Errorf("faults in force %+v", cfg)
	}
	if st, _ := do(http.MethodPut, "/_emulator/faults", `{"error_rate":2}`); st != 400 {
		t.Errorf("PUT bad faults: %d, want 400", st)
	}
	if st, out := do(http.MethodPut, "/_emulator/quota", `{"per_second":10}`); st != 200 || out["per_second"] != 10.0 || e.Quota() != 10 {
		t.Errorf("PUT quota: %d %v", st, out)
	}
	if st, _ := do(http.MethodGet, "/_emulator/stats", ""); st != 200 {
		t.Errorf("GET stats: %d", st)
	}
	if st, _ := do(http.MethodPost, "/_emulator/expire-tokens", ""); st != 200 {
		t.Errorf("POST expire-tokens: %d", st)
	}
	if st, _ := do(http.MethodDelete, "/_emulator/offers", ""); st != 405 {
		t.Errorf("DELETE offers: %d, want 405", st)
	}
}

// TestSearchMessages checks each 400 the emulator answers, message and shape.
func TestSearchMessages(t *testing.T) {
	tests := []struct{ query, want string }{
		{"range=0-150", msgRangeTooWide},
		{"range=3001-3010", msgRangeStart(3000)},
		{"range=abc", msgRangeFormat},
		{"range=10-5", msgRangeFormat},
		{"range=-1-5", msgRangeFormat},
		{"motsCles=a", msgMotsCles},
		{"motsCles=aa,bb,cc,dd,ee,ff,gg,hh", msgMotsCles},
		{"experience=5", msgExperience},
		{"experienceExigence=X", msgExpExigence},
		{"tempsPlein=oui", msgBoolean("tempsPlein")},
		{"offresMRS=1", msgBoolean("offresMRS")},
		{"departement=999", msgValue("departement")},
		{"departement=01,02,03,04,05,06", msgValue("departement")},
		{"commune=7419", msgValue("commune")},
		{"region=99", msgValue("region")},
		{"typeContrat=XXX", msgValue("typeContrat")},
		{"natureContrat=ZZ", msgValue("natureContrat")},
		{"codeROME=X1234", msgValue("codeROME")},
		{"codeNAF=56.10A,78.20Z,84.11Z", msgValue("codeNAF")},
		{"sort=3", msgFormat("sort", "0, 1 ou 2")},
		{"origineOffre=3", msgFormat("origineOffre", "1 ou 2")},
		{"qualification=5", msgFormat("qualification", "0 ou 9")},
		{"publieeDepuis=2", msgFormat("publieeDepuis", "1, 3, 7, 14 ou 31")},
		{"minCreationDate=2025-08-01T00:00:00Z", msgTogether("minCreationDate", "maxCreationDate")},
		{"minCreationDate=2025-08-01T00:00:00.000Z&maxCreationDate=2025-08-02T00:00:00Z", msgFormat("minCreationDate", "yyyy-MM-ddTHH:mm:ssZ")},
		{"salaireMin=1800", msgTogether("salaireMin", "periodeSalaire")},
		{"salaireMin=1800&periodeSalaire=J", msgFormat("periodeSalaire", "M, A, H ou C")},
		{"grandDomaine=Z", msgValue("grandDomaine")},
		{"partenaires=INDEED&modeSelectionPartenaires=TOUS", msgFormat("modeSelectionPartenaires", "INCLUS ou EXCLU")},
		{"dureeHebdoMin=3575", msgFormat("dureeHebdoMin", "HHMM")},
		{"dureeContratMax=100", msgFormat("dureeContratMax", "Nombre entre 0 et 99")},
		{"distance=-1&commune=74010", msgFormat("distance", "Entier positif")},
		{"periodeSalaire=M", msgTogether("salaireMin", "periodeSalaire")},
		{"maxCreationDate=2025-08-01T00:00:00Z", msgTogether("minCreationDate", "maxCreationDate")},
		{"modeSelectionPartenaires=EXCLU", msgTogether("partenaires", "modeSelectionPartenaires")},
		{"minCreationDate=2025-08-02T00:00:00Z&maxCreationDate=2025-08-01T23:59:59Z", msgOrder("minCreationDate", "maxCreationDate")},
		{"dureeHebdoMin=3600&dureeHebdoMax=3530", msgOrder("dureeHebdoMin", "dureeHebdoMax")},
		{"dureeContratMin=12.5&dureeContratMax=12", msgOrder("dureeContratMin", "dureeContratMax")},
		{"salaireMin=Inf&periodeSalaire=M", msgFormat("salaireMin", "Nombre positif")},
		{"salaireMin=NaN&periodeSalaire=M", msgFormat("salaireMin", "Nombre positif")},
		{"range=0000000000-0000000149", msgRangeFormat},
	}
	for _, tt := range tests {
		v, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		if _, got := parseSearchParams(v); got != tt.want {
			t.Errorf("%s: message %q, want %q", tt.query, got, tt.want)
		}
	}
	for _, ok := range []string{"", "range=0-149", "range=3000-3149", "range=5-5", "motsCles=ski,été", "departement=2A,971",
		"commune=74010&distance=0", "unknown=ignored", "tempsPlein=false", "publieeDepuis=31", "typeContrat=CDI,CDD",
		"minCreationDate=2025-08-01T00:00:00Z&maxCreationDate=2025-08-01T00:00:00Z", "experience=0", "sort=2", "qualification=9",
		"dureeContratMin=12&dureeContratMax=12", "distance=5", "range=000000000-000000149"} {
		v, _ := url.ParseQuery(ok)
		if _, msg := parseSearchParams(v); msg != "" {
			t.Errorf("%s: rejected with %q", ok, msg)
		}
	}
}

// FuzzSearchParams feeds arbitrary query strings to the search endpoint:
// it never panics and always answers 2xx or 400.
func FuzzSearchParams(f *testing.F) {
	for _, s := range []string{"", "range=0-149", "range=3000-3149&sort=1", "motsCles=a,bb", "departement=74&commune=74010",
		"minCreationDate=2025-08-01T00:00:00Z&maxCreationDate=2025-08-02T00:00:00Z", "range=99999999999999999999-1",
		"typeContrat=CDI,,CDD", "experience=%00", "publieeDepuis=7&qualification=0&origineOffre=2"} {
		f.Add(s)
	}
	e, err := New(Config{Corpus: Synthetic(60, 1, SyntheticOptions{Departements: []string{"74", "73"}})})
	if err != nil {
		f.Fatal(err)
	}
	tok := issue(f, e)
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		p, msg := parseSearchParams(v)
		if (p == nil) == (msg == "") {
			t.Fatalf("%q: params %v and message %q", query, p, msg)
		}
		req := httptest.NewRequest(http.MethodGet, APIPath+"/offres/search?"+v.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		if st := w.Code; st != 200 && st != 206 && st != 204 && st != 400 {
			t.Fatalf("%q: status %d", query, st)
		}
		if w.Code == 400 {
			var body struct {
				Message    string `json:"message"`
				CodeHTTP   int    `json:"codeHttp"`
				CodeErreur string `json:"codeErreur"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Message == "" || body.CodeHTTP != 400 {
				t.Fatalf("%q: 400 body %s", query, w.Body.Bytes())
			}
		}
	})
}

// issue gets a token straight from the handler.
func issue(tb testing.TB, e *Emulator) string {
	tb.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret}}
	req := httptest.NewRequest(http.MethodPost, TokenPath+"?realm=%2Fpartenaire", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.AccessToken == "" {
		tb.Fatalf("token: %d %s", w.Code, w.Body.Bytes())
	}
	return body.AccessToken
}

// TestCacheFollowsCorpus checks that replacing the corpus drops cached
// results.
func TestCacheFollowsCorpus(t *testing.T) {
	e, err := New(Config{Corpus: Synthetic(300, 1, SyntheticOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	tok := issue(t, e)
	total := func() string {
		req := httptest.NewRequest(http.MethodGet, APIPath+"/offres/search?range=0-9", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		return w.Header().Get("Content-Range")
	}
	if got := total(); got != "offres 0-9/300" {
		t.Fatalf("Content-Range %q", got)
	}
	e.SetCorpus(Synthetic(20, 1, SyntheticOptions{}))
	if got := total(); got != "offres 0-9/20" {
		t.Errorf("after SetCorpus: Content-Range %q, want offres 0-9/20", got)
	}
}

// TestRepeatedIDs: a corpus may hold an id twice, as the API has been seen
// to serve one; both copies are matches of their own, and GET /offres/{id}
// answers the first.
func TestRepeatedIDs(t *testing.T) {
	offers := SyntheticOffers(3, 1, SyntheticOptions{})
	first := append([]byte(nil), offers[0]...)
	second := []byte(strings.Replace(string(offers[0]), `"intitule":"`, `"intitule":"(copie) `, 1))
	c, err := Offers(append(offers, second))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Corpus: c})
	if err != nil {
		t.Fatal(err)
	}
	tok := issue(t, e)
	serve := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, APIPath+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		return w
	}
	w := serve("/offres/search")
	if got := w.Header().Get("Content-Range"); got != "offres 0-3/4" {
		t.Errorf("Content-Range %q, want offres 0-3/4: both copies count", got)
	}
	if !strings.Contains(w.Body.String(), "(copie) ") || strings.Count(w.Body.String(), `"id":"`+c.Entry(0).ID+`"`) != 2 {
		t.Error("the search does not serve both copies")
	}
	if w := serve("/offres/" + c.Entry(0).ID); w.Body.String() != string(first) {
		t.Errorf("GET /offres/{id} answers %.80s…, want the first copy", w.Body.String())
	}
}

// TestMaxStart: an emulator whose range cap is lower than documented
// serves ranges up to it, and answers past it the API's 400 naming it.
func TestMaxStart(t *testing.T) {
	if _, err := New(Config{MaxStart: maxRangeStart + 1}); err == nil {
		t.Error("MaxStart past 3000: err = nil, want an error")
	}
	_, srv := newServer(t, Config{MaxStart: 1000, Corpus: Synthetic(2000, 1, SyntheticOptions{})})
	tok, err := token(t, srv, DefaultClientID, DefaultClientSecret, "api_offresdemploiv2", "o2dsoffre")
	if err != nil {
		t.Fatal(err)
	}
	if resp := get(t, srv, tok.AccessToken, APIPath+"/offres/search?range=1000-1149"); resp.StatusCode != http.StatusPartialContent {
		t.Errorf("range 1000-1149: %d, want 206", resp.StatusCode)
	}
	resp := get(t, srv, tok.AccessToken, APIPath+"/offres/search?range=1001-1150")
	var body struct {
		Message  string `json:"message"`
		CodeHTTP int    `json:"codeHttp"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if want := "La position de début doit être inférieure ou égale à 1000."; resp.StatusCode != 400 || body.Message != want || body.CodeHTTP != 400 {
		t.Errorf("range 1001-1150: %d %+v, want 400 %q", resp.StatusCode, body, want)
	}
}
