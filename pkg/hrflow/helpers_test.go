package hrflow_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/retry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const board = hrflowtest.DefaultBoardKey

// testRetry retries fast, so that tests of retries take milliseconds.
var testRetry = retry.Policy{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, MaxAttempts: 4}

// env is a client talking to an emulator served on 127.0.0.1.
type env struct {
	em     *hrflowtest.Emulator
	srv    *httptest.Server
	client *hrflow.Client
	logs   *syncBuffer
}

type envOptions struct {
	emulator  hrflowtest.Config
	wrap      func(http.Handler) http.Handler           // in front of the emulator
	transport func(http.RoundTripper) http.RoundTripper // around the client's transport
	config    func(*hrflow.Config)
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	em, err := hrflowtest.New(o.emulator)
	if err != nil {
		t.Fatalf("hrflowtest.New: %v", err)
	}
	var h http.Handler = em
	if o.wrap != nil {
		h = o.wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tr := http.RoundTripper(http.DefaultTransport.(*http.Transport).Clone())
	base := tr.(*http.Transport)
	t.Cleanup(base.CloseIdleConnections)
	if o.transport != nil {
		tr = o.transport(tr)
	}
	logs := &syncBuffer{}
	cfg := hrflow.Config{
		APISecret:  hrflowtest.DefaultAPISecret,
		APIUser:    hrflowtest.DefaultAPIUser,
		BaseURL:    hrflowtest.BaseURL(srv.URL),
		HTTPClient: &http.Client{Transport: tr},
		Retry:      testRetry,
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if o.config != nil {
		o.config(&cfg)
	}
	c, err := hrflow.NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return &env{em: em, srv: srv, client: c, logs: logs}
}

// syncBuffer is a bytes.Buffer for concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// failFirst answers the first n API requests matching route (any when "")
// with status, contentType and body (and headers), then lets requests
// through.
func failFirst(n int, route string, status int, contentType, body string, header map[string]string) func(http.Handler) http.Handler {
	var seen atomic.Int64
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if (route == "" || routeOf(r) == route) && seen.Add(1) <= int64(n) {
				for k, v := range header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", contentType)
				w.WriteHeader(status)
				io.WriteString(w, body)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func routeOf(r *http.Request) string {
	return r.Method + " " + strings.TrimPrefix(r.URL.Path, hrflowtest.APIPath)
}

// jsonError is an error answer in the API's shape.
func jsonError(code int, message string) string {
	return fmt.Sprintf(`{"code":%d,"message":%q,"data":null,"meta":{}}`, code, message)
}

// resetFirst resets the connection of the first n requests.
func resetFirst(n int) func(http.Handler) http.Handler {
	var seen atomic.Int64
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if seen.Add(1) <= int64(n) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					panic(err)
				}
				conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// withContentType rewrites the Content-Type of every answer.
func withContentType(ct string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(&ctWriter{ResponseWriter: w, ct: ct}, r)
		})
	}
}

type ctWriter struct {
	http.ResponseWriter
	ct string
}

func (w *ctWriter) WriteHeader(status int) {
	w.Header().Set("Content-Type", w.ct)
	w.ResponseWriter.WriteHeader(status)
}

// hook is a RoundTripper that calls before for each request first.
type hook struct {
	next   http.RoundTripper
	before func(*http.Request)
}

func (h hook) RoundTrip(r *http.Request) (*http.Response, error) {
	h.before(r)
	return h.next.RoundTrip(r)
}

// countingLimiter counts its waits.
type countingLimiter struct{ n atomic.Int64 }

func (l *countingLimiter) Wait(ctx context.Context) error {
	l.n.Add(1)
	return ctx.Err()
}

// count returns the requests on route with status (any status when status
// is -1).
func (e *env) count(route string, status int) int64 {
	st := e.em.Stats()
	if status < 0 {
		return st.Total(route)
	}
	return st.Count(route, status)
}

// writes is the number of requests that could have changed the board.
func writes(st emulator.Stats) int64 {
	return st.Total(hrflowtest.RouteCreateJob) + st.Total(hrflowtest.RouteEditJob) +
		st.Total(hrflowtest.RouteArchiveJob) + st.Total(hrflowtest.RouteParseTexts)
}

func job(ref string, fields ...any) hrflow.Job {
	j := hrflow.Job{"reference": ref, "name": "Job " + ref}
	for i := 0; i+1 < len(fields); i += 2 {
		j[fields[i].(string)] = fields[i+1]
	}
	return j
}

// stuckAfter bounds a wait for something that takes milliseconds, far past
// what a loaded machine needs, so that passing it means a hang.
const stuckAfter = time.Minute

// waitFor polls cond until it holds, and fails the test as stuck past
// stuckAfter.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(stuckAfter)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("stuck: still waiting for %s after %v", what, stuckAfter)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
