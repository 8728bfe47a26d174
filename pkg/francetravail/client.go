package francetravail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

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

// Scopes are the OAuth2 scopes the search API needs.
var Scopes = []string{"api_offresdemploiv2", "o2dsoffre"}

// Config configures a Client. ClientID and ClientSecret are required; every
// other field has a default. Config never prints its secret: String,
// GoString, Format and LogValue redact it.
type Config struct {
	ClientID     string
	ClientSecret string
	// APIBaseURL is the API root, without trailing slash; default
	// DefaultAPIBaseURL.
	APIBaseURL string
	// TokenURL is the full token endpoint, realm included; default
	// DefaultTokenURL.
	TokenURL string
	// RateLimit is the most calls per second to the API (token calls
	// included); 0 means DefaultRateLimit, a negative value means unlimited.
	RateLimit float64
	// HTTPClient makes every call, token calls included; nil means a client
	// with sane transport time-outs.
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

// Summary reports one Search.
type Summary struct {
	// Total is the number of matches the API reported for the whole query:
	// the sum over the windows the query was split into.
	Total int `json:"total"`
	// Fetched is the number of distinct offers passed to yield.
	Fetched int `json:"fetched"`
	// Duplicates counts offers received again (same id) and not passed on.
	Duplicates int `json:"duplicates"`
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
	Method string // "GET"
	Path   string // the URL path, without query or credentials
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

// Client calls the Offres d'emploi v2 API. It is safe for concurrent use; it
// starts no goroutine of its own.
type Client struct {
	cfg Config
}

// NewClient checks cfg and returns a Client. It makes no network call.
func NewClient(cfg Config) (*Client, error) {
	return &Client{cfg: cfg}, errors.New("francetravail: not implemented yet")
}

// Search streams every offer matching q, each once (dedupe by id), calling
// yield for each in turn from the calling goroutine; yield's error stops the
// search and is returned wrapped. With q.Range set it fetches exactly that
// range. It never holds more than a page of offers in memory, plus the set of
// ids seen.
func (c *Client) Search(ctx context.Context, q Query, yield func(Offer) error) (Summary, error) {
	return Summary{}, errors.New("francetravail: not implemented yet")
}

// Offer fetches one offer by id; an unknown id returns an error wrapping ErrNotFound.
func (c *Client) Offer(ctx context.Context, id string) (Offer, error) {
	return nil, errors.New("francetravail: not implemented yet")
}

// Referential fetches the referential name (see ReferentialNames).
func (c *Client) Referential(ctx context.Context, name string) ([]ReferentialEntry, error) {
	return nil, errors.New("francetravail: not implemented yet")
}
