package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"
)

type statusError struct {
	status     int
	retryAfter time.Duration
}

func (e *statusError) Error() string             { return fmt.Sprintf("status %d", e.status) }
func (e *statusError) Retryable() bool           { return IsRetryableStatus(e.status) }
func (e *statusError) RetryAfter() time.Duration { return e.retryAfter }

var fast = Policy{InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond}

func TestDo(t *testing.T) {
	permanent := &statusError{status: http.StatusBadRequest}
	tests := []struct {
		name      string
		errs      []error // returned by successive attempts; nil ends
		policy    Policy
		wantCalls int
		wantErr   error
	}{
		{"success at once", []error{nil}, fast, 1, nil},
		{"5xx then success", []error{&statusError{status: 503}, &statusError{status: 502}, nil}, fast, 3, nil},
		{"reset then success", []error{fmt.Errorf("read: %w", syscall.ECONNRESET), nil}, fast, 2, nil},
		{"cut body then success", []error{io.ErrUnexpectedEOF, nil}, fast, 2, nil},
		{"permanent 4xx", []error{permanent}, fast, 1, permanent},
		{"unknown error is permanent", []error{errors.New("bad json")}, fast, 1, nil},
		{"attempts exhausted", []error{&statusError{status: 500}, &statusError{status: 500}, &statusError{status: 500}},
			Policy{InitialInterval: time.Millisecond, MaxAttempts: 3}, 3, ErrExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := Do(context.Background(), tt.policy, func(context.Context) error {
				e := tt.errs[calls]
				calls++
				return e
			}, nil)
			if calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if last := tt.errs[len(tt.errs)-1]; last == nil && err != nil {
				t.Errorf("err = %v, want nil", err)
			}
		})
	}
}

func TestDoHonoursRetryAfter(t *testing.T) {
	var waits []time.Duration
	calls := 0
	err := Do(context.Background(), fast, func(context.Context) error {
		calls++
		if calls == 1 {
			return &statusError{status: http.StatusTooManyRequests, retryAfter: 30 * time.Millisecond}
		}
		return nil
	}, func(_ error, wait time.Duration) { waits = append(waits, wait) })
	if err != nil {
		t.Fatal(err)
	}
	if len(waits) != 1 || waits[0] != 30*time.Millisecond {
		t.Errorf("waits = %v, want [30ms]", waits)
	}
}

func TestDoStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Do(ctx, Policy{InitialInterval: time.Hour}, func(context.Context) error {
		calls++
		cancel()
		return &statusError{status: 503}
	}, nil)
	if calls != 1 {
		t.Errorf("calls = %d, want 1", calls)
	}
	if err == nil {
		t.Fatal("err = nil, want the last error")
	}
}

func TestDoStopsDuringWait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := Do(ctx, Policy{InitialInterval: time.Hour, MaxInterval: time.Hour, MaxElapsed: -1}, func(context.Context) error {
		return &statusError{status: 503}
	}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
}

func TestIsRetryableStatus(t *testing.T) {
	for status, want := range map[int]bool{
		200: false, 400: false, 401: false, 402: false, 404: false, 408: true,
		429: true, 500: true, 501: false, 502: true, 503: true, 504: true, 505: false,
	} {
		if got := IsRetryableStatus(status); got != want {
			t.Errorf("IsRetryableStatus(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"2", 2 * time.Second},
		{"0.5", 500 * time.Millisecond},
		{"-1", 0},
		{"soon", 0},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestIsRetryable covers the transport failures a retry may cure, however
// the transport wraps them, and those it cannot.
func TestIsRetryable(t *testing.T) {
	write := &net.OpError{Op: "write", Net: "tcp", Err: &os.SyscallError{Syscall: "write", Err: syscall.ECONNRESET}}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"a reset while the body is written", &url.Error{Op: "Post", URL: "http://h/v1/job/indexing", Err: &net.OpError{Op: "readfrom", Net: "tcp", Err: write}}, true},
		{"a closed connection", fmt.Errorf("post: %w", net.ErrClosed), true},
		{"a broken pipe", &net.OpError{Op: "write", Err: syscall.EPIPE}, true},
		{"an answer cut short", fmt.Errorf("read answer: %w", io.ErrUnexpectedEOF), true},
		{"a host that does not exist", &url.Error{Op: "Get", Err: &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "api.invalid", IsNotFound: true}}}, false},
		{"a permanent status", &statusError{status: http.StatusBadRequest}, false},
		{"cancelled", context.Canceled, false},
		{"anything else", errors.New("decode job: answer without a key"), false},
	}
	for _, tt := range tests {
		if got := IsRetryable(tt.err); got != tt.want {
			t.Errorf("%s: IsRetryable(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
