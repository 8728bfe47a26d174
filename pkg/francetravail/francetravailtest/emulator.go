// Package francetravailtest is a local emulator of the France Travail
// "Offres d'emploi v2" API and of its OAuth2 token endpoint, in the spirit of
// net/http/httptest: tests, benchmarks and the sandbox serve it with
// httptest.NewServer or http.Server and point a francetravail.Client at
// APIBaseURL(url) and TokenURL(url).
//
// It follows the contract in the project's France Travail spec: the token
// endpoint with its errors, token expiry and 401, the search endpoint with
// the validation of every parameter (its own table of the rules, which a
// test holds equal to francetravail.SearchParams) and the API's 400
// messages, real
// filtering (codeROME, departement, region, commune, typeContrat,
// natureContrat, motsCles, origineOffre, publieeDepuis,
// minCreationDate/maxCreationDate, qualification, experience,
// experienceExigence), sort, range and Content-Range, 200/206/204, the cap of
// ranges starting at 3000 at most (or at Config.MaxStart), filtresPossibles over the whole result,
// GET /offres/{id}, the referentials, and a per-client quota answering 429
// with Retry-After and the X-Ratelimit-* headers. Faults (error answers,
// resets, latency) come from package emulator.
//
// Approximations, by design: the other parameters are validated but not
// applied (the index holds no data for them): domaine, theme, appellation,
// secteurActivite, codeNAF, tempsPlein, inclureLimitrophes, paysContinent,
// niveauFormation, permis, salaireMin, accesTravailleurHandicape, offresMRS,
// offresManqueCandidats, entreprisesAdaptees, employeursHandiEngages,
// grandDomaine, partenaires, dureeHebdo*, dureeContrat*. commune matches the
// commune itself whatever distance; sort=2 (distance) sorts as sort=1.
// Choices that no source settles are marked UNVERIFIED where they are made:
// 200 only when one page holds every result, both creation-date bounds
// inclusive to the millisecond, a lower bound above its upper bound
// refused, publieeDepuis counted on dateCreation, the experience classes,
// the messages of parameters the spec does not quote.
//
// A corpus may hold an id more than once: each copy is then a match of its
// own, as the API has been seen to serve one offer twice. The corpus is
// indexed once when it is set (about 36 bytes an offer), so that a
// synthetic corpus of a million offers is served from a few tens of
// megabytes, each query reading only the offers of its creation-date
// window.
//
// Admin routes, never under the API's paths:
//
//	PUT  /_emulator/offers         NDJSON body, one offer a line: replaces the corpus
//	GET  /_emulator/offers         {"offers": n}
//	GET  /_emulator/stats          request counters by route and status
//	GET  /_emulator/faults         the faults in force
//	PUT  /_emulator/faults         replace them (JSON emulator.Config)
//	GET  /_emulator/quota          {"per_second": n}
//	PUT  /_emulator/quota          {"per_second": n}, 0 = none
//	POST /_emulator/expire-tokens  every issued token now answers 401
//
// Production code may import this package only for the sandbox command.
package francetravailtest

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/pulljobs/pulljobs/pkg/emulator"
)

// Paths and sandbox credentials.
const (
	// APIPath is where the API is served, as in production.
	APIPath = "/partenaire/offresdemploi/v2"
	// TokenPath is the token endpoint; the realm goes in the query.
	TokenPath = "/connexion/oauth2/access_token"
	// DefaultClientID and DefaultClientSecret are the sandbox credentials.
	DefaultClientID     = "sandbox-client"
	DefaultClientSecret = "sandbox-secret"
	// DefaultTokenLifetime is how long tokens live, as in production.
	DefaultTokenLifetime = 1499 * time.Second
)

// Limits of the emulator.
const (
	maxTokenBody = 64 << 10
	// maxCachedResults bounds the cache of filtered, sorted result sets.
	maxCachedResults = 64
	// maxStoredTokens triggers a sweep of expired tokens.
	maxStoredTokens = 1024
	tokenBytes      = 24
)

// Config configures an Emulator. The zero value is usable: sandbox
// credentials, 25-minute tokens, no quota, no faults, an empty corpus.
type Config struct {
	// ClientID and ClientSecret are the only accepted credentials; empty
	// means DefaultClientID / DefaultClientSecret.
	ClientID, ClientSecret string
	// TokenLifetime is the expires_in of issued tokens; 0 means
	// DefaultTokenLifetime.
	TokenLifetime time.Duration
	// Quota is the calls per second allowed to each client id, with a burst
	// of Quota; 0 means no quota.
	Quota int
	// Faults are injected from the start; change them with Faults().Set or
	// PUT /_emulator/faults.
	Faults emulator.Config
	// Now is the clock of token expiry and publieeDepuis; nil means time.Now.
	// The quota always runs on the real clock.
	Now func() time.Time
	// Corpus is the initial set of offers; nil means none.
	Corpus Corpus
	// MaxStart, when > 0, is the largest range start the search serves,
	// at most the API's documented 3000: a range starting past it is a
	// 400 with the API's message naming it ("La position de début doit
	// être inférieure ou égale à 1000."), as for an account whose cap is
	// lower than documented.
	MaxStart int
}

// Emulator serves the emulated API. It is safe for concurrent use and starts
// no goroutine.
type Emulator struct {
	clientID, clientSecret string
	lifetime               time.Duration
	now                    func() time.Time
	faults                 *emulator.Faults
	api                    http.Handler // the API wrapped in faults

	mu       sync.Mutex
	corpus   Corpus
	ix       *index // of corpus
	gen      uint64 // bumped by SetCorpus
	cache    map[string]*result
	order    []string // cache keys, oldest first
	tokens   map[string]tokenInfo
	quota    int
	limiters map[string]*rate.Limiter
	maxStart int // the largest range start
}

type tokenInfo struct {
	client string
	expiry time.Time
}

// New returns an Emulator configured by cfg.
func New(cfg Config) (*Emulator, error) {
	e := &Emulator{
		clientID:     cmp.Or(cfg.ClientID, DefaultClientID),
		clientSecret: cmp.Or(cfg.ClientSecret, DefaultClientSecret),
		lifetime:     cfg.TokenLifetime,
		now:          cfg.Now,
		tokens:       make(map[string]tokenInfo),
		limiters:     make(map[string]*rate.Limiter),
		cache:        make(map[string]*result),
	}
	if e.lifetime == 0 {
		e.lifetime = DefaultTokenLifetime
	}
	if e.lifetime < 0 {
		return nil, fmt.Errorf("francetravailtest: token lifetime %v: want > 0", cfg.TokenLifetime)
	}
	if cfg.Quota < 0 {
		return nil, fmt.Errorf("francetravailtest: quota %d: want ≥ 0", cfg.Quota)
	}
	if cfg.MaxStart < 0 || cfg.MaxStart > maxRangeStart {
		return nil, fmt.Errorf("francetravailtest: max start %d: want 1 to %d, or 0 for %d", cfg.MaxStart, maxRangeStart, maxRangeStart)
	}
	e.maxStart = cmp.Or(cfg.MaxStart, maxRangeStart)
	e.quota = cfg.Quota
	if e.now == nil {
		e.now = time.Now
	}
	e.SetCorpus(cfg.Corpus)
	f, err := emulator.NewFaults(cfg.Faults, errorBody)
	if err != nil {
		return nil, fmt.Errorf("francetravailtest: %w", err)
	}
	e.faults = f
	mux := http.NewServeMux()
	mux.HandleFunc(TokenPath, e.serveToken)
	mux.HandleFunc("GET "+APIPath+"/offres/search", e.authed(e.serveSearch))
	mux.HandleFunc("GET "+APIPath+"/offres/{id}", e.authed(e.serveOffer))
	mux.HandleFunc("GET "+APIPath+"/referentiel/{name}", e.authed(e.serveReferential))
	e.api = f.Wrap(routeName, mux)
	return e, nil
}

// errorBody renders injected errors as the API's: a 429 (a capacity
// reached) as the gateway's plain text, others as JSON errors.
func errorBody(status int) (string, []byte) {
	if status == http.StatusTooManyRequests {
		return "text/plain; charset=utf-8", []byte(http.StatusText(status) + "\n")
	}
	b, _ := json.Marshal(map[string]any{"message": http.StatusText(status), "codeHttp": status})
	return "application/json", b
}

// routeName names a request in the stats.
func routeName(r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == TokenPath:
		return r.Method + " /token"
	case p == APIPath+"/offres/search":
		return r.Method + " /offres/search"
	case strings.HasPrefix(p, APIPath+"/offres/"):
		return r.Method + " /offres/{id}"
	case strings.HasPrefix(p, APIPath+"/referentiel/"):
		return r.Method + " /referentiel/{name}"
	}
	return r.Method + " other"
}

// APIBaseURL returns the API base URL of an emulator served at serverURL
// ("http://127.0.0.1:1234"), for francetravail.Config.APIBaseURL.
func APIBaseURL(serverURL string) string { return strings.TrimSuffix(serverURL, "/") + APIPath }

// TokenURL returns the token URL of an emulator served at serverURL, realm
// included, for francetravail.Config.TokenURL.
func TokenURL(serverURL string) string {
	return strings.TrimSuffix(serverURL, "/") + TokenPath + "?realm=%2Fpartenaire"
}

// ServeHTTP serves the API, the token endpoint, the referentials and the
// admin routes under /_emulator/.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, emulator.AdminPrefix) {
		e.serveAdmin(w, r)
		return
	}
	e.api.ServeHTTP(w, r)
}

// SetCorpus replaces the corpus; searches in flight finish on the old one.
// It reads every offer's Entry once, to index them (about half a second
// for a million synthetic offers).
func (e *Emulator) SetCorpus(c Corpus) {
	if c == nil {
		c, _ = Offers(nil)
	}
	ix := newIndex(c)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.corpus, e.ix = c, ix
	e.gen++
	e.cache = make(map[string]*result)
	e.order = nil
}

// Corpus returns the corpus in use.
func (e *Emulator) Corpus() Corpus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.corpus
}

// Faults returns the fault injection, to change it while serving.
func (e *Emulator) Faults() *emulator.Faults { return e.faults }

// Stats returns the request counters by route ("GET /offres/search",
// "POST /token", "GET /offres/{id}", "GET /referentiel/{name}") and status.
func (e *Emulator) Stats() emulator.Stats { return e.faults.Stats() }

// SetQuota sets the calls per second allowed to each client (burst equal);
// 0 removes the quota. Buckets start full.
func (e *Emulator) SetQuota(perSecond int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.quota = max(perSecond, 0)
	e.limiters = make(map[string]*rate.Limiter)
}

// Quota returns the calls per second allowed to each client, 0 for none.
func (e *Emulator) Quota() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.quota
}

// ExpireTokens makes every token issued so far answer 401.
func (e *Emulator) ExpireTokens() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokens = make(map[string]tokenInfo)
}

// ---- token endpoint ----

func oauthError(w http.ResponseWriter, code, desc string) {
	emulator.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": desc})
}

var knownScopes = []string{"api_offresdemploiv2", "o2dsoffre"}

func (e *Emulator) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		emulator.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "POST expected"})
		return
	}
	// UNVERIFIED: the answer to a missing or other realm.
	if realm := r.URL.Query().Get("realm"); realm != "/partenaire" && realm != "partenaire" {
		oauthError(w, "invalid_request", "Invalid realm")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenBody)
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request", "Malformed request body")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		oauthError(w, "unsupported_grant_type", "Grant type is not supported: "+gt)
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok && id == "" {
		id, secret = bid, bsecret
	}
	if id != e.clientID || secret != e.clientSecret {
		oauthError(w, "invalid_client", "Client authentication failed")
		return
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	var unknown []string
	for _, s := range scopes {
		if !slices.Contains(knownScopes, s) && s != "application_"+id {
			unknown = append(unknown, s)
		}
	}
	if len(unknown) > 0 {
		oauthError(w, "invalid_scope", "Unknown/invalid scope(s): ["+strings.Join(unknown, ", ")+"]")
		return
	}
	var raw [tokenBytes]byte
	rand.Read(raw[:])
	tok := hex.EncodeToString(raw[:])
	now := e.now()
	e.mu.Lock()
	if len(e.tokens) >= maxStoredTokens {
		for t, info := range e.tokens {
			if !now.Before(info.expiry) {
				delete(e.tokens, t)
			}
		}
	}
	e.tokens[tok] = tokenInfo{client: id, expiry: now.Add(e.lifetime)}
	e.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	emulator.WriteJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int(math.Ceil(e.lifetime.Seconds())),
		"scope":        strings.Join(scopes, " "),
	})
}

// ---- API ----

// authed wraps an API handler with authentication and the quota.
func (e *Emulator) authed(h func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		client, ok := e.authorize(r)
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if !e.admit(w, client) {
			return
		}
		h(w, r)
	}
}

func (e *Emulator) authorize(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return "", false
	}
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	info, ok := e.tokens[tok]
	if !ok || !now.Before(info.expiry) {
		return "", false
	}
	return info.client, true
}

// Headers of the gateway's per-client quota.
const (
	hdrBurst     = "X-Ratelimit-Burst-Capacity-Clientidlimiter"
	hdrRemaining = "X-Ratelimit-Remaining-Clientidlimiter"
	hdrReplenish = "X-Ratelimit-Replenish-Rate-Clientidlimiter"
	hdrRequested = "X-Ratelimit-Requested-Tokens-Clientidlimiter"
)

// admit applies the quota: it sets the X-Ratelimit-* headers and answers 429
// itself when the client is over it.
func (e *Emulator) admit(w http.ResponseWriter, client string) bool {
	e.mu.Lock()
	q := e.quota
	lim := e.limiters[client]
	if q > 0 && lim == nil {
		lim = rate.NewLimiter(rate.Limit(q), q)
		e.limiters[client] = lim
	}
	e.mu.Unlock()
	if q <= 0 {
		return true
	}
	now := time.Now()
	h := w.Header()
	h.Set(hdrBurst, strconv.Itoa(q))
	h.Set(hdrReplenish, strconv.Itoa(q))
	h.Set(hdrRequested, "1")
	if lim.AllowN(now, 1) {
		h.Set(hdrRemaining, strconv.Itoa(int(math.Max(0, math.Floor(lim.TokensAt(now))))))
		return true
	}
	missing := 1 - lim.TokensAt(now)
	wait := max(int(math.Ceil(missing/float64(q))), 1)
	h.Set(hdrRemaining, "0")
	h.Set("Retry-After", strconv.Itoa(wait))
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusTooManyRequests)
	fmt.Fprintln(w, "Too Many Requests")
	return false
}

// badRequest answers the API's 400 JSON error.
func badRequest(w http.ResponseWriter, msg string) {
	emulator.WriteJSON(w, http.StatusBadRequest, map[string]any{
		"message":    msg,
		"codeHttp":   http.StatusBadRequest,
		"codeErreur": strconv.FormatInt(time.Now().UnixMilli(), 10),
	})
}

func (e *Emulator) serveOffer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !reOfferID.MatchString(id) {
		badRequest(w, msgOfferID)
		return
	}
	c := e.Corpus()
	i, ok := c.Index(id)
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(c.Offer(i))
}

func (e *Emulator) serveSearch(w http.ResponseWriter, r *http.Request) {
	p, msg := parseSearchParams(r.URL.Query())
	if msg == "" && p.first > e.maxStart {
		msg = msgRangeStart(e.maxStart)
	}
	if msg != "" {
		badRequest(w, msg)
		return
	}
	res := e.result(p)
	total := res.total
	h := w.Header()
	switch {
	case total == 0:
		h.Set("Content-Range", "*/0")
		w.WriteHeader(http.StatusNoContent)
		return
	case p.first >= total:
		h.Set("Content-Range", "offres -1--1/"+strconv.Itoa(total))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	last := min(p.last, total-1)
	status := http.StatusPartialContent
	// UNVERIFIED: when the API answers 200. Here: the page holds every result.
	if p.first == 0 && last == total-1 {
		status = http.StatusOK
	}
	bp := pageBuffers.Get().(*[]byte)
	defer pageBuffers.Put(bp)
	buf := append((*bp)[:0], `{"resultats":[`...)
	appender, _ := res.corpus.(offerAppender)
	for k := p.first; k <= last; k++ {
		if k > p.first {
			buf = append(buf, ',')
		}
		if appender != nil {
			buf = appender.AppendOffer(buf, int(res.ids[k]))
		} else {
			buf = append(buf, res.corpus.Offer(int(res.ids[k]))...)
		}
	}
	buf = append(buf, `],"filtresPossibles":`...)
	buf = append(buf, res.facets...)
	buf = append(buf, '}')
	*bp = buf
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(buf))) // not chunked: the client reads the page into a buffer of its size
	h.Set("Content-Range", fmt.Sprintf("offres %d-%d/%d", p.first, last, total))
	w.WriteHeader(status)
	w.Write(buf)
}

// offerAppender is a Corpus that writes an offer into a page: the
// synthetic one, which would otherwise make each offer in a buffer of its
// own, only to copy it.
type offerAppender interface {
	AppendOffer(dst []byte, i int) []byte
}

// pageBuffers hold the pages being written: a page is half a megabyte, and
// a sandbox serves thousands of them.
var pageBuffers = sync.Pool{New: func() any { return new([]byte) }}

// ---- admin ----

func (e *Emulator) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch path := strings.TrimPrefix(r.URL.Path, emulator.AdminPrefix); {
	case path == "offers" && r.Method == http.MethodPut:
		c, err := ReadNDJSON(r.Body)
		if err != nil {
			emulator.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "offers: " + err.Error()})
			return
		}
		e.SetCorpus(c)
		emulator.WriteJSON(w, http.StatusOK, map[string]int{"offers": c.Len()})
	case path == "offers" && r.Method == http.MethodGet:
		emulator.WriteJSON(w, http.StatusOK, map[string]int{"offers": e.Corpus().Len()})
	case path == "quota" && r.Method == http.MethodGet:
		emulator.WriteJSON(w, http.StatusOK, map[string]int{"per_second": e.Quota()})
	case path == "quota" && r.Method == http.MethodPut:
		var body struct {
			PerSecond *int `json:"per_second"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxTokenBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil || body.PerSecond == nil || *body.PerSecond < 0 {
			if err == nil {
				err = errors.New(`want {"per_second": n} with n ≥ 0`)
			}
			emulator.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "quota: " + err.Error()})
			return
		}
		e.SetQuota(*body.PerSecond)
		emulator.WriteJSON(w, http.StatusOK, map[string]int{"per_second": e.Quota()})
	case path == "expire-tokens" && r.Method == http.MethodPost:
		e.ExpireTokens()
		emulator.WriteJSON(w, http.StatusOK, map[string]bool{"expired": true})
	case path == "offers" || path == "quota" || path == "expire-tokens":
		emulator.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": r.Method + " not allowed"})
	default:
		e.faults.AdminHandler().ServeHTTP(w, r)
	}
}
