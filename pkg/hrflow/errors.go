package hrflow

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/pulljobs/pulljobs/pkg/retry"
)

// Sentinel errors: an *APIError matches at most one of them with errors.Is.
var (
	// ErrNotFound: the job asked for is not on the board (400 "Unable to
	// find object: job", and variants).
	ErrNotFound = errors.New("hrflow: job not found")
	// ErrBoardNotFound: the board does not exist or the key cannot see it
	// ("Unable to find object: board"). It does not match ErrNotFound: a
	// missing board is a configuration error, not a job to create.
	ErrBoardNotFound = errors.New("hrflow: board not found")
	// ErrReferenceExists: a create was refused because a job with that
	// reference is already on the board.
	ErrReferenceExists = errors.New("hrflow: reference already exists")
	// ErrUnauthorized: the secret or the user is refused, or the key lacks
	// the permission (401 or 403).
	ErrUnauthorized = errors.New("hrflow: unauthorized")
	// ErrOverQuota: the account is over its quota (402).
	ErrOverQuota = errors.New("hrflow: over quota")
)

// APIError is an answer of the API that is not a success, or an answer the
// client cannot read (a gateway's HTML page, malformed JSON). Its text names
// the method, the path, the status and the API's message; it never holds the
// secret, which the client removes from the message.
type APIError struct {
	// Status is the HTTP status (the envelope's code when a 2xx answer
	// carries an error code).
	Status int
	// Code is the envelope's "code", or Status when the answer has none.
	Code int
	// Message is the API's message, or a description of an unreadable answer.
	Message string
	// RetryAfterDelay is the server's Retry-After on a retryable status, 0
	// when absent.
	RetryAfterDelay time.Duration
	// Method and Path are the request's, the path without its query
	// ("/v1/job/indexing").
	Method, Path string

	kind error // the sentinel it matches, or nil
}

// Error names the call, the status and the message.
func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Message)
}

// Is matches the sentinel error the answer stands for.
func (e *APIError) Is(target error) bool { return e.kind != nil && target == e.kind }

// Retryable reports whether the status is worth another attempt: 408, 429
// and 5xx (see retry.IsRetryableStatus).
func (e *APIError) Retryable() bool { return retry.IsRetryableStatus(e.Status) }

// RetryAfter returns the server's Retry-After, 0 when absent.
func (e *APIError) RetryAfter() time.Duration { return e.RetryAfterDelay }

var (
	// spaceRE collapses runs of spaces in a message before classifying it.
	spaceRE = regexp.MustCompile(`\s+`)
	// tagRE matches an HTML tag.
	tagRE = regexp.MustCompile(`<[^>]*>`)
	// secretRE matches anything shaped like an HrFlow secret.
	secretRE = regexp.MustCompile(`\bask[rw]?_[A-Za-z0-9]+`)
)

// classify returns the sentinel error that an error answer stands for, or
// nil. It reads the status and the message, tolerant of the message's case,
// spacing and punctuation, since no source fixes them.
func classify(status int, message string) error {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrUnauthorized
	case http.StatusPaymentRequired:
		return ErrOverQuota
	case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity:
	default:
		return nil
	}
	m := strings.ToLower(spaceRE.ReplaceAllString(message, " "))
	if status != http.StatusNotFound && strings.Contains(m, "reference") &&
		(strings.Contains(m, "exist") || strings.Contains(m, "duplicate") || strings.Contains(m, "already")) {
		return ErrReferenceExists
	}
	if status == http.StatusConflict {
		return nil
	}
	for _, p := range notFoundPhrases {
		i := strings.Index(m, p)
		if i < 0 {
			continue
		}
		if notFoundObject(m, i+len(p)) == "board" {
			return ErrBoardNotFound
		}
		return ErrNotFound
	}
	return nil
}

// notFoundPhrases are the ways a message says that something does not exist.
var notFoundPhrases = []string{"unable to find", "not found", "does not exist", "doesn't exist", "no such", "cannot find", "can't find", "could not find"}

// notFoundObject tells which object a not-found message is about: "board"
// when the words after the phrase (or, failing them, the whole message) name
// a board and not a job; "job" otherwise.
func notFoundObject(m string, after int) string {
	rest := strings.TrimLeft(m[after:], " :")
	rest = strings.TrimPrefix(rest, "object")
	rest = strings.TrimLeft(rest, " :'\"")
	switch {
	case strings.HasPrefix(rest, "board"):
		return "board"
	case strings.HasPrefix(rest, "job"):
		return "job"
	case strings.Contains(m, "board") && !strings.Contains(m, "job"):
		return "board"
	}
	return "job"
}
