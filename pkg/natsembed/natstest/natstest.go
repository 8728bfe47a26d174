// Package natstest gives tests what nats-server's own tests have in
// RunBasicJetStreamServer and checkFor: an embedded JetStream server that
// lives as long as the test, and a bounded wait for what the test made
// happen elsewhere.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/natsembed"
)

// Server starts an embedded JetStream server storing in a directory of the
// test's; it is shut down when the test ends.
func Server(t testing.TB) *natsembed.Server {
	t.Helper()
	s, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start an embedded nats server: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Connect connects to s; the connection closes when the test ends.
func Connect(t testing.TB, s *natsembed.Server) *nats.Conn {
	t.Helper()
	nc, err := s.Connect()
	if err != nil {
		t.Fatalf("connect to the embedded nats server: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream starts a server (see Server) and returns JetStream on a
// connection to it.
func JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(Connect(t, Server(t)))
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}

// poll is the pause between two checks of Eventually.
const poll = 10 * time.Millisecond

// Eventually waits until cond is true, checking it every few milliseconds,
// and fails the test with what (what was awaited) if timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
		}
		time.Sleep(poll)
	}
}
