package telemetry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
)

var (
	stageKey   = attribute.Key("stage")
	outcomeKey = attribute.Key("outcome")
)

type recorded struct {
	code int
	body string
}

func httptestRecorder(h http.Handler, path string) recorded {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return recorded{rec.Code, rec.Body.String()}
}

// get fetches url over the network and returns its status and body.
func get(t *testing.T, url string) recorded {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return recorded{resp.StatusCode, string(b)}
}

// TestServer serves the endpoints on a real loopback port, with a handler
// mounted at "/" beside them, and stops with its context.
func TestServer(t *testing.T) {
	tel, err := start(t, Options{ServiceName: "test", Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Listen("127.0.0.1:0", tel.MetricsHandler())
	if err != nil {
		t.Fatal(err)
	}
	s.Mux().HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "status page") })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var serveErr error
	wg.Go(func() { serveErr = s.Serve(ctx) })
	base := "http://" + s.Addr().String()

	check := func(path string, code int, body string) {
		t.Helper()
		got := get(t, base+path)
		if got.code != code || !strings.Contains(got.body, body) {
			t.Errorf("GET %s = %d %q, want %d with %q", path, got.code, got.body, code, body)
		}
	}
	check("/healthz", http.StatusOK, "ok")
	check("/readyz", http.StatusServiceUnavailable, "not ready: starting")
	s.SetReady(func() error { return errors.New("NATS RECONNECTING") })
	check("/readyz", http.StatusServiceUnavailable, "not ready: NATS RECONNECTING\n")
	s.SetReady(func() error { return nil })
	check("/readyz", http.StatusOK, "ok")
	check("/metrics", http.StatusOK, "# TYPE go_goroutines gauge")
	check("/", http.StatusOK, "status page")
	check("/nothing-here", http.StatusNotFound, "")

	cancel()
	wg.Wait()
	if serveErr != nil {
		t.Errorf("Serve after its context ended: %v, want nil", serveErr)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the server still answers after Serve returned")
	}
}

func TestListenBusyAddress(t *testing.T) {
	s, err := Listen("127.0.0.1:0", http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	if _, err := Listen(s.Addr().String(), http.NotFoundHandler()); err == nil || !strings.Contains(err.Error(), s.Addr().String()) {
		t.Errorf("Listen on a busy address: %v, want an error naming it", err)
	}
}
