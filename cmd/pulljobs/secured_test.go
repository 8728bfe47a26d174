package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pulljobs/pulljobs/pkg/natsembed/natstest"
)

// Roles of deploy/nats/pulljobs-auth.conf, each a user.
const (
	roleFetcher   = "fetcher"
	roleServe     = "serve"
	roleFormatter = "formatter"
	rolePusher    = "pusher"
	roleStatus    = "status"
	roleTrigger   = "trigger"
)

var roles = []string{roleFetcher, roleServe, roleFormatter, rolePusher, roleStatus, roleTrigger}

// roleOf is the role each binary of a test deployment runs as, by the
// name of its process (its log's name: "pusher-2", "fetcher.2",
// "fetcher-second"); "" for the others (nats-server, the sandbox).
func roleOf(process string) string {
	name, _, _ := strings.Cut(process, ".")
	name, _, _ = strings.Cut(name, "-")
	switch name {
	case "fetcher", "formatter", "pusher", "serve":
		return name
	}
	return ""
}

// secured is deploy/nats's configuration as a test runs it: the shipped
// pulljobs-auth.conf beside the server configurations the test writes,
// a fresh password per role, and, for TLS, certificates of a throwaway CA.
// Its servers' logs say which operations they refused, and to whom.
type secured struct {
	dir       string
	passwords map[string]string
	certs     *natstest.Certs // nil: no TLS

	mu   sync.Mutex
	logs []string // the servers' output files, as globs
	// unexpected are the refusals before expectRefusals; nil before it.
	unexpected []string
}

// newSecured copies the shipped permissions into dir and draws the roles'
// passwords. With tls, it makes certificates for loopback too.
func newSecured(t *testing.T, dir string, tls bool) *secured {
	t.Helper()
	s := &secured{dir: dir, passwords: map[string]string{}}
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "nats", "pulljobs-auth.conf"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "pulljobs-auth.conf"), string(b))
	for _, r := range roles {
		var p [24]byte
		_, _ = rand.Read(p[:])
		s.passwords[r] = base64.StdEncoding.EncodeToString(p[:])
	}
	if tls {
		c := natstest.NewCerts(t, dir)
		s.certs = &c
	}
	return s
}

// serverEnv is the environment of a NATS server: every role's password.
func (s *secured) serverEnv() []string {
	var env []string
	for _, r := range roles {
		env = append(env, fmt.Sprintf("PULLJOBS_NATS_%s_PASSWORD=%s", strings.ToUpper(r), s.passwords[r]))
	}
	return env
}

// as is the environment of a process connecting as role: its user and
// password only, and the CA to trust under TLS; none for "".
func (s *secured) as(role string) []string {
	if role == "" {
		return nil
	}
	env := []string{"NATS_USER=" + role, "NATS_PASSWORD=" + s.passwords[role]}
	if s.certs != nil {
		env = append(env, "NATS_CA="+s.certs.CA)
	}
	return env
}

// standalone writes deploy/nats/standalone.conf for the test: its ports,
// its store in dir. It returns the configuration's path.
func (s *secured) standalone(t *testing.T, port, httpPort int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "nats", "standalone.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.ReplaceAll(string(b), "127.0.0.1:4222", fmt.Sprintf("127.0.0.1:%d", port))
	conf = strings.ReplaceAll(conf, "127.0.0.1:8222", fmt.Sprintf("127.0.0.1:%d", httpPort))
	conf = regexp.MustCompile(`store_dir: \S+`).ReplaceAllString(conf, "store_dir: "+filepath.Join(s.dir, "nats"))
	path := filepath.Join(s.dir, "standalone.conf")
	writeFile(t, path, conf)
	return path
}

// startServer starts nats-server on conf as name, its output in
// dir/<name>.log, with the roles' passwords in its environment.
func (s *secured) startServer(t *testing.T, bin map[string]string, name, conf string) *exec.Cmd {
	t.Helper()
	s.watchLogs(name)
	return startEnv(t, s.dir, name, s.serverEnv(), bin["nats-server"], "--config", conf)
}

// watchLogs adds the output of the servers named name, dir/<name>.log and
// that of its restarts, dir/<name>.<n>.log, to what violations reads.
func (s *secured) watchLogs(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs = append(s.logs, filepath.Join(s.dir, name+".log"), filepath.Join(s.dir, name+".*.log"))
}

// violation matches what nats-server logs when it refuses an operation to
// a user: `"$G/user:pusher" - Publish Violation - Subject "…"`.
var violation = regexp.MustCompile(`user:(\w+)" - (Publish|Subscription) Violation - Subject "([^"]+)"`)

// violations returns the operations the servers refused, one line each:
// "pusher: Publish Violation on $JS.API.…".
func (s *secured) violations() []string {
	s.mu.Lock()
	patterns := slices.Clone(s.logs)
	s.mu.Unlock()
	var logs, out []string
	for _, p := range patterns {
		m, _ := filepath.Glob(p)
		logs = append(logs, m...)
	}
	for _, path := range logs {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if m := violation.FindStringSubmatch(sc.Text()); m != nil {
				out = append(out, fmt.Sprintf("%s: %s Violation on %s", m[1], m[2], m[3]))
			}
		}
		f.Close()
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// checkNoViolation fails the test with every operation the servers
// refused: a role of deploy/nats/pulljobs-auth.conf misses a permission
// that its binary uses.
func (s *secured) checkNoViolation(t *testing.T) {
	t.Helper()
	if v := s.violations(); len(v) > 0 {
		t.Errorf("NATS refused operations to the roles of deploy/nats/pulljobs-auth.conf; grant the role what it needs, or find why it asks:\n  %s",
			strings.Join(v, "\n  "))
	}
}

// expectRefusals marks the start of the operations the test expects the
// servers to refuse: explainOnFailure leaves them out.
func (s *secured) expectRefusals() {
	v := s.violations()
	s.mu.Lock()
	s.unexpected = append([]string{}, v...)
	s.mu.Unlock()
}

// explainOnFailure logs, when the test fails, the operations the servers
// refused that it did not expect: a missing permission shows as a run that
// stalls.
func (s *secured) explainOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		s.mu.Lock()
		v := s.unexpected
		s.mu.Unlock()
		if v == nil {
			v = s.violations()
		}
		if len(v) > 0 {
			t.Logf("NATS refused these operations to the roles of deploy/nats/pulljobs-auth.conf:\n  %s", strings.Join(v, "\n  "))
		}
	})
}

// client is a test's own connection as a role, which keeps the
// permission violations NATS reports to it.
type client struct {
	nc      *nats.Conn
	mu      sync.Mutex
	refused []string // the subjects NATS refused, in order
}

// connect connects to url as role ("" for no credentials) with the
// default inbox prefix, that of the nats CLI, or inbox when set.
func (s *secured) connect(t *testing.T, url, role, inbox string) (*client, error) {
	t.Helper()
	c := &client{}
	opts := []nats.Option{nats.Name("pulljobs-test-" + role), nats.PermissionErrOnSubscribe(true),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if m := refusedSubject.FindStringSubmatch(err.Error()); m != nil {
				c.mu.Lock()
				c.refused = append(c.refused, m[1])
				c.mu.Unlock()
			}
		})}
	if role != "" {
		opts = append(opts, nats.UserInfo(role, s.passwords[role]))
	}
	if s.certs != nil {
		opts = append(opts, nats.RootCAs(s.certs.CA))
	}
	if inbox != "" {
		opts = append(opts, nats.CustomInboxPrefix(inbox))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	return c, nil
}

// refusedSubject reads the subject out of a permissions violation.
var refusedSubject = regexp.MustCompile(`Permissions Violation for (?:Publish|Subscription) to "([^"]+)"`)

// awaitRefusal waits until NATS refused subject to c: the refusal arrives
// after the operation, asynchronously. Bounded: it fails only on a hang.
func (c *client) awaitRefusal(t *testing.T, subject string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		refused := slices.Contains(c.refused, subject)
		c.mu.Unlock()
		if refused {
			return
		}
		if time.Now().After(deadline) {
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("NATS did not refuse %s within 10s (it refused %q)", subject, c.refused)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
