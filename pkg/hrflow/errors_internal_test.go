package hrflow

import (
	"errors"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		status  int
		message string
		want    error
	}{
		{400, "Invalid parameters. Unable to find object: job", ErrNotFound},
		{400, "Invalid parameters. Unable to find object: job.", ErrNotFound},
		{400, "invalid parameters. unable to find object : Job", ErrNotFound},
		{400, "INVALID PARAMETERS.  UNABLE TO FIND OBJECT:  JOB", ErrNotFound},
		{400, "Unable to find object", ErrNotFound},
		{400, "Job not found", ErrNotFound},
		{404, "Job not found.", ErrNotFound},
		{400, "Invalid parameters. Job does not exist", ErrNotFound},
		{400, "Invalid parameters. Unable to find object: board", ErrBoardNotFound},
		{400, "Unable to find object: Board.", ErrBoardNotFound},
		{400, "Board not found", ErrBoardNotFound},
		{400, "Invalid parameters. Reference already exists: 204XKQA", ErrReferenceExists},
		{400, "reference already exist", ErrReferenceExists},
		{409, "Duplicate reference 204XKQA", ErrReferenceExists},
		{422, "Invalid parameters. Reference already exists: X", ErrReferenceExists},
		{401, "Unauthorized. Invalid secret key: ask_x", ErrUnauthorized},
		{403, "Forbidden", ErrUnauthorized},
		{402, "Over quota", ErrOverQuota},
		{400, "Invalid parameters. name: Missing data for required field.", nil},
		{400, "Invalid parameters. reference: Not a valid string.", nil},
		{404, "non-JSON answer (text/html): 404 Not Found", ErrNotFound},
		{500, "Unable to find object: job", nil},
		{409, "Conflict", nil},
		{200, "Job details", nil},
	}
	for _, tt := range tests {
		if got := classify(tt.status, tt.message); got != tt.want {
			t.Errorf("classify(%d, %q) = %v, want %v", tt.status, tt.message, got, tt.want)
		}
	}
}

func TestAPIErrorMatchesOneSentinel(t *testing.T) {
	e := &APIError{Status: 400, Message: "Unable to find object: job", kind: classify(400, "Unable to find object: job")}
	for _, s := range []error{ErrBoardNotFound, ErrReferenceExists, ErrUnauthorized, ErrOverQuota} {
		if errors.Is(e, s) {
			t.Errorf("a not-found error matches %v", s)
		}
	}
	if !errors.Is(e, ErrNotFound) || e.Retryable() {
		t.Errorf("not-found error: Is(ErrNotFound) %t, Retryable %t", errors.Is(e, ErrNotFound), e.Retryable())
	}
	for _, s := range []int{429, 500, 502, 503, 504} {
		if !(&APIError{Status: s}).Retryable() {
			t.Errorf("status %d not retryable", s)
		}
	}
}

func TestNonJSONMessage(t *testing.T) {
	tests := []struct{ ct, body, want string }{
		{"text/html", "<html><head><title>502 Bad Gateway</title></head><body>x</body></html>", "non-JSON answer (text/html): 502 Bad Gateway"},
		{"text/plain", "upstream\n  connect error", "non-JSON answer (text/plain): upstream connect error"},
		{"", "", "non-JSON answer (no Content-Type), empty body"},
	}
	for _, tt := range tests {
		if got := nonJSONMessage(tt.ct, []byte(tt.body)); got != tt.want {
			t.Errorf("nonJSONMessage(%q, %q) = %q, want %q", tt.ct, tt.body, got, tt.want)
		}
	}
}

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                true,
		"application/json; charset=utf-8": true,
		"Application/JSON;charset=UTF-8":  true,
		"application/problem+json":        true,
		"text/html":                       false,
		"text/json":                       false,
		"":                                false,
	} {
		if got := isJSON(ct); got != want {
			t.Errorf("isJSON(%q) = %t, want %t", ct, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	c := &Client{secret: "ask_0123456789abcdef0123456789abcdef"}
	tests := []struct{ in, want string }{
		{"Invalid secret key: ask_0123456789abcdef0123456789abcdef", "Invalid secret key: ask_[REDACTED]"},
		{"key askr_deadbeef and askw_cafe", "key askr_[REDACTED] and askw_[REDACTED]"},
		{"task_list is fine", "task_list is fine"},
	}
	for _, tt := range tests {
		if got := c.redact(tt.in); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
