package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Server timeouts: probes and scrapes are small requests on a local
// network; a slow client must not hold a connection for long.
const (
	readHeaderTimeout = 5 * time.Second
	idleTimeout       = time.Minute
	// ShutdownTimeout bounds how long Serve waits for requests in flight once
	// its context ends.
	ShutdownTimeout = 5 * time.Second
)

// errStarting is what /readyz says before SetReady is called.
var errStarting = errors.New("starting: NATS not connected or topology not declared yet")

// Server serves a process's health and metrics over HTTP:
//
//   - /metrics: the metrics handler given to Listen;
//   - /healthz: 200 "ok" while the process serves at all;
//   - /readyz: 200 "ok" once SetReady is called and its check passes, 503
//     with a one-line reason otherwise.
//
// Other handlers can be mounted on Mux, before or while it serves.
type Server struct {
	ln    net.Listener
	mux   *http.ServeMux
	ready atomic.Pointer[func() error]
}

// Listen binds addr (host:port; port 0 picks one) at once, so that an
// address in use fails before the process starts working, and returns the
// server, which serves nothing until Serve.
func Listen(addr string, metrics http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := &Server{ln: ln, mux: http.NewServeMux()}
	s.mux.Handle("GET /metrics", metrics)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { answer(w, http.StatusOK, "ok") })
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Mux is the server's handler, on which a caller mounts more handlers,
// such as a status page at "/".
func (s *Server) Mux() *http.ServeMux { return s.mux }

// SetReady makes /readyz answer with check: 200 when it returns nil, 503
// with its error otherwise. check is called on every request and must be
// fast and safe for concurrent use.
func (s *Server) SetReady(check func() error) { s.ready.Store(&check) }

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	err := errStarting
	if check := s.ready.Load(); check != nil {
		err = (*check)()
	}
	if err != nil {
		answer(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
		return
	}
	answer(w, http.StatusOK, "ok")
}

func answer(w http.ResponseWriter, code int, line string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, line)
}

// Serve serves until ctx ends, then stops accepting, waits up to
// ShutdownTimeout for the requests in flight, and returns nil. It returns
// the error that stopped it otherwise. It closes the listener either way,
// and is called once.
func (s *Server) Serve(ctx context.Context) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(s.ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve on %s: %w", s.ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		_ = srv.Close() // the requests still in flight are cut
		err = nil
	}
	return err
}
