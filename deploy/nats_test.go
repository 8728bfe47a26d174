package deploy_test

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/pulljobs/pulljobs/pkg/natsembed/natstest"
)

// authFile is the one definition of pulljobs's NATS users and permissions,
// which every NATS configuration of deploy/ includes.
const authFile = "pulljobs-auth.conf"

// natsRoles are the users of authFile, each with its password's variable.
var natsRoles = []string{"fetcher", "serve", "formatter", "pusher", "status", "trigger"}

// passwordVar is the variable of nats-server's environment that holds a
// role's password.
func passwordVar(role string) string { return "PULLJOBS_NATS_" + strings.ToUpper(role) + "_PASSWORD" }

// natsRole is the role a command runs as on NATS: fetcher serve as
// serve, the other binaries as their name.
func natsRole(argv []string) string {
	binary := filepath.Base(argv[0])
	if binary == "fetcher" && len(argv) > 1 && argv[1] == "serve" {
		return "serve"
	}
	return binary
}

// testPassword is the stand-in password of a role in these checks.
func testPassword(role string) string { return "test-password-of-" + role }

// setNATSPasswords puts every role's stand-in password in the environment,
// where nats-server reads them.
func setNATSPasswords(t *testing.T) {
	t.Helper()
	for _, r := range natsRoles {
		t.Setenv(passwordVar(r), testPassword(r))
	}
}

// tlsDir is where the node configurations of deploy/nats find their
// certificates.
const tlsDir = "/etc/pulljobs/nats/tls/"

// shippedNATS copies deploy/nats into a temporary directory, with the
// certificates the node configurations name made for loopback and put
// there: nats-server reads them as it reads the configuration. It returns
// the directory.
func shippedNATS(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	certs := natstest.NewCerts(t, t.TempDir())
	copyFile := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, []byte(strings.ReplaceAll(string(b), tlsDir, filepath.Join(dir, "tls")+"/")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	confs, err := filepath.Glob(filepath.Join(repoRoot, "deploy", "nats", "*.conf"))
	if err != nil || len(confs) == 0 {
		t.Fatalf("deploy/nats: no configuration (%v)", err)
	}
	for _, c := range confs {
		copyFile(c, filepath.Join(dir, filepath.Base(c)))
	}
	if err := os.Mkdir(filepath.Join(dir, "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	copyFile(certs.CA, filepath.Join(dir, "tls", "ca.pem"))
	for i := 1; i <= 3; i++ {
		copyFile(certs.Cert, filepath.Join(dir, "tls", fmt.Sprintf("node-%d.pem", i)))
		copyFile(certs.Key, filepath.Join(dir, "tls", fmt.Sprintf("node-%d-key.pem", i)))
	}
	return dir
}

// includeLine matches an include directive of a NATS configuration.
var includeLine = regexp.MustCompile(`(?m)^\s*include\s+"?([^"\s;]+)`)

// TestNATSConfigsShareOneAuthDefinition checks every NATS configuration
// that deploy/ ships: each includes pulljobs-auth.conf and defines no user
// of its own, and nats-server reads from it one user per role, whose
// password comes from PULLJOBS_NATS_<ROLE>_PASSWORD.
func TestNATSConfigsShareOneAuthDefinition(t *testing.T) {
	setNATSPasswords(t)
	dir := shippedNATS(t)
	configs := map[string]string{filepath.Join(repoRoot, "deploy", "compose", "nats.conf"): filepath.Join(repoRoot, "deploy", "compose", "nats.conf")}
	for _, name := range []string{"standalone.conf", "node-1.conf", "node-2.conf", "node-3.conf"} {
		configs[filepath.Join(repoRoot, "deploy", "nats", name)] = filepath.Join(dir, name)
	}
	for shipped, readable := range configs {
		where := strings.TrimPrefix(shipped, repoRoot+"/")
		b, err := os.ReadFile(shipped)
		if err != nil {
			t.Fatal(err)
		}
		includes := includeLine.FindAllStringSubmatch(string(b), -1)
		if len(includes) != 1 || filepath.Clean(filepath.Join(filepath.Dir(shipped), includes[0][1])) != filepath.Join(repoRoot, "deploy", "nats", authFile) {
			t.Errorf("%s: includes %v, want deploy/nats/%s and nothing else", where, includes, authFile)
		}
		if regexp.MustCompile(`(?m)^\s*(authorization|accounts|users|no_auth_user)\b`).Match(b) {
			t.Errorf("%s: defines users or accounts of its own: %s is their one definition", where, authFile)
		}
		if o := natsOptions(t, where, []string{"--config", readable}); o != nil {
			checkUsers(t, where, o)
		}
	}
	// Without a role's password, nats-server refuses to start, naming it.
	os.Unsetenv(passwordVar("pusher"))
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	noop := func() {}
	if _, err := server.ConfigureOptions(fs, []string{"--config", filepath.Join(dir, "standalone.conf")}, noop, noop, noop); err == nil || !strings.Contains(err.Error(), passwordVar("pusher")) {
		t.Errorf("standalone.conf without $%s: err = %v, want one naming the variable", passwordVar("pusher"), err)
	}
}

// checkUsers checks that o has one user per role, with its password from
// the environment and permissions of its own.
func checkUsers(t *testing.T, where string, o *server.Options) {
	t.Helper()
	var names []string
	for _, u := range o.Users {
		names = append(names, u.Username)
		if u.Password != testPassword(u.Username) {
			t.Errorf("%s: user %s: the password is not $%s", where, u.Username, passwordVar(u.Username))
		}
		if p := u.Permissions; p == nil || p.Publish == nil || len(p.Publish.Allow) == 0 || p.Subscribe == nil || len(p.Subscribe.Allow) == 0 {
			t.Errorf("%s: user %s: no publish and subscribe allow lists: a role gets what it needs and nothing else", where, u.Username)
		}
	}
	slices.Sort(names)
	if want := slices.Sorted(slices.Values(natsRoles)); !slices.Equal(names, want) {
		t.Errorf("%s: users %q, want one per role %q", where, names, want)
	}
	if o.Username != "" || o.Authorization != "" || len(o.Nkeys) > 0 || o.NoAuthUser != "" {
		t.Errorf("%s: another way in than the roles' users", where)
	}
}

// TestNATSClusterUsesTLS checks that the cluster of deploy/nats asks for
// TLS on client connections and mutual TLS on its routes.
func TestNATSClusterUsesTLS(t *testing.T) {
	setNATSPasswords(t)
	dir := shippedNATS(t)
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("node-%d.conf", i)
		o := natsOptions(t, name, []string{"--config", filepath.Join(dir, name)})
		if o == nil {
			continue
		}
		if o.TLSConfig == nil || o.TLSConfig.RootCAs == nil && o.TLSConfig.ClientCAs == nil {
			t.Errorf("%s: no TLS for clients", name)
		}
		if o.Cluster.TLSConfig == nil || o.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert {
			t.Errorf("%s: routes without mutual TLS (cluster.tls with verify: true)", name)
		}
	}
}
