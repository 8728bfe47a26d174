// Package natsembed runs a NATS server with JetStream inside the calling
// process: the default of the one-machine product and of the tests. Other
// processes can connect too when the server listens on a port: beyond
// loopback, only with credentials, which every client gives.
package natsembed

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Defaults of Options. The server's own defaults claim 75 % of the RAM and all
// free disk; a pipeline of job offers needs far less.
const (
	DefaultMaxMemory = 64 << 20
	DefaultMaxStore  = 8 << 30
	readyTimeout     = 10 * time.Second
)

// Options configures an embedded server.
type Options struct {
	// StoreDir is where JetStream keeps its data; required, so that data never
	// lands in a directory shared under the system's temp dir.
	StoreDir string
	// Host and Port to listen on for other processes. Port 0 listens nowhere
	// (in-process connections only); -1 picks a free port.
	Host string
	Port int
	// MaxMemory and MaxStore bound JetStream's memory and file storage, in
	// bytes; 0 means the defaults above.
	MaxMemory, MaxStore int64
	// Logger receives the server's warnings and errors; nil discards them.
	Logger *slog.Logger
	// User and Password, or Token, are what every client must give, this
	// process's own included (Connect gives them). Neither: any client may
	// connect, which Start refuses on an address beyond loopback.
	User, Password, Token string
}

// ErrUnauthenticated is Start's refusal to listen beyond loopback without
// credentials: whoever reached the address could read and delete every
// run.
var ErrUnauthenticated = errors.New("embedded nats: listening beyond loopback needs credentials (a user and password, or a token), or anyone who reaches it can read and delete every run")

// Loopback reports whether host, an address to listen on, is of this
// machine only: "" (Start's default), localhost, or a loopback IP.
func Loopback(host string) bool {
	if host == "" || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Server is a running embedded NATS server.
type Server struct {
	ns   *server.Server
	auth []nats.Option // how its own clients log in
}

// Start starts a server and waits until it accepts connections. It
// refuses with ErrUnauthenticated to listen beyond loopback without
// credentials, and with an error to take both a password and a token.
func Start(opts Options) (*Server, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("embedded nats: a store directory is required")
	}
	if (opts.User != "" || opts.Password != "") && opts.Token != "" {
		return nil, errors.New("embedded nats: give a user and password, or a token, not both")
	}
	if (opts.User == "") != (opts.Password == "") {
		return nil, errors.New("embedded nats: a user needs a password, and a password a user")
	}
	authed := opts.User != "" || opts.Token != ""
	if opts.Port != 0 && !Loopback(opts.Host) && !authed {
		return nil, ErrUnauthenticated
	}
	dir, err := filepath.Abs(opts.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: store dir: %w", err)
	}
	so := &server.Options{
		ServerName:         "pulljobs",
		JetStream:          true,
		StoreDir:           dir,
		JetStreamMaxMemory: opts.MaxMemory,
		JetStreamMaxStore:  opts.MaxStore,
		Host:               opts.Host,
		Port:               opts.Port,
		DontListen:         opts.Port == 0,
		NoSigs:             true,
		NoLog:              opts.Logger == nil,
		Username:           opts.User,
		Password:           opts.Password,
		Authorization:      opts.Token,
	}
	var auth []nats.Option
	switch {
	case opts.User != "":
		auth = append(auth, nats.UserInfo(opts.User, opts.Password))
	case opts.Token != "":
		auth = append(auth, nats.Token(opts.Token))
	}
	if so.JetStreamMaxMemory == 0 {
		so.JetStreamMaxMemory = DefaultMaxMemory
	}
	if so.JetStreamMaxStore == 0 {
		so.JetStreamMaxStore = DefaultMaxStore
	}
	if so.Host == "" {
		so.Host = "127.0.0.1"
	}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if opts.Logger != nil {
		ns.SetLoggerV2(&logger{opts.Logger}, false, false, false)
	}
	go ns.Start()
	if !ns.ReadyForConnections(readyTimeout) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after %v (store %s)", readyTimeout, dir)
	}
	return &Server{ns: ns, auth: auth}, nil
}

// Connect opens an in-process connection to the server, with its
// credentials; opts add to the defaults (unlimited reconnects).
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append(append([]nats.Option{nats.InProcessServer(s.ns), nats.MaxReconnects(-1)}, s.auth...), opts...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to embedded nats: %w", err)
	}
	return nc, nil
}

// ClientURL is the URL other processes connect to, or "" when the server
// does not listen.
func (s *Server) ClientURL() string {
	if s.ns.Addr() == nil {
		return ""
	}
	return s.ns.ClientURL()
}

// Shutdown stops the server and waits until it is down. Its store stays on
// disk for the next start.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// logger adapts the server's logging to slog, keeping warnings and errors:
// notices are chatter to a user who did not ask for a server.
type logger struct{ l *slog.Logger }

func (l *logger) Noticef(string, ...any) {}
func (l *logger) Debugf(string, ...any)  {}
func (l *logger) Tracef(string, ...any)  {}
func (l *logger) Warnf(format string, v ...any) {
	l.l.Warn(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (l *logger) Errorf(format string, v ...any) {
	l.l.Error(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (l *logger) Fatalf(format string, v ...any) {
	l.l.Error(fmt.Sprintf(format, v...), "component", "nats-server", "fatal", true)
}
