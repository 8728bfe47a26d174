// Package deploy_test checks what deploy/ ships for containers: the
// Dockerfile, the compose file and the Kubernetes manifests. The checks
// touch no Docker daemon and no cluster: manifests are decoded strictly
// into the Kubernetes API types, the compose file through compose-go and
// its schema, every command line against the --help of binaries built as
// the Dockerfile builds them, the pulljobs configurations with pkg/config,
// and the KEDA scalers' streams and consumers against a live NATS server
// on which the pipeline declared its topology.
package deploy_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/pulljobs/pulljobs/pkg/config"
)

// repoRoot is the repository, seen from this package's directory.
const repoRoot = ".."

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// built holds the binaries that the Dockerfile's go build command line
// produces, built once for every test that needs them.
var built struct {
	once sync.Once
	dir  string
	out  []byte
	err  error
}

// binaries builds the image's binaries with the Dockerfile's own go build
// command line into a temporary directory, once, and returns it.
func binaries(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "pulljobs-deploy-")
		if built.err != nil {
			return
		}
		var cmd *exec.Cmd
		cmd, built.err = dockerfileBuild(filepath.Join(repoRoot, "deploy", "Dockerfile"), built.dir)
		if built.err != nil {
			return
		}
		built.out, built.err = cmd.CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("build the image's binaries as deploy/Dockerfile does: %v\n%s", built.err, built.out)
	}
	return built.dir
}

// helpFlags caches the flags each command's --help lists.
var helpFlags struct {
	mu    sync.Mutex
	flags map[string]map[string]bool
}

// flagLine matches a flag in the output of flag.PrintDefaults.
var flagLine = regexp.MustCompile(`(?m)^\s+--?([A-Za-z0-9][\w-]*)`)

// commandFlags returns the flags that "binary [subcommand] --help" lists.
func commandFlags(t *testing.T, binary, subcommand string) map[string]bool {
	t.Helper()
	key := binary + " " + subcommand
	helpFlags.mu.Lock()
	defer helpFlags.mu.Unlock()
	if f, ok := helpFlags.flags[key]; ok {
		return f
	}
	args := []string{"--help"}
	if subcommand != "" {
		args = []string{subcommand, "--help"}
	}
	// The exit status is not checked: a command that does not exist yet
	// answers with a usage error, and then lists no flag.
	out, _ := exec.Command(filepath.Join(binaries(t), binary), args...).CombinedOutput()
	flags := map[string]bool{}
	for _, m := range flagLine.FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if helpFlags.flags == nil {
		helpFlags.flags = map[string]map[string]bool{}
	}
	helpFlags.flags[key] = flags
	return flags
}

// checkFlags fails the test for each flag of argv (a command line of one
// of the image's binaries) that the binary's --help does not list.
func checkFlags(t *testing.T, where string, argv []string) {
	t.Helper()
	if len(argv) == 0 {
		t.Errorf("%s: empty command", where)
		return
	}
	binary, subcommand := filepath.Base(argv[0]), ""
	if len(argv) > 1 && !strings.HasPrefix(argv[1], "-") {
		subcommand = argv[1]
	}
	known := commandFlags(t, binary, subcommand)
	help := strings.Join(slices.DeleteFunc([]string{binary, subcommand, "--help"}, func(s string) bool { return s == "" }), " ")
	if len(known) == 0 {
		t.Errorf("%s: %q lists no flag: is it a command of %s yet?", where, help, binary)
		return
	}
	for _, a := range argv[1:] {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !known[name] {
			t.Errorf("%s: flag --%s is not in %q", where, name, help)
		}
	}
}

// flagValue returns the value of --name in argv ("--name v" or
// "--name=v").
func flagValue(argv []string, name string) (string, bool) {
	for i, a := range argv {
		switch {
		case a == "--"+name || a == "-"+name:
			if i+1 < len(argv) {
				return argv[i+1], true
			}
		case strings.HasPrefix(a, "--"+name+"=") || strings.HasPrefix(a, "-"+name+"="):
			_, v, _ := strings.Cut(a, "=")
			return v, true
		}
	}
	return "", false
}

// httpPort returns the port of a command's --http address.
func httpPort(t *testing.T, where string, argv []string) int {
	t.Helper()
	addr, ok := flagValue(argv, "http")
	if !ok {
		t.Errorf("%s: no --http: /metrics, /healthz and /readyz are served nowhere", where)
		return 0
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("%s: --http %q: %v", where, addr, err)
		return 0
	}
	n, err := strconv.Atoi(port)
	if err != nil || n <= 0 {
		t.Errorf("%s: --http %q: want a fixed port", where, addr)
	}
	return n
}

// role returns what the process of argv does, for config.Validate, and
// whether its configuration is a directory of profiles.
func role(argv []string) (r config.Role, profiles bool, ok bool) {
	switch filepath.Base(argv[0]) {
	case "formatter":
		return config.RoleFormatter, false, len(argv) == 1 || argv[1] != "format"
	case "pusher":
		return config.RolePusher, false, true
	case "fetcher":
		return config.RoleFetcher, slices.Contains(argv, "serve"), true
	}
	return 0, false, false
}

// envRef matches a ${VAR} reference without a default.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// checkConfig parses a pulljobs configuration file (or a profile: a
// configuration with a schedule) as the process would, with env as its
// environment, and validates it for its role. ok is false when the
// configuration was refused.
func checkConfig(t *testing.T, where, path string, r config.Role, env map[string]string) (cfg config.Config, ok bool) {
	t.Helper()
	where += ": " + filepath.Base(path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return cfg, false
	}
	for _, m := range envRef.FindAllStringSubmatch(string(data), -1) {
		if _, ok := env[m[1]]; !ok {
			t.Errorf("%s: references ${%s}, which the process's environment lacks", where, m[1])
		}
	}
	cfg, err = config.Parse(strings.NewReader(string(data)), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil {
		err = cfg.Validate(r)
	}
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return cfg, false
	}
	return cfg, true
}
