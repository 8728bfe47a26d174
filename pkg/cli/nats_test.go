package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/pulljobs/pulljobs/pkg/natsembed/natstest"
)

// Secrets of the tests: each is looked for in every output and error.
const (
	testPassword = "pw-Zq7uXv2Lr9"
	testToken    = "tok-Hs4Kp8Wd3m"
)

// startServer starts a NATS server on a free loopback port with opts;
// it stops when the test ends.
func startServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// checkNoSecret fails the test if s holds a secret of the tests.
func checkNoSecret(t *testing.T, where, s string, secrets ...string) {
	t.Helper()
	for _, secret := range append(secrets, testPassword, testToken) {
		if secret != "" && strings.Contains(s, secret) {
			t.Errorf("%s shows a secret: %q", where, s)
		}
	}
}

// TestConnectAuthenticates connects the way each NATS tool convention
// says, to a server that asks for it; the same server refuses a client
// without it, with an error that names the cause and shows no secret.
func TestConnectAuthenticates(t *testing.T) {
	dir := t.TempDir()
	certs := natstest.NewCerts(t, dir)
	tlsConfig := func(t *testing.T, verify bool) *server.Options {
		t.Helper()
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: certs.Cert, KeyFile: certs.Key, CaFile: certs.CA, Verify: verify})
		if err != nil {
			t.Fatal(err)
		}
		return &server.Options{TLSConfig: tc, TLSVerify: verify, TLSTimeout: 2}
	}
	nkeySeed, nkeyPub := userNKey(t, dir)
	credsOpts, credsFile, credsSeed := operatorMode(t, dir)

	tests := []struct {
		name   string
		server func(t *testing.T) *server.Options
		client NATS
		secret string // besides the tests' own
		// refused lacks what the server asks for; nothing when zero.
		refused NATS
	}{
		{"user and password", func(*testing.T) *server.Options {
			return &server.Options{Username: "fetcher", Password: testPassword}
		}, NATS{User: "fetcher", Password: testPassword}, "", NATS{}},
		{"token", func(*testing.T) *server.Options { return &server.Options{Authorization: testToken} }, NATS{Token: testToken}, "", NATS{}},
		{"nkey seed file", func(*testing.T) *server.Options {
			return &server.Options{Nkeys: []*server.NkeyUser{{Nkey: nkeyPub}}}
		}, NATS{NKey: nkeySeed}, readFile(t, nkeySeed), NATS{}},
		{"credentials file", func(*testing.T) *server.Options { return credsOpts }, NATS{Creds: credsFile}, credsSeed, NATS{}},
		{"TLS with a CA", func(t *testing.T) *server.Options { return tlsConfig(t, false) }, NATS{CA: certs.CA}, "", NATS{}},
		{"TLS with a client certificate", func(t *testing.T) *server.Options { return tlsConfig(t, true) },
			NATS{CA: certs.CA, Cert: certs.Cert, Key: certs.Key}, readFile(t, certs.Key), NATS{CA: certs.CA}},
		{"wrong password", func(*testing.T) *server.Options {
			return &server.Options{Username: "fetcher", Password: "right"}
		}, NATS{User: "fetcher", Password: "right"}, "right", NATS{User: "fetcher", Password: testPassword}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.server(t))
			n := tt.client
			n.URL = s.ClientURL()
			nc, err := Connect(n, "pulljobs-test", false, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer nc.Close()
			if inbox := nc.NewRespInbox(); !strings.HasPrefix(inbox, "_INBOX_pulljobs-test.") {
				t.Errorf("inbox %q, want one under the process's own prefix _INBOX_pulljobs-test", inbox)
			}
			if _, err := nc.Request("nobody.listens", nil, time.Second); err == nil {
				t.Error("a request with no responder succeeded")
			}
			refused := tt.refused
			refused.URL = s.ClientURL()
			_, err = Connect(refused, "pulljobs-test", false, slog.New(slog.DiscardHandler))
			if err == nil {
				t.Fatal("connect without the credentials or TLS: err = nil, want a refusal")
			}
			t.Logf("refused: %v", err)
			checkNoSecret(t, "the refusal", err.Error(), tt.secret)
		})
	}
}

// userNKey writes a user's nkey seed into dir and returns the file and the
// public key.
func userNKey(t *testing.T, dir string) (seedFile, pub string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ = kp.PublicKey()
	seedFile = filepath.Join(dir, "user.nk")
	writeTestFile(t, seedFile, string(seed))
	return seedFile, pub
}

// operatorMode returns the options of a server of decentralized
// authentication (an operator, an account, its users' JWTs), and a
// credentials file of a user of it, as nsc makes one, with its seed.
func operatorMode(t *testing.T, dir string) (opts *server.Options, credsFile, seed string) {
	t.Helper()
	operator, _ := nkeys.CreateOperator()
	opub, _ := operator.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	ojwt, err := oc.Encode(operator)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := jwt.DecodeOperatorClaims(ojwt)
	if err != nil {
		t.Fatal(err)
	}
	account, _ := nkeys.CreateAccount()
	apub, _ := account.PublicKey()
	ajwt, err := jwt.NewAccountClaims(apub).Encode(operator)
	if err != nil {
		t.Fatal(err)
	}
	user, _ := nkeys.CreateUser()
	upub, _ := user.PublicKey()
	ujwt, err := jwt.NewUserClaims(upub).Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	useed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(ujwt, useed)
	if err != nil {
		t.Fatal(err)
	}
	credsFile = filepath.Join(dir, "user.creds")
	writeTestFile(t, credsFile, string(creds))
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(apub, ajwt); err != nil {
		t.Fatal(err)
	}
	return &server.Options{TrustedOperators: []*jwt.OperatorClaims{decoded}, AccountResolver: resolver}, credsFile, string(useed)
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestNATSMisuse checks the refusals of what cannot work, before any
// network call: each names the flags or variables at fault, not their
// values.
func TestNATSMisuse(t *testing.T) {
	dir := t.TempDir()
	badSeed := filepath.Join(dir, "bad.nk")
	writeTestFile(t, badSeed, "SUAnotaseed"+testPassword)
	tests := []struct {
		n     NATS
		usage bool
		want  string
	}{
		{NATS{Password: testPassword}, true, "NATS_USER"},
		{NATS{User: "fetcher"}, true, "NATS_PASSWORD"},
		{NATS{User: "fetcher", Password: testPassword, Token: testToken}, true, "one way to authenticate"},
		{NATS{Token: testToken, Creds: "x.creds"}, true, "one way to authenticate"},
		{NATS{Token: testToken, NKey: "x.nk"}, true, "one way to authenticate"},
		{NATS{Cert: "c.pem"}, true, "NATS_KEY"},
		{NATS{Key: "k.pem"}, true, "NATS_CERT"},
		{NATS{NKey: badSeed}, false, badSeed},
		{NATS{NKey: filepath.Join(dir, "missing.nk")}, false, "missing.nk"},
	}
	for _, tt := range tests {
		_, err := tt.n.Options()
		var ue *UsageError
		switch {
		case err == nil:
			t.Errorf("%+v: err = nil, want a refusal", redacted(tt.n))
			continue
		case tt.usage != errors.As(err, &ue):
			t.Errorf("%+v: %v; usage error %v, want %v", redacted(tt.n), err, !tt.usage, tt.usage)
		case !strings.Contains(err.Error(), tt.want):
			t.Errorf("%+v: %q, want it to name %q", redacted(tt.n), err, tt.want)
		}
		checkNoSecret(t, "the refusal", err.Error())
	}
}

// redacted is n without its secrets, for a test's messages.
func redacted(n NATS) NATS {
	n.Password, n.Token = strings.Repeat("*", len(n.Password)), strings.Repeat("*", len(n.Token))
	return n
}

// TestNATSResolve checks where each setting comes from: its flag, else
// its variable, and the URL's default at last; and that --help shows
// nothing of what the environment holds.
func TestNATSResolve(t *testing.T) {
	env := map[string]string{
		"NATS_URL": "nats://fetcher:" + testPassword + "@10.0.0.1:4222", "NATS_USER": "fetcher", "NATS_PASSWORD": testPassword,
		"NATS_TOKEN": testToken, "NATS_CREDS": "/etc/nats/user.creds", "NATS_NKEY": "/etc/nats/user.nk",
		"NATS_CA": "/etc/nats/ca.pem", "NATS_CERT": "/etc/nats/cert.pem", "NATS_KEY": "/etc/nats/key.pem",
	}
	getenv := func(k string) string { return env[k] }
	for k, v := range env {
		t.Setenv(k, v)
	}
	var n NATS
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	n.RegisterURL(fs)
	n.RegisterAuth(fs)
	var help bytes.Buffer
	fs.SetOutput(&help)
	fs.PrintDefaults()
	checkNoSecret(t, "--help", help.String())
	for _, v := range env {
		if strings.Contains(help.String(), v) {
			t.Errorf("--help shows %q, from the environment", v)
		}
	}
	for _, f := range n.authFields() {
		if !strings.Contains(help.String(), "--"+f.flag) && !strings.Contains(help.String(), "-"+f.flag) {
			t.Errorf("--help lists no %s", f.flag)
		}
	}
	if err := fs.Parse([]string{"--nats-user", "formatter", "--nats-ca", "/tmp/ca.pem"}); err != nil {
		t.Fatal(err)
	}
	n.Resolve(getenv)
	want := NATS{URL: env["NATS_URL"], User: "formatter", Password: testPassword, Token: testToken, Creds: env["NATS_CREDS"],
		NKey: env["NATS_NKEY"], CA: "/tmp/ca.pem", Cert: env["NATS_CERT"], Key: env["NATS_KEY"]}
	if n != want {
		t.Errorf("resolved %+v,\nwant %+v", redacted(n), redacted(want))
	}
	var none NATS
	none.Resolve(func(string) string { return "" })
	if none != (NATS{URL: DefaultNATSURL}) {
		t.Errorf("nothing set: %+v, want the default URL only", none)
	}
}

// TestAttachStopsOnRefusedCredentials starts a long-lived worker's
// connection, which waits for a server, with a password the server
// refuses: what it attaches, which retries until its context ends as
// declaring the pipeline does, stops as soon as NATS closes the
// connection, and the error says why.
func TestAttachStopsOnRefusedCredentials(t *testing.T) {
	s := startServer(t, &server.Options{Username: "formatter", Password: "right", JetStream: true, StoreDir: t.TempDir()})
	nc, err := Connect(NATS{URL: s.ClientURL(), User: "formatter", Password: testPassword}, "pulljobs-formatter", true, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("a worker's connect waits for the server: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Bounds a hang only: the declarations' own retries last minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, err = Attach(ctx, nc, func(ctx context.Context) (jetstream.Stream, error) {
		for {
			s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "DECLARED"})
			if err == nil || ctx.Err() != nil {
				return s, err
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	switch {
	case err == nil:
		t.Fatal("attached with refused credentials")
	case ctx.Err() != nil:
		t.Fatalf("still retrying when the test's bound ended: %v", err)
	case !strings.Contains(err.Error(), "Authorization Violation"):
		t.Errorf("err = %v, want it to say that the server refused the credentials", err)
	}
	checkNoSecret(t, "the error", err.Error())
}
