package natsembed

import (
	"context"
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
