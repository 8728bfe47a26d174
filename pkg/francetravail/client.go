package francetravail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/time/rate"

	"github.com/pulljobs/pulljobs/pkg/retry"
)

// Production endpoints.
const (
	DefaultAPIBaseURL = "https://api.francetravail.io/partenaire/offresdemploi/v2"
	DefaultTokenURL   = "https://entreprise.francetravail.fr/connexion/oauth2/access_token?realm=%2Fpartenaire"
	// DefaultRateLimit is the calls per second a Client makes by default: the
	// API documents 4 calls/s per application.
	DefaultRateLimit = 4
	// DefaultCallTimeout bounds one HTTP call, body read included.
	DefaultCallTimeout = 30 * time.Second
)

// Scopes are the OAuth2 scopes the search API needs; read-only.
var Scopes = []string{"api_offresdemploiv2", "o2dsoffre"}

// Config configures a Client. ClientID and ClientSecret are required; every
// other field has a default. Config never prints its secret: String,
// GoString, Format and LogValue redact it.
type Config struct {
	// ClientID is the application's client id on francetravail.io.
	ClientID string
	// ClientSecret is the application's secret; it never leaves the token
	// call, and never reaches a log line or an error.
	ClientSecret string
	// APIBaseURL is the API root, without trailing slash; default
	// DefaultAPIBaseURL.
	APIBaseURL string
	// TokenURL is the full token endpoint, realm included; default
	// DefaultTokenURL.
	TokenURL string
	// RateLimit is the most calls per second to the API; 0 means
	// DefaultRateLimit, a negative value means no client-side limit. Either
	// way, on a 429 the limit is lowered to the burst capacity the API
	// announces in its X-Ratelimit-Burst-Capacity-Clientidlimiter header
	// when that is lower.
	// Token calls are not counted: they go to another host, with its own
	// limits, about once every 25 minutes.
	RateLimit float64
	// Limiter, when not nil, is waited before every API call, after the
	// client's own rate limit: the pipeline plugs in one that every
	// replica sharing the application's quota shares, so that a 429's
	// Retry-After pauses them all. When it is also an Observer, it hears
	// how every call went.
	Limiter Limiter
	// HTTPClient makes every call, token calls included; nil means a client
	// of its own (release its idle connections with
	// Client.CloseIdleConnections).
	HTTPClient *http.Client
	// CallTimeout bounds each call; 0 means DefaultCallTimeout.
	CallTimeout time.Duration
	// Retry says how failed calls are retried; the zero value is retry's defaults.
	Retry retry.Policy
	// Logger receives debug lines about calls and retries; nil discards them.
	Logger *slog.Logger
}

const redacted = "[REDACTED]"

func (c Config) redacted() any {
	type plain Config // drops the methods, so formatting does not recurse
	p := plain(c)
	if p.ClientSecret != "" {
		p.ClientSecret = redacted
	}
	return p
}

// String formats the configuration with the secret redacted.
func (c Config) String() string { return fmt.Sprintf("%+v", c.redacted()) }

// GoString formats the configuration with the secret redacted.
func (c Config) GoString() string { return fmt.Sprintf("%#v", c.redacted()) }

// Format implements fmt.Formatter so that every verb redacts the secret.
func (c Config) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		fmt.Fprint(f, c.GoString())
	default:
		fmt.Fprint(f, c.String())
	}
}

// LogValue implements slog.LogValuer without the secret.
func (c Config) LogValue() slog.Value {
	secret := ""
	if c.ClientSecret != "" {
		secret = redacted
	}
	return slog.GroupValue(
		slog.String("client_id", c.ClientID),
		slog.String("client_secret", secret),
		slog.String("api_base_url", c.APIBaseURL),
		slog.String("token_url", c.TokenURL),
		slog.Float64("rate_limit", c.RateLimit),
		slog.Duration("call_timeout", c.CallTimeout),
	)
}

// Limiter paces calls beside the client's own rate limit. Wait must return
// early with an error when ctx ends.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Observer is a Limiter that learns from the API's answers: after every
// call the client tells it the route ("GET /offres/search"), the status (0
// when no answer came), the time the call took, and the answer's
// Retry-After (0 for none), as ratelimit.Shared's Observe takes them.
type Observer interface {
	Observe(ctx context.Context, route string, status int, latency, retryAfter time.Duration)
}

// Summary reports one Search.
type Summary struct {
	// Total is the number of matches the API reported for the query as
	// given (its first page): what a split into creation-date windows adds
	// up to, boundaries shared by two windows counted once.
	Total int `json:"total"`
	// Fetched is the number of distinct offers passed to yield.
	// Offers without an id are passed on as they are, and counted here.
	Fetched int `json:"fetched"`
	// Duplicates counts the offers that the API served more than once in
	// the result of the query (same id: on two pages, or twice in its
	// total), not passed on again. Total = Fetched + Duplicates + Unreached
	// when the offers do not change during the search.
	Duplicates int `json:"duplicates"`
	// Overlaps counts the offers met again only because of how the search
	// cut the query: two creation-date windows share their boundary second,
	// the last page a range cap allows overlaps the one before, or a
	// window was fetched again after the API named a lower cap (see
	// Search); not passed on, and not in Total.
	Overlaps int `json:"overlaps"`
	// Requests counts search calls that got an answer, retries included.
	Requests int `json:"requests"`
	// Windows is the number of creation-date windows fetched (1 when the
	// query needed no split).
	Windows int `json:"windows"`
	// Truncated reports that some matches could not be reached: a window of
	// one second still held more than MaxReachable matches.
	Truncated bool `json:"truncated"`
	// Unreached is the number of matches not fetched because of the cap.
	Unreached int `json:"unreached"`
}

// Errors a Client returns; test them with errors.Is.
var (
	// ErrNotFound: the offer does not exist (the API answers 204).
	ErrNotFound = errors.New("offer not found")
	// ErrUnauthorized: the API still answered 401 after one re-authentication.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrAuth: the token endpoint refused the credentials or the scopes.
	ErrAuth = errors.New("authentication failed")
)

// APIError is an answer of the API that is not a success.
type APIError struct {
	// Method is the HTTP method of the call ("GET").
	Method string
	// Path is the URL path called, without query or credentials.
	Path string
	// Status is the HTTP status of the answer.
	Status int
	// Message is the API's "message", or the start of a non-JSON body.
	Message string
	// Code is the API's "codeErreur", when it sent one.
	Code string
	// RetryAfterDelay is the server's Retry-After, 0 when absent.
	RetryAfterDelay time.Duration
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("francetravail: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Code != "" {
		msg += " (codeErreur " + e.Code + ")"
	}
	return msg
}

// Retryable reports whether the status may pass on another attempt.
func (e *APIError) Retryable() bool { return retry.IsRetryableStatus(e.Status) }

// RetryAfter returns the server's Retry-After.
func (e *APIError) RetryAfter() time.Duration { return e.RetryAfterDelay }

// Is makes errors.Is(err, ErrUnauthorized) hold for a 401.
func (e *APIError) Is(target error) bool {
	return target == ErrUnauthorized && e.Status == http.StatusUnauthorized
}

// Client calls the Offres d'emploi v2 API. It is safe for concurrent use and
// starts no goroutine of its own: every call runs in its caller's goroutine
// and obeys its caller's context.
//
// Every API call waits for the client's rate limiter, carries a bearer token
// (fetched with the client-credentials grant, cached, and refreshed shortly
// before it expires), is bounded by Config.CallTimeout, and is retried through
// package retry on 429 (after Retry-After), 5xx, resets and time-outs. A 401
// drops the cached token and the call is made once more with a fresh one.
type Client struct {
	cfg     Config // defaults applied
	base    string // APIBaseURL without trailing slash
	apiPath string // the path part of base, for errors and logs
	hc      *http.Client
	log     *slog.Logger
	limiter *rate.Limiter
	cc      clientcredentials.Config

	tokenLock chan struct{} // one token fetch at a time; a channel so waits obey contexts
	mu        sync.Mutex    // guards token and refreshAt
	token     *oauth2.Token
	refreshAt time.Time
	rangeCap  atomic.Int64 // the largest range start asked for (RangeCap)
}

// Limits of a call.
const (
	maxBodyBytes   = 64 << 20 // a page of 150 offers is ~0.5 MB
	maxErrorText   = 300      // bytes of a non-JSON error body kept in APIError.Message
	maxEarlyExpiry = time.Minute
	// earlyExpiryDivisor: a token is refreshed when less than 1/divisor of its
	// lifetime (at most maxEarlyExpiry) is left.
	earlyExpiryDivisor = 5
)

// Rate-limit headers of the API gateway.
const (
	headerBurstCapacity = "X-Ratelimit-Burst-Capacity-Clientidlimiter"
)

// NewClient checks cfg and returns a Client. It makes no network call.
func NewClient(cfg Config) (*Client, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("francetravail: config: client id is required")
	}
	if cfg.ClientSecret == "" {
		return nil, errors.New("francetravail: config: client secret is required")
	}
	if cfg.APIBaseURL == "" {
		cfg.APIBaseURL = DefaultAPIBaseURL
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = DefaultTokenURL
	}
	base, err := url.Parse(cfg.APIBaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("francetravail: config: api base url %q: want an absolute http(s) URL", cfg.APIBaseURL)
	}
	if tu, err := url.Parse(cfg.TokenURL); err != nil || (tu.Scheme != "http" && tu.Scheme != "https") || tu.Host == "" {
		return nil, fmt.Errorf("francetravail: config: token url %q: want an absolute http(s) URL", cfg.TokenURL)
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = DefaultRateLimit
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.CallTimeout < 0 {
		return nil, fmt.Errorf("francetravail: config: call timeout %v: want > 0", cfg.CallTimeout)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	limit := rate.Limit(cfg.RateLimit)
	if cfg.RateLimit < 0 {
		limit = rate.Inf
	}
	c := &Client{
		cfg:     cfg,
		base:    strings.TrimSuffix(cfg.APIBaseURL, "/"),
		apiPath: strings.TrimSuffix(base.Path, "/"),
		hc:      cfg.HTTPClient,
		log:     cfg.Logger,
		// A burst of 1 spaces calls evenly: the gateway's bucket is never
		// emptied by a burst, whatever its own burst size.
		limiter: rate.NewLimiter(limit, 1),
		cc: clientcredentials.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			TokenURL:     cfg.TokenURL,
			Scopes:       Scopes,
			AuthStyle:    oauth2.AuthStyleInParams, // the spec sends id and secret in the body
		},
		tokenLock: make(chan struct{}, 1),
	}
	c.rangeCap.Store(MaxRangeStart)
	return c, nil
}

// CloseIdleConnections closes the idle connections of the client's HTTP
// client; useful when Config.HTTPClient was nil and the Client is dropped.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// RateLimit returns the calls per second the client allows itself now
// (math.MaxFloat64 for no limit): Config.RateLimit, or less if the API
// announced a lower burst capacity.
func (c *Client) RateLimit() float64 { return float64(c.limiter.Limit()) }

// tokenFor returns a valid access token, fetching one when none is cached or
// the cached one is about to expire.
func (c *Client) tokenFor(ctx context.Context) (string, error) {
	if tok := c.cachedToken(); tok != "" {
		return tok, nil
	}
	select {
	case c.tokenLock <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-c.tokenLock }()
	if tok := c.cachedToken(); tok != "" { // fetched while we waited
		return tok, nil
	}
	cctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, c.hc), c.cfg.CallTimeout)
	defer cancel()
	start := time.Now()
	t, err := c.cc.Token(cctx)
	if err != nil {
		return "", newTokenError(err, ctx)
	}
	lifetime := time.Until(t.Expiry)
	early := min(lifetime/earlyExpiryDivisor, maxEarlyExpiry)
	c.mu.Lock()
	c.token = t
	c.refreshAt = t.Expiry.Add(-early)
	if t.Expiry.IsZero() { // no expires_in: keep it until a 401
		c.refreshAt = time.Time{}
	}
	c.mu.Unlock()
	c.log.LogAttrs(ctx, slog.LevelDebug, "francetravail: token fetched",
		slog.Duration("lifetime", lifetime.Round(time.Second)), slog.Duration("took", time.Since(start)))
	return t.AccessToken, nil
}

func (c *Client) cachedToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == nil || (!c.refreshAt.IsZero() && !time.Now().Before(c.refreshAt)) {
		return ""
	}
	return c.token.AccessToken
}

// dropToken forgets the cached token if it is still tok (another call may
// have replaced it already).
func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != nil && c.token.AccessToken == tok {
		c.token = nil
	}
}

// TokenError is a failure to obtain an access token. Its message carries the
// endpoint's error code and description, never the credentials.
type TokenError struct {
	// Status is the HTTP status of the token endpoint, 0 for a network
	// error.
	Status int
	// Code is the OAuth2 "error": invalid_client, invalid_scope, …
	Code string
	// Description is the OAuth2 "error_description".
	Description string
	err         error
}

func (e *TokenError) Error() string {
	switch {
	case e.Code != "":
		return fmt.Sprintf("francetravail: token: %d %s: %s", e.Status, e.Code, e.Description)
	case e.Status != 0:
		return fmt.Sprintf("francetravail: token: %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("francetravail: token: %v", e.err)
}

// Unwrap returns the cause; a refusal (4xx) also matches ErrAuth.
func (e *TokenError) Unwrap() []error {
	if e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests {
		return []error{ErrAuth, e.err}
	}
	return []error{e.err}
}

// Retryable: 429, 5xx and network failures may pass; refusals do not.
func (e *TokenError) Retryable() bool {
	if e.Status != 0 {
		return retry.IsRetryableStatus(e.Status)
	}
	return !errors.Is(e.err, context.Canceled)
}

func newTokenError(err error, ctx context.Context) error {
	if ctx.Err() != nil {
		return fmt.Errorf("francetravail: token: %w", ctx.Err())
	}
	te := &TokenError{err: err}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		te.Code, te.Description = re.ErrorCode, re.ErrorDescription
		if re.Response != nil {
			te.Status = re.Response.StatusCode
		}
		te.err = errors.New("token endpoint refused the request") // RetrieveError's text may quote the body
	} else {
		var ue *url.Error
		if errors.As(err, &ue) {
			te.err = ue.Err // the URL is known; keep the cause
		}
	}
	return te
}

// response is an API answer that is not an error.
type response struct {
	status int
	header http.Header
	body   []byte
}

// callHooks are what a caller of get may add to a call; nil adds nothing.
type callHooks struct {
	// onAnswer, if not nil, is called for every HTTP answer received
	// (retries included).
	onAnswer func()
}

// get calls GET base+path?query with retries, and returns a 2xx answer or an
// error: an *APIError for an answer, the cause otherwise, wrapped with
// retry.ErrExhausted when retries ran out.
func (c *Client) get(ctx context.Context, path string, query url.Values, h *callHooks) (*response, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var out *response
	reauthed := false
	op := func(ctx context.Context) error {
		for {
			resp, tok, err := c.attempt(ctx, path, u, h)
			if err != nil {
				return err
			}
			if resp.status == http.StatusUnauthorized && !reauthed {
				// One re-authentication per call: the token may have
				// expired early or been revoked.
				reauthed = true
				c.dropToken(tok)
				c.log.LogAttrs(ctx, slog.LevelInfo, "francetravail: 401, re-authenticating", slog.String("path", c.apiPath+path))
				continue
			}
			if resp.status >= 200 && resp.status < 300 {
				out = resp
				return nil
			}
			return c.apiError(path, resp)
		}
	}
	notify := func(err error, wait time.Duration) {
		c.log.LogAttrs(ctx, slog.LevelInfo, "francetravail: retrying", slog.String("path", c.apiPath+path),
			slog.String("error", err.Error()), slog.Duration("wait", wait))
	}
	if err := retry.Do(ctx, c.cfg.Retry, op, notify); err != nil {
		return nil, err
	}
	return out, nil
}

// attempt makes one HTTP call after the rate limiter allows it.
func (c *Client) attempt(ctx context.Context, path, u string, h *callHooks) (*response, string, error) {
	if err := c.waitLimiter(ctx); err != nil {
		return nil, "", fmt.Errorf("francetravail: GET %s: rate limiter: %w", c.apiPath+path, err)
	}
	tok, err := c.tokenFor(ctx)
	if err != nil {
		return nil, "", err
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", fmt.Errorf("francetravail: GET %s: %w", c.apiPath+path, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.observe(ctx, path, nil, time.Since(start))
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL: the path is in our message
		}
		return nil, "", fmt.Errorf("francetravail: GET %s: %w", c.apiPath+path, err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp.Body, resp.ContentLength)
	c.observe(ctx, path, resp, time.Since(start))
	if h != nil && h.onAnswer != nil {
		h.onAnswer()
	}
	if err != nil {
		return nil, "", fmt.Errorf("francetravail: GET %s: %d, reading body: %w", c.apiPath+path, resp.StatusCode, err)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		c.observeLimits(resp.Header)
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "francetravail: call", slog.String("path", c.apiPath+path),
		slog.Int("status", resp.StatusCode), slog.Int("bytes", len(body)), slog.Duration("took", time.Since(start)))
	return &response{status: resp.StatusCode, header: resp.Header, body: body}, tok, nil
}

// observe tells the Limiter, when it is an Observer, how a call to path
// went; resp is nil when no answer came.
func (c *Client) observe(ctx context.Context, path string, resp *http.Response, took time.Duration) {
	o, ok := c.cfg.Limiter.(Observer)
	if !ok {
		return
	}
	route := "GET " + path
	switch {
	case strings.HasPrefix(path, "/offres/search"):
	case strings.HasPrefix(path, "/offres/"):
		route = "GET /offres/{id}"
	case strings.HasPrefix(path, "/referentiel/"):
		route = "GET /referentiel/{name}"
	}
	status, retryAfter := 0, time.Duration(0)
	if resp != nil {
		status = resp.StatusCode
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
			retryAfter = retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
	}
	o.Observe(ctx, route, status, took, retryAfter)
}

// readBody reads a body of at most maxBodyBytes into a buffer of its own,
// of the announced size when there is one (size <= 0: unknown). The body
// is never reused: the offers of a page share its memory, and a caller may
// keep them (a fetcher publishing asynchronously publishes an offer again
// when NATS failed it, long after the next page was read).
func readBody(r io.Reader, size int64) ([]byte, error) {
	r = io.LimitReader(r, maxBodyBytes)
	if size <= 0 || size > maxBodyBytes {
		return io.ReadAll(r)
	}
	b := make([]byte, size)
	n, err := io.ReadFull(r, b)
	return b[:n], err
}

// observeLimits lowers the rate limit to the burst capacity the gateway
// announces in a 429, when that is lower. It never raises it. (Lowering on
// every answer would be tempting, but the capacity is the size of the
// gateway's bucket, not a pace to keep: only a 429 proves the pace too fast.)
func (c *Client) observeLimits(h http.Header) {
	v := h.Get(headerBurstCapacity)
	if v == "" {
		return
	}
	capacity, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || capacity <= 0 {
		return
	}
	if rate.Limit(capacity) < c.limiter.Limit() {
		c.limiter.SetLimit(rate.Limit(capacity))
		c.log.Info("francetravail: rate limit lowered to the announced burst capacity", slog.Float64("calls_per_second", capacity))
	}
}

// apiError builds the typed error of a non-2xx answer.
func (c *Client) apiError(path string, r *response) *APIError {
	e := &APIError{Method: http.MethodGet, Path: c.apiPath + path, Status: r.status}
	if r.status == http.StatusTooManyRequests || r.status == http.StatusServiceUnavailable {
		e.RetryAfterDelay = retry.ParseRetryAfter(r.header.Get("Retry-After"), time.Now())
	}
	var body struct {
		Message    string          `json:"message"`
		CodeErreur json.RawMessage `json:"codeErreur"`
	}
	if json.Unmarshal(r.body, &body) == nil {
		e.Message = body.Message
		var s string
		if json.Unmarshal(body.CodeErreur, &s) == nil {
			e.Code = s
		} else if len(body.CodeErreur) > 0 {
			e.Code = string(body.CodeErreur)
		}
		return e
	}
	e.Message = errorText(r.body)
	return e
}

// errorText shortens a non-JSON body (a gateway page) to something loggable:
// its <title> when it has one, else its first bytes.
func errorText(b []byte) string {
	s := string(b)
	if i := strings.Index(strings.ToLower(s), "<title>"); i >= 0 {
		rest := s[i+len("<title>"):]
		if j := strings.Index(strings.ToLower(rest), "</title>"); j >= 0 {
			return strings.TrimSpace(rest[:j])
		}
	}
	s = strings.TrimSpace(s)
	if len(s) > maxErrorText {
		s = s[:maxErrorText] + "…"
	}
	return strings.ToValidUTF8(s, "")
}

// Offer fetches one offer by id. An unknown id returns an error wrapping
// ErrNotFound (the API answers 204); a malformed id an *APIError with status 400.
func (c *Client) Offer(ctx context.Context, id string) (Offer, error) {
	if id == "" {
		return nil, fmt.Errorf("francetravail: offer: %w", &ValidationError{Field: "id", Value: id, Rule: "identifiant requis"})
	}
	resp, err := c.get(ctx, "/offres/"+url.PathEscape(id), nil, nil)
	if err != nil {
		return nil, err
	}
	if resp.status == http.StatusNoContent || len(bytes.TrimSpace(resp.body)) == 0 {
		return nil, fmt.Errorf("francetravail: offer %q: %w", id, ErrNotFound)
	}
	return Offer(resp.body), nil
}

// Referential fetches the referential name (one of ReferentialNames).
func (c *Client) Referential(ctx context.Context, name string) ([]ReferentialEntry, error) {
	if !slices.Contains(ReferentialNames(), name) {
		return nil, fmt.Errorf("francetravail: referential: %w",
			&ValidationError{Field: "referentiel", Value: name, Rule: "référentiel inconnu, attendu l'un de " + strings.Join(ReferentialNames(), ", ")})
	}
	resp, err := c.get(ctx, "/referentiel/"+name, nil, nil)
	if err != nil {
		return nil, err
	}
	var out []ReferentialEntry
	if err := json.Unmarshal(resp.body, &out); err != nil {
		return nil, fmt.Errorf("francetravail: referential %s: decoding: %w", name, err)
	}
	return out, nil
}
