package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/natsembed"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a buffer the command's loggers write to while the test
// reads it.
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

func fetcher(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb syncBuffer
	err := run(ctx, args, &out, &errb)
	return cli.ExitCode(err, &errb), out.String(), errb.String()
}

func TestServeHelp(t *testing.T) {
	code, out, _ := fetcher(t, context.Background(), "serve", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, s := range []string{"-nats", "-profiles", "-http", "-wait-board", "-drain-timeout", "-log-format", "-log-level",
		"nats req pulljobs.run.NAME '{}'", `{"run_id": "...", "resumed": false}`, "pulljobs.trigger.NAME", "Nats-Msg-Id",
		"pulljobs.dlq.trigger.NAME", "Pulljobs-Reason", "schedule:", "catch_up", "dry_run", "replay_of", "origin_parameters",
		"SIGHUP", "SIGTERM", "pulljobs.runs.list", "403", "409", "/metrics"} {
		if !strings.Contains(out, s) {
			t.Errorf("fetcher serve --help does not mention %q", s)
		}
	}
}

func TestServeUsageErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "profile.yaml")
	if err := os.WriteFile(file, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"serve"},
		{"serve", "--profiles", file},
		{"serve", "--profiles", filepath.Join(t.TempDir(), "missing")},
		{"serve", "--profiles", t.TempDir(), "--wait-board", "soon"},
		{"serve", "--profiles", t.TempDir(), "extra"},
	} {
		if code, _, errOut := fetcher(t, context.Background(), args...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, errOut)
		}
	}
}

// TestServe serves a directory with a valid and an invalid profile, takes a
// SIGHUP that adds a profile, and stops on its context: exit 0.
func TestServe(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	dir := t.TempDir()
	writeProfile := func(name, origin string) {
		t.Helper()
		yaml := "origin_parameters:\n" + origin + "target_parameters:\n  board_key: 0123456789abcdef0123456789abcdef01234567\n"
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeProfile("annecy", "  client_id: a\n  client_secret: b\n  departement: \"74\"\n")
	writeProfile("typo", "  client_id: a\n  client_secret: b\n  departemnt: \"74\"\n")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	exited := make(chan int, 1)
	go func() {
		err := run(ctx, []string{"serve", "--nats", srv.ClientURL(), "--profiles", dir, "--log-format", "text"}, &out, &errb)
		exited <- cli.ExitCode(err, &errb)
	}()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	refusal := func(profile string) string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			m, err := nc.Request("pulljobs.run."+profile, []byte("{}"), 2*time.Second)
			if err == nil {
				return m.Header.Get("Nats-Service-Error")
			}
			if time.Now().After(deadline) {
				t.Fatalf("no answer on pulljobs.run.%s: %v\n%s", profile, err, errb.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got := refusal("chambery"); !strings.Contains(got, `unknown profile "chambery" (profiles: annecy)`) {
		t.Errorf("before SIGHUP: %q", got)
	}
	logs := errb.String()
	if !strings.Contains(logs, "profile=typo") || !strings.Contains(logs, filepath.Join(dir, "typo.yaml")) || !strings.Contains(logs, "origin_parameters.departemnt") {
		t.Errorf("the invalid profile is not reported with its file and key:\n%s", logs)
	}

	writeProfile("chambery", "  client_id: a\n  client_secret: b\n  departement: \"zz\"\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(refusal("chambery"), "profile chambery is invalid") {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not read the new profile:\n%s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d after a graceful stop, want 0\n%s", code, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}
