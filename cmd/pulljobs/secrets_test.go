package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecretsStayOut runs every binary with NATS secrets in its
// environment, each one a marker: --help shows none of them, and neither
// does any output of a process whose credentials the server refuses, nor
// of one given a URL with a password or a malformed nkey seed. The
// refusals name their cause.
func TestSecretsStayOut(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	const (
		password = "pw-marker-Rk2xQ9"
		token    = "tok-marker-Lm7vW3"
		urlPass  = "url-marker-Zc5nB1"
		seed     = "SUAseed-marker-Hy8pD4"
	)
	markers := []string{password, token, urlPass, seed}
	dir := t.TempDir()
	bin := buildBinaries(t, dir)
	sec := newSecured(t, dir, false)
	port := freePort(t)
	sec.startServer(t, bin, "nats", sec.standalone(t, port, freePort(t)))
	waitPort(t, port)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	cfg := sandboxConfig(t, dir, "http://127.0.0.1:1", "http://127.0.0.1:1", "  ack_wait: 5s\n")
	profiles := filepath.Join(dir, "profiles")
	if err := os.Mkdir(profiles, 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(cfg)
	writeFile(t, filepath.Join(profiles, "annecy.yaml"), string(b))
	seedFile := filepath.Join(dir, "bad.nk")
	writeFile(t, seedFile, seed+"\n")

	check := func(t *testing.T, what, out string) {
		t.Helper()
		for _, m := range markers {
			if strings.Contains(out, m) {
				t.Errorf("%s shows a secret (%s):\n%s", what, m, out)
			}
		}
	}
	run := func(env []string, binary string, args ...string) (string, error) {
		cmd := exec.Command(bin[binary], args...)
		cmd.Env = append(sandboxEnv(), env...)
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(90 * time.Second): // bounds a hang: a worker waits for a server that refuses it
			_ = cmd.Process.Kill()
			<-done
			return string(out), fmt.Errorf("%s %v did not exit within 90s", binary, args)
		}
		return string(out), err
	}

	secrets := []string{"NATS_PASSWORD=" + password, "NATS_TOKEN=" + token, "NATS_URL=nats://fetcher:" + urlPass + "@127.0.0.1:1"}
	t.Run("help", func(t *testing.T) {
		for _, argv := range [][]string{
			{"fetcher", "run", "--help"}, {"fetcher", "serve", "--help"}, {"formatter", "--help"}, {"formatter", "format", "--help"},
			{"pusher", "--help"}, {"pulljobs", "run", "--help"}, {"pulljobs", "status", "--help"}, {"pulljobs", "sandbox", "--help"},
		} {
			out, _ := run(secrets, argv[0], argv[1:]...)
			check(t, strings.Join(argv, " "), out)
			if argv[1] != "format" && argv[1] != "sandbox" && !strings.Contains(out, "$NATS_PASSWORD") {
				t.Errorf("%s does not say that the password comes from $NATS_PASSWORD:\n%s", strings.Join(argv, " "), out)
			}
		}
	})
	refused := []string{"NATS_USER=fetcher", "NATS_PASSWORD=" + password}
	t.Run("refused credentials", func(t *testing.T) {
		for _, argv := range [][]string{
			{"fetcher", "run", "--nats", url, "--config", cfg},
			{"fetcher", "serve", "--nats", url, "--profiles", profiles},
			{"formatter", "--nats", url},
			{"pusher", "--nats", url, "--config", cfg},
			{"pulljobs", "run", "--nats", url, "--config", cfg},
			{"pulljobs", "status", "--nats", url},
		} {
			out, err := run(refused, argv[0], argv[1:]...)
			if err == nil || !strings.Contains(out, "Authorization Violation") {
				t.Errorf("%s with a refused password: %v\n%s\nwant a failure naming the authorization violation", strings.Join(argv, " "), err, out)
			}
			check(t, strings.Join(argv[:2], " "), out)
		}
	})
	t.Run("a password in the URL, a token, a malformed seed", func(t *testing.T) {
		for _, c := range []struct {
			env  []string
			want string
		}{
			{[]string{"NATS_URL=nats://fetcher:" + urlPass + "@127.0.0.1:" + fmt.Sprint(port)}, "nats://***@127.0.0.1"},
			{[]string{"NATS_URL=" + url, "NATS_TOKEN=" + token}, "Authorization Violation"},
			{[]string{"NATS_URL=" + url, "NATS_NKEY=" + seedFile}, seedFile},
			{[]string{"NATS_URL=" + url, "NATS_PASSWORD=" + password, "NATS_TOKEN=" + token}, "one way to authenticate"},
		} {
			out, err := run(c.env, "pulljobs", "status")
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("status with %d variables: %v\n%s\nwant a failure saying %q", len(c.env), err, out, c.want)
			}
			check(t, "pulljobs status", out)
		}
	})
}
