package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultNATSURL is used when neither --nats nor $NATS_URL says otherwise.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// NATS is where and how a command connects to NATS, the way the NATS tools
// do: the servers, a way to authenticate, and TLS. Each field comes from
// its flag, else from the variable the nats CLI reads (Resolve). The
// secrets, Password and Token, never reach a log line, an error or --help.
type NATS struct {
	URL      string // --nats, $NATS_URL: servers, comma-separated
	User     string // --nats-user, $NATS_USER
	Password string // --nats-password, $NATS_PASSWORD: with User
	Token    string // --nats-token, $NATS_TOKEN
	Creds    string // --nats-creds, $NATS_CREDS: a credentials file (user JWT and nkey seed)
	NKey     string // --nats-nkey, $NATS_NKEY: a file holding an nkey seed
	CA       string // --nats-ca, $NATS_CA: PEM certificates of the CAs to trust
	Cert     string // --nats-cert, $NATS_CERT: PEM client certificate, with Key
	Key      string // --nats-key, $NATS_KEY: its PEM private key
}

// natsField is one of NATS's fields: its flag, its variable, its help.
type natsField struct {
	flag, env, usage string
	value            *string
}

// authFields are NATS's fields but the URL, in the order --help lists them.
func (n *NATS) authFields() []natsField {
	return []natsField{
		{"nats-user", "NATS_USER", "NATS user `name`, with a password", &n.User},
		{"nats-password", "NATS_PASSWORD", "NATS `password` of the user (prefer the variable: a flag shows in the process list)", &n.Password},
		{"nats-token", "NATS_TOKEN", "NATS authentication `token` (prefer the variable)", &n.Token},
		{"nats-creds", "NATS_CREDS", "NATS credentials `file` (user JWT and nkey seed, as nsc makes it)", &n.Creds},
		{"nats-nkey", "NATS_NKEY", "`file` holding the NATS user's nkey seed", &n.NKey},
		{"nats-ca", "NATS_CA", "PEM `file` of the CA certificates that signed the NATS servers' (turns TLS on)", &n.CA},
		{"nats-cert", "NATS_CERT", "PEM client certificate `file` for NATS TLS, with --nats-key", &n.Cert},
		{"nats-key", "NATS_KEY", "PEM private key `file` of --nats-cert", &n.Key},
	}
}

// RegisterURL adds --nats to fs. Its default is resolved after parsing
// (Resolve), so that --help never shows what the environment holds: a URL
// may carry a password.
func (n *NATS) RegisterURL(fs *flag.FlagSet) {
	fs.StringVar(&n.URL, "nats", "", "NATS server `URL`s, comma-separated for a cluster (default $NATS_URL, else "+DefaultNATSURL+")")
}

// RegisterAuth adds the flags of NATS credentials and TLS to fs; each
// defaults to its variable, resolved after parsing (Resolve).
func (n *NATS) RegisterAuth(fs *flag.FlagSet) {
	for _, f := range n.authFields() {
		fs.StringVar(f.value, f.flag, "", f.usage+" (default $"+f.env+")")
	}
}

// Resolve fills each field its flag left empty from its variable, read
// with getenv (os.Getenv), and the URL from DefaultNATSURL at last.
func (n *NATS) Resolve(getenv func(string) string) {
	for _, f := range append(n.authFields(), natsField{env: "NATS_URL", value: &n.URL}) {
		if *f.value == "" {
			*f.value = getenv(f.env)
		}
	}
	if n.URL == "" {
		n.URL = DefaultNATSURL
	}
}

// HasAuth reports whether n carries a way to authenticate.
func (n *NATS) HasAuth() bool {
	return n.User != "" || n.Password != "" || n.Token != "" || n.Creds != "" || n.NKey != ""
}

// Options returns the nats.go options of n's credentials and TLS files. A
// misuse, such as a password without a user, two ways to authenticate, or
// a certificate without its key, is a *UsageError naming the flags and
// variables, never their values.
func (n *NATS) Options() ([]nats.Option, error) {
	var ways []string
	for _, w := range []struct {
		set  bool
		name string
	}{{n.User != "" || n.Password != "", "user and password"}, {n.Token != "", "token"}, {n.Creds != "", "credentials file"}, {n.NKey != "", "nkey"}} {
		if w.set {
			ways = append(ways, w.name)
		}
	}
	switch {
	case len(ways) > 1:
		return nil, Usagef("NATS: give one way to authenticate, not %s", strings.Join(ways, " and "))
	case n.User != "" && n.Password == "":
		return nil, Usagef("NATS: user %q without a password: set $NATS_PASSWORD (or --nats-password)", n.User)
	case n.User == "" && n.Password != "":
		return nil, Usagef("NATS: a password without a user: set $NATS_USER (or --nats-user)")
	case (n.Cert == "") != (n.Key == ""):
		return nil, Usagef("NATS: a client certificate needs both $NATS_CERT and $NATS_KEY (or --nats-cert and --nats-key)")
	}
	var opts []nats.Option
	switch {
	case n.User != "":
		opts = append(opts, nats.UserInfo(n.User, n.Password))
	case n.Token != "":
		opts = append(opts, nats.Token(n.Token))
	case n.Creds != "":
		opts = append(opts, nats.UserCredentials(n.Creds))
	case n.NKey != "":
		o, err := nats.NkeyOptionFromSeed(n.NKey)
		if err != nil {
			// The error names the file or what is wrong with it, never the seed.
			return nil, fmt.Errorf("NATS nkey seed file %s: %w", n.NKey, err)
		}
		opts = append(opts, o)
	}
	if n.CA != "" {
		opts = append(opts, nats.RootCAs(n.CA))
	}
	if n.Cert != "" {
		opts = append(opts, nats.ClientCert(n.Cert, n.Key))
	}
	return opts, nil
}

// InboxPrefix is the prefix of the reply subjects of a process connected
// as name: _INBOX_<name>. Each binary has its own, so that the shipped
// permissions (deploy/nats/pulljobs-auth.conf) let no other role read the
// replies it receives: JetStream's answers and the messages it pulls.
func InboxPrefix(name string) string { return "_INBOX_" + name }

// Connect connects to NATS as n says, under name (pulljobs-<binary>), with
// the inbox of InboxPrefix(name): it reconnects forever and logs the
// connection's ups and downs. A long-lived worker (waitForServer) also
// waits for a server that is not up yet, as when a fleet starts together; a
// one-shot command fails at once instead, naming the URL. Credentials the
// server refuses end the connection with an error that says so.
func Connect(n NATS, name string, waitForServer bool, logger *slog.Logger) (*nats.Conn, error) {
	n.Resolve(os.Getenv)
	auth, err := n.Options()
	if err != nil {
		return nil, err
	}
	opts := append([]nats.Option{
		nats.Name(name),
		nats.CustomInboxPrefix(InboxPrefix(name)),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(waitForServer),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { logger.Info("nats reconnected", "server", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { logger.Warn("nats", "err", err) }),
	}, auth...)
	nc, err := nats.Connect(n.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats at %s: %w", redactURL(n.URL), err)
	}
	return nc, nil
}

// Attach calls attach, which declares what a process uses on nc's NATS
// (pipeline.New, service.New) and retries while NATS is out of reach, and
// stops it as soon as nc closes for good: a server that refuses the
// credentials closes it. The error then is what NATS said last, where
// attach's would be a bare "connection closed".
func Attach[T any](ctx context.Context, nc *nats.Conn, attach func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithCancel(ctx)
	closed := make(chan struct{})
	var once sync.Once
	nc.SetClosedHandler(func(*nats.Conn) { once.Do(func() { close(closed) }) })
	var watcher sync.WaitGroup
	defer watcher.Wait()
	defer cancel()
	defer nc.SetClosedHandler(nil)
	watcher.Go(func() {
		select {
		case <-closed:
			cancel()
		case <-ctx.Done():
		}
	})
	if nc.IsClosed() {
		cancel()
	}
	v, err := attach(ctx)
	if last := nc.LastError(); err != nil && nc.IsClosed() && last != nil {
		// What attach says then is noise: a retry cut short.
		err = fmt.Errorf("nats closed the connection: %w", last)
	}
	return v, err
}

// redactURL hides the passwords and tokens of a list of NATS URLs.
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		if at := strings.LastIndexByte(u, '@'); at >= 0 {
			start := 0
			if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
				start = scheme + 3
			}
			parts[i] = u[:start] + "***" + u[at:]
		}
	}
	return strings.Join(parts, ",")
}
