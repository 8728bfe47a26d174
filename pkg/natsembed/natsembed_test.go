package natsembed

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartRequiresStoreDir(t *testing.T) {
	if _, err := Start(Options{}); err == nil {
		t.Fatal("Start without a store dir: err = nil, want an error")
	}
}

// TestStorePersists checks what the one-machine product relies on: a message
// stored before a restart is there after it.
func TestStorePersists(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	put := func(t *testing.T, s *Server) jetstream.KeyValue {
		t.Helper()
		nc, err := s.Connect()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b", Storage: jetstream.FileStorage})
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
	s, err := Start(Options{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ClientURL(); got != "" {
		t.Errorf("ClientURL() = %q without a port, want \"\"", got)
	}
	if _, err := put(t, s).Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()

	s, err = Start(Options{StoreDir: dir, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	e, err := put(t, s).Get(ctx, "k")
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if string(e.Value()) != "v" {
		t.Errorf("value = %q, want v", e.Value())
	}
	// With a port, another process could connect.
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("connect to %s: %v", s.ClientURL(), err)
	}
	nc.Close()
}

// TestListenBeyondLoopbackNeedsCredentials checks what Start refuses
// before it listens: an address beyond loopback without credentials, and
// credentials that do not go together.
func TestListenBeyondLoopbackNeedsCredentials(t *testing.T) {
	tests := []struct {
		opts    Options
		refused bool
		err     error // nil: any error
	}{
		{Options{Host: "0.0.0.0", Port: -1}, true, ErrUnauthenticated},
		{Options{Host: "::", Port: -1}, true, ErrUnauthenticated},
		{Options{Host: "192.0.2.7", Port: 4222}, true, ErrUnauthenticated},
		{Options{Host: "nats.example.com", Port: 4222}, true, ErrUnauthenticated},
		{Options{Host: "0.0.0.0", Port: 4222, User: "pulljobs"}, true, nil},
		{Options{Host: "127.0.0.1", Port: -1, Password: "pw"}, true, nil},
		{Options{Host: "127.0.0.1", Port: -1, User: "pulljobs", Password: "pw", Token: "tok"}, true, nil},
		{Options{Host: "127.0.0.1", Port: -1}, false, nil},
		{Options{Host: "localhost", Port: -1}, false, nil},
		{Options{Host: "0.0.0.0"}, false, nil}, // port 0: it listens nowhere
	}
	for _, tt := range tests {
		tt.opts.StoreDir = t.TempDir()
		s, err := Start(tt.opts)
		if err == nil {
			s.Shutdown()
		}
		switch {
		case tt.refused && err == nil:
			t.Errorf("Start(%+v): err = nil, want a refusal", tt.opts)
		case !tt.refused && err != nil:
			t.Errorf("Start(%+v): %v, want it running", tt.opts, err)
		case tt.err != nil && !errors.Is(err, tt.err):
			t.Errorf("Start(%+v): %v, want %v", tt.opts, err, tt.err)
		}
	}
}

// TestCredentialsRequired starts a server with each kind of credentials:
// a client without them is refused, one with them connects, and the
// server's own in-process connections log in by themselves.
func TestCredentialsRequired(t *testing.T) {
	for _, tt := range []struct {
		opts Options
		good nats.Option
	}{
		{Options{User: "pulljobs", Password: "pw-8Fq"}, nats.UserInfo("pulljobs", "pw-8Fq")},
		{Options{Token: "tok-3Kd"}, nats.Token("tok-3Kd")},
	} {
		tt.opts.StoreDir, tt.opts.Port = t.TempDir(), -1
		s, err := Start(tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nats.Connect(s.ClientURL()); err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
			t.Errorf("a client without credentials: %v, want an authorization violation", err)
		}
		nc, err := nats.Connect(s.ClientURL(), tt.good)
		if err != nil {
			t.Errorf("a client with the credentials: %v", err)
		} else {
			nc.Close()
		}
		in, err := s.Connect()
		if err != nil {
			t.Errorf("in-process: %v", err)
		} else {
			in.Close()
		}
		s.Shutdown()
	}
}
