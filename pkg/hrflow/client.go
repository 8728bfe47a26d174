package hrflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/pulljobs/pulljobs/pkg/retry"
)

// DefaultBaseURL is the production API, version included.
const DefaultBaseURL = "https://api.hrflow.ai/v1"

// DefaultCallTimeout bounds one HTTP attempt when Config.CallTimeout is zero.
const DefaultCallTimeout = 30 * time.Second

// Limiter paces the calls to the API. *rate.Limiter (golang.org/x/time/rate)
// satisfies it; the pipeline plugs in one shared by all replicas. Wait is
// called before every HTTP attempt, retries included, and must return early
// with an error when ctx ends.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Config configures a Client. Formatting a Config (fmt, slog) never shows
// APISecret.
type Config struct {
	// APISecret is sent as X-API-KEY. Required.
	APISecret string
	// APIUser is sent as X-USER-EMAIL. Required.
	APIUser string
	// BaseURL is the API root, version included; default DefaultBaseURL.
	// hrflowtest.BaseURL gives the emulator's.
	BaseURL string
	// Limiter, when not nil, is waited before every HTTP attempt.
	Limiter Limiter
	// HTTPClient sends the requests; nil means a client of its own.
	HTTPClient *http.Client
	// CallTimeout bounds each HTTP attempt, from sending the request to
	// reading the whole answer; default DefaultCallTimeout.
	CallTimeout time.Duration
	// Retry says how often and how long a failing call is tried again.
	Retry retry.Policy
	// Logger receives retries and warnings; nil discards them.
	Logger *slog.Logger
}

// Client calls the HrFlow.ai API. It is safe for concurrent use.
type Client struct {
	cfg Config
}

// NewClient validates cfg and returns a client; it makes no network call.
func NewClient(cfg Config) (*Client, error) {
	return nil, errors.New("hrflow: not implemented")
}

// ErrNotFound: the job asked for does not exist on the board.
var ErrNotFound = errors.New("hrflow: job not found")

// ErrBoardNotFound: the board does not exist or the key cannot see it. It
// does not match ErrNotFound.
var ErrBoardNotFound = errors.New("hrflow: board not found")

// ErrReferenceExists: a job with that reference is already on the board.
var ErrReferenceExists = errors.New("hrflow: reference already exists")

// ErrUnauthorized: the secret, the user or the key's permissions are
// refused (401 or 403).
var ErrUnauthorized = errors.New("hrflow: unauthorized")

// ErrOverQuota: the account is over its quota (402).
var ErrOverQuota = errors.New("hrflow: over quota")

// APIError is an answer of the API that is not a success.
type APIError struct {
	Status          int
	Code            int
	Message         string
	RetryAfterDelay time.Duration
	Method, Path    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %d: %s", e.Method, e.Path, e.Status, e.Message)
}

// Retryable reports whether the status is worth another attempt.
func (e *APIError) Retryable() bool { return retry.IsRetryableStatus(e.Status) }

// RetryAfter returns the server's Retry-After.
func (e *APIError) RetryAfter() time.Duration { return e.RetryAfterDelay }

// JobRef is a job as listed by Jobs.
type JobRef struct {
	Key, Reference       string
	CreatedAt, UpdatedAt string
	ArchivedAt           string // "" when not archived
}

// ListOptions tunes Jobs.
type ListOptions struct {
	Limit           int
	ExcludeArchived bool
}

// TextParsing is the parsing of one text.
type TextParsing struct {
	Text     string   `json:"text"`
	Entities []Entity `json:"entities"`
}

// Entity is a span of a parsed text.
type Entity struct {
	Start int    `json:"start"`
	End   int    `json:"end"`
	Label string `json:"label"`
}

// UpsertOptions are the target parameters that steer Upsert.
type UpsertOptions struct {
	UpdateContent, EnrichWithParsing, DryRun bool
}

// Action is what Upsert did (or would do) to the board.
type Action string

// Actions of Upsert.
const (
	ActionCreated    Action = "created"
	ActionUpdated    Action = "updated"
	ActionUnarchived Action = "unarchived"
	ActionSkipped    Action = "skipped"
)

// UpsertResult is the outcome of Upsert.
type UpsertResult struct {
	Action        Action
	Key           string
	ParsingFailed bool
	ParsingError  string
	Planned       bool
}
