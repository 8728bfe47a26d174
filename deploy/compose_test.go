package deploy_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"github.com/pulljobs/pulljobs/pkg/config"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
)

// loadCompose loads a compose file as docker compose does, with its
// schema: an unknown key is an error.
func loadCompose(path string) (*types.Project, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs}},
		Environment: composeEnv(),
	})
}

// composeEnv is the environment docker compose runs in: every role's NATS
// password, which compose.yaml requires.
func composeEnv() types.Mapping {
	env := types.Mapping{}
	for _, r := range natsRoles {
		env[passwordVar(r)] = testPassword(r)
	}
	return env
}

// hostPath returns the file of the host that a container sees at path,
// through the service's bind mounts.
func hostPath(svc types.ServiceConfig, path string) (string, bool) {
	for _, v := range svc.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if rest, ok := strings.CutPrefix(path, v.Target); ok && (rest == "" || rest[0] == '/') {
			return v.Source + rest, true
		}
	}
	return "", false
}

// environment returns a service's environment as a process sees it.
func environment(svc types.ServiceConfig) map[string]string {
	env := map[string]string{}
	for k, v := range svc.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	return env
}

// imageRepo returns an image reference without its tag or digest.
func imageRepo(image string) string {
	image, _, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i]
	}
	return image
}

func TestComposeRefusesUnknownKeys(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	typo := strings.Replace(string(data), "\n  sandbox:\n", "\n  sandbox:\n    restrat: always\n", 1)
	if typo == string(data) {
		t.Fatal("compose.yaml has no sandbox service to misspell a key of")
	}
	path := filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(path, []byte(typo), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCompose(path); err == nil || !strings.Contains(err.Error(), "restrat") {
		t.Errorf("a compose file with services.sandbox.restrat: err = %v, want one naming the key", err)
	}
}

// composeFile is deploy/compose.yaml loaded, with what the checks share.
type composeFile struct {
	project *types.Project
	nats    map[string]*server.Options // by service
	sandbox struct{ ftPort, hrPort string }
}

func TestCompose(t *testing.T) {
	p, err := loadCompose(filepath.Join(repoRoot, "deploy", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c := &composeFile{project: p, nats: map[string]*server.Options{}}
	for name, svc := range p.Services {
		checkPinned(t, "service "+name+": image", svc.Image)
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s: bind mount: %v", name, err)
			}
			if !v.ReadOnly {
				t.Errorf("service %s: bind mount of %s is writable: mount configuration read-only", name, v.Source)
			}
		}
		if imageRepo(svc.Image) == "nats" {
			c.nats[name] = c.natsNode(t, name, svc)
		}
	}
	if len(c.nats) != 3 {
		t.Errorf("%d NATS services, want a three-node cluster", len(c.nats))
	}
	c.checkCluster(t)

	replicas := map[string]int{}
	for name, svc := range p.Services {
		if !builtHere(svc) {
			continue
		}
		where := "service " + name
		checkFlags(t, where, svc.Command)
		switch binary := svc.Command[0]; {
		case binary == "pulljobs" && len(svc.Command) > 1 && svc.Command[1] == "sandbox":
			c.sandbox.ftPort = addrPort(t, where, svc.Command, "francetravail-addr")
			c.sandbox.hrPort = addrPort(t, where, svc.Command, "hrflow-addr")
		default:
			replicas[binary] += svc.GetScale()
		}
	}
	if replicas["formatter"] != 2 || replicas["pusher"] != 2 || replicas["fetcher"] < 1 {
		t.Errorf("replicas: %d formatters, %d pushers, %d fetchers; want 2, 2 and at least 1", replicas["formatter"], replicas["pusher"], replicas["fetcher"])
	}
	if c.sandbox.ftPort == "" {
		t.Error("no sandbox service (pulljobs sandbox)")
	}
	for name, svc := range p.Services {
		if r, _, ok := roleOf(svc); ok {
			c.checkWorker(t, name, svc, r)
		}
	}
	c.checkCollector(t)
	c.checkPrometheus(t)
}

// builtHere tells whether a service runs the image of deploy/Dockerfile.
func builtHere(svc types.ServiceConfig) bool {
	return svc.Build != nil && filepath.ToSlash(svc.Build.Dockerfile) == "deploy/Dockerfile" && len(svc.Command) > 0
}

// roleOf tells whether a service runs a pulljobs worker, and which.
func roleOf(svc types.ServiceConfig) (config.Role, bool, bool) {
	if len(svc.Command) == 0 {
		return 0, false, false
	}
	return role(svc.Command)
}

func addrPort(t *testing.T, where string, argv []string, name string) string {
	t.Helper()
	addr, _ := flagValue(argv, name)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("%s: --%s %q: %v", where, name, addr, err)
	}
	return port
}

// natsNode reads a NATS service's options as nats-server itself would from
// its command line and configuration file.
func (c *composeFile) natsNode(t *testing.T, name string, svc types.ServiceConfig) *server.Options {
	t.Helper()
	args := slices.Clone([]string(svc.Command))
	for i, a := range args {
		if (a == "--config" || a == "-c") && i+1 < len(args) {
			host, ok := hostPath(svc, args[i+1])
			if !ok {
				t.Errorf("service %s: --config %s: no bind mount provides it", name, args[i+1])
				return nil
			}
			c.checkIncludes(t, name, svc, args[i+1], host)
			args[i+1] = host
		}
	}
	// nats-server reads every role's password from its environment.
	env := environment(svc)
	for _, r := range natsRoles {
		if got := env[passwordVar(r)]; got != testPassword(r) {
			t.Errorf("service %s: %s %q: want compose's $%s", name, passwordVar(r), got, passwordVar(r))
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	opts := natsOptions(t, "service "+name, args)
	if opts == nil {
		return nil
	}
	checkUsers(t, "service "+name, opts)
	if !slices.ContainsFunc(svc.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeVolume && v.Target == opts.StoreDir
	}) {
		t.Errorf("service %s: JetStream's store_dir %s is on no volume: streams die with the container", name, opts.StoreDir)
	}
	return opts
}

// checkIncludes checks that the files a NATS configuration includes are
// mounted in the container where it looks for them, and are those of the
// repository it includes on the host.
func (c *composeFile) checkIncludes(t *testing.T, name string, svc types.ServiceConfig, container, host string) {
	t.Helper()
	b, err := os.ReadFile(host)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range includeLine.FindAllStringSubmatch(string(b), -1) {
		mounted, ok := hostPath(svc, filepath.Join(filepath.Dir(container), m[1]))
		want, _ := filepath.Abs(filepath.Join(filepath.Dir(host), m[1]))
		if got, _ := filepath.Abs(mounted); !ok || got != want {
			t.Errorf("service %s: %s includes %s: the container finds %q there, want %s", name, container, m[1], mounted, want)
		}
	}
}

// natsOptions reads a server's options from its command line as
// nats-server does, and checks that JetStream and monitoring are on.
func natsOptions(t *testing.T, where string, args []string) *server.Options {
	t.Helper()
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	noop := func() {}
	opts, err := server.ConfigureOptions(fs, args, noop, noop, noop)
	if err != nil {
		t.Errorf("%s: nats-server %q: %v", where, args, err)
		return nil
	}
	if !opts.JetStream {
		t.Errorf("%s: JetStream is off", where)
	}
	if opts.HTTPPort <= 0 {
		t.Errorf("%s: no monitoring port (http)", where)
	}
	return opts
}

// TestNATSNodeConfigs checks deploy/nats, the cluster of three servers on
// one machine: each routes to the two others, under unique names.
func TestNATSNodeConfigs(t *testing.T) {
	setNATSPasswords(t)
	paths, err := filepath.Glob(filepath.Join(shippedNATS(t), "node-*.conf"))
	if err != nil || len(paths) != 3 {
		t.Fatalf("deploy/nats: %d node configurations (%v), want 3", len(paths), err)
	}
	nodes := map[string]*server.Options{}
	for _, p := range paths {
		if o := natsOptions(t, filepath.Base(p), []string{"--config", p}); o != nil {
			nodes[filepath.Base(p)] = o
		}
	}
	names := map[string]bool{}
	for file, o := range nodes {
		names[o.ServerName] = true
		var routed, want []string
		for _, r := range o.Routes {
			routed = append(routed, r.Host)
		}
		for other, oo := range nodes {
			if other != file {
				want = append(want, net.JoinHostPort(oo.Cluster.Host, strconv.Itoa(oo.Cluster.Port)))
			}
		}
		slices.Sort(routed)
		slices.Sort(want)
		if !slices.Equal(routed, want) || o.Cluster.Name != "pulljobs" {
			t.Errorf("%s: cluster %q routes to %q, want cluster pulljobs and the other nodes %q", file, o.Cluster.Name, routed, want)
		}
	}
	if len(names) != len(nodes) {
		t.Errorf("server names %v: want one per node (JetStream needs unique names)", names)
	}
}

// checkCluster checks that the NATS services form one cluster.
func (c *composeFile) checkCluster(t *testing.T) {
	names := map[string]bool{}
	for svc, o := range c.nats {
		if o == nil {
			continue
		}
		if names[o.ServerName] {
			t.Errorf("service %s: server name %q is not unique: JetStream needs unique names", svc, o.ServerName)
		}
		names[o.ServerName] = true
		if o.Cluster.Name != "pulljobs" || o.Cluster.Port <= 0 {
			t.Errorf("service %s: cluster %q on port %d, want cluster pulljobs", svc, o.Cluster.Name, o.Cluster.Port)
		}
		var routed []string
		for _, r := range o.Routes {
			if _, ok := c.nats[r.Hostname()]; ok && r.Port() == strconv.Itoa(o.Cluster.Port) {
				routed = append(routed, r.Hostname())
			}
		}
		slices.Sort(routed)
		if want := slices.Sorted(maps.Keys(c.nats)); !slices.Equal(routed, want) {
			t.Errorf("service %s: routes to %q, want every node %q", svc, routed, want)
		}
	}
}

// checkWorker checks a formatter, pusher or fetcher service: its
// configuration, its NATS URLs, its traces' destination, its readiness.
func (c *composeFile) checkWorker(t *testing.T, name string, svc types.ServiceConfig, r config.Role) {
	where := "service " + name
	env := environment(svc)
	port := httpPort(t, where, svc.Command)

	var want []string
	for n, o := range c.nats {
		if o != nil {
			want = append(want, fmt.Sprintf("nats://%s:%d", n, o.Port))
		}
	}
	got := strings.Split(env["NATS_URL"], ",")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: NATS_URL %q, want every node: %q", where, env["NATS_URL"], strings.Join(want, ","))
	}

	if role := natsRole(svc.Command); env["NATS_USER"] != role || env["NATS_PASSWORD"] != testPassword(role) {
		t.Errorf("%s: NATS_USER %q with NATS_PASSWORD %q: want the role %s and compose's $%s", where, env["NATS_USER"], env["NATS_PASSWORD"], role, passwordVar(role))
	}

	if env["OTEL_SERVICE_NAME"] == "" || env["OTEL_TRACES_EXPORTER"] != "otlp" {
		t.Errorf("%s: OTEL_SERVICE_NAME %q, OTEL_TRACES_EXPORTER %q: want a name, and otlp", where, env["OTEL_SERVICE_NAME"], env["OTEL_TRACES_EXPORTER"])
	}
	if u, err := url.Parse(env["OTEL_EXPORTER_OTLP_ENDPOINT"]); err != nil || u.Hostname() == "" {
		t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT %q: want the collector's URL", where, env["OTEL_EXPORTER_OTLP_ENDPOINT"])
	} else if want := c.collectorOTLP(t, env["OTEL_EXPORTER_OTLP_PROTOCOL"]); u.Host != want {
		t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT %q: want the collector's OTLP %s receiver, %s", where, u, env["OTEL_EXPORTER_OTLP_PROTOCOL"], want)
	}

	hc := svc.HealthCheck
	wantURL := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	if hc == nil || len(hc.Test) < 2 || hc.Test[0] != "CMD" || !slices.Contains(hc.Test, wantURL) {
		t.Errorf("%s: healthcheck %v: want a CMD that GETs %s", where, hc, wantURL)
	} else if strings.HasPrefix(hc.Test[1], "/busybox/") && (svc.Build == nil || svc.Build.Target != "debug") {
		t.Errorf("%s: healthcheck runs %s: only the image's debug stage has busybox", where, hc.Test[1])
	}

	if dir, ok := flagValue(svc.Command, "profiles"); ok {
		profiles, _ := filepath.Glob(filepath.Join(serviceFile(t, name, svc, dir), "*.yaml"))
		if len(profiles) == 0 {
			t.Errorf("%s: no profile in --profiles %s", where, dir)
		}
		for _, p := range profiles {
			if cfg, ok := checkConfig(t, where, p, r, env); ok {
				if cfg.Schedule == nil {
					t.Errorf("%s: %s: no schedule: compose shows a scheduled run", where, filepath.Base(p))
				}
				c.checkSandboxConfig(t, where+": "+filepath.Base(p), cfg)
			}
		}
		return
	}
	path, ok := flagValue(svc.Command, "config")
	if !ok {
		t.Errorf("%s: no --config", where)
		return
	}
	host := serviceFile(t, name, svc, path)
	if cfg, ok := checkConfig(t, where, host, r, env); ok {
		c.checkSandboxConfig(t, where+": "+filepath.Base(host), cfg)
	}
}

// serviceFile returns the file of the host that a service sees at path,
// through its bind mounts.
func serviceFile(t *testing.T, name string, svc types.ServiceConfig, path string) string {
	t.Helper()
	host, ok := hostPath(svc, path)
	if !ok {
		t.Fatalf("service %s: %s: no bind mount provides it", name, path)
	}
	return host
}

// checkSandboxConfig checks that a configuration reaches the sandbox
// service's emulators, with credentials they accept.
func (c *composeFile) checkSandboxConfig(t *testing.T, where string, cfg config.Config) {
	t.Helper()
	ft, hr := "http://sandbox:"+c.sandbox.ftPort, "http://sandbox:"+c.sandbox.hrPort
	for _, f := range []struct{ key, got, want string }{
		{"origin_parameters.api_base_url", cfg.Origin.APIBaseURL, francetravailtest.APIBaseURL(ft)},
		{"origin_parameters.token_url", cfg.Origin.TokenURL, francetravailtest.TokenURL(ft)},
		{"origin_parameters.client_id", cfg.Origin.ClientID, francetravailtest.DefaultClientID},
		{"origin_parameters.client_secret", cfg.Origin.ClientSecret, francetravailtest.DefaultClientSecret},
		{"target_parameters.api_base_url", cfg.Target.APIBaseURL, hrflowtest.BaseURL(hr)},
		{"target_parameters.api_secret", cfg.Target.APISecret, hrflowtest.DefaultAPISecret},
		{"target_parameters.api_user", cfg.Target.APIUser, hrflowtest.DefaultAPIUser},
		{"target_parameters.board_key", cfg.Target.BoardKey, hrflowtest.DefaultBoardKey},
	} {
		if f.got != f.want {
			t.Errorf("%s: %s is %q, want the sandbox's %q", where, f.key, f.got, f.want)
		}
	}
}

// collectorConfig is the part of an OpenTelemetry collector configuration
// the checks read.
type collectorConfig struct {
	Receivers struct {
		OTLP struct {
			Protocols map[string]struct {
				Endpoint string `yaml:"endpoint"`
			} `yaml:"protocols"`
		} `yaml:"otlp"`
	} `yaml:"receivers"`
	Exporters map[string]map[string]any `yaml:"exporters"`
	Service   struct {
		Pipelines map[string]struct {
			Receivers []string `yaml:"receivers"`
			Exporters []string `yaml:"exporters"`
		} `yaml:"pipelines"`
	} `yaml:"service"`
}

// collector returns the collector service's name and configuration.
func (c *composeFile) collector(t *testing.T) (string, collectorConfig) {
	t.Helper()
	var cfg collectorConfig
	for name, svc := range c.project.Services {
		if !strings.HasPrefix(imageRepo(svc.Image), "otel/opentelemetry-collector") {
			continue
		}
		path, ok := flagValue(svc.Command, "config")
		if !ok {
			t.Fatalf("service %s: no --config", name)
		}
		host := serviceFile(t, name, svc, path)
		data, err := os.ReadFile(host)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, &cfg); err != nil {
			t.Fatalf("service %s: %s: %v", name, host, err)
		}
		return name, cfg
	}
	t.Fatal("no OpenTelemetry collector service")
	return "", cfg
}

// collectorOTLP returns the host:port of the collector's OTLP receiver
// for an OTLP protocol (grpc, http/protobuf, http/json).
func (c *composeFile) collectorOTLP(t *testing.T, protocol string) string {
	t.Helper()
	name, cfg := c.collector(t)
	key := "http"
	if protocol == "grpc" {
		key = "grpc"
	}
	_, port, err := net.SplitHostPort(cfg.Receivers.OTLP.Protocols[key].Endpoint)
	if err != nil {
		t.Fatalf("collector: receivers.otlp.protocols.%s.endpoint: %v", key, err)
	}
	return net.JoinHostPort(name, port)
}

func (c *composeFile) checkCollector(t *testing.T) {
	_, cfg := c.collector(t)
	traces, ok := cfg.Service.Pipelines["traces"]
	if !ok || !slices.Contains(traces.Receivers, "otlp") || len(traces.Exporters) == 0 {
		t.Fatalf("collector: service.pipelines.traces %+v: want otlp in, an exporter out", traces)
	}
	for _, e := range traces.Exporters {
		ec, ok := cfg.Exporters[e]
		if !ok {
			t.Errorf("collector: pipeline exporter %s is not configured", e)
			continue
		}
		endpoint, _ := ec["endpoint"].(string)
		if endpoint == "" {
			continue // the debug exporter writes to the collector's log
		}
		host, _, err := net.SplitHostPort(endpoint)
		if _, svc := c.project.Services[host]; err != nil || !svc {
			t.Errorf("collector: exporter %s sends to %q, which is no service of the compose file", e, endpoint)
		}
	}
}

// prometheusConfig is the part of a Prometheus configuration that the
// compose file uses, decoded strictly.
type prometheusConfig struct {
	Global struct {
		ScrapeInterval string `yaml:"scrape_interval"`
	} `yaml:"global"`
	RuleFiles     []string       `yaml:"rule_files"`
	ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
}

type scrapeConfig struct {
	JobName      string `yaml:"job_name"`
	DNSSDConfigs []struct {
		Names []string `yaml:"names"`
		Type  string   `yaml:"type"`
		Port  int      `yaml:"port"`
	} `yaml:"dns_sd_configs"`
	StaticConfigs []struct {
		Targets []string `yaml:"targets"`
	} `yaml:"static_configs"`
}

// checkPrometheus checks that Prometheus scrapes every replica of every
// worker on the port it serves /metrics on, and loads pulljobs' alerting
// rules (TestAlertRules checks them).
func (c *composeFile) checkPrometheus(t *testing.T) {
	var cfg prometheusConfig
	found := false
	for name, svc := range c.project.Services {
		if imageRepo(svc.Image) != "prom/prometheus" {
			continue
		}
		found = true
		path, ok := flagValue(svc.Command, "config.file")
		if !ok {
			t.Fatalf("service %s: no --config.file", name)
		}
		host := serviceFile(t, name, svc, path)
		f, err := os.Open(host)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(f)
		dec.KnownFields(true)
		err = dec.Decode(&cfg)
		f.Close()
		if err != nil {
			t.Fatalf("service %s: %s: %v", name, host, err)
		}
		alerts, err := filepath.Abs(filepath.Join(repoRoot, "deploy", "compose", "alerts.yml"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(cfg.RuleFiles, func(p string) bool {
			host, err := filepath.Abs(serviceFile(t, name, svc, p))
			return err == nil && host == alerts
		}) {
			t.Errorf("service %s loads no %s (rule_files %q)", name, alerts, cfg.RuleFiles)
		}
	}
	if !found {
		t.Fatal("no Prometheus service")
	}
	for name, svc := range c.project.Services {
		if _, _, ok := roleOf(svc); !ok {
			continue
		}
		port := httpPort(t, "service "+name, svc.Command)
		scraped := slices.ContainsFunc(cfg.ScrapeConfigs, func(sc scrapeConfig) bool {
			for _, d := range sc.DNSSDConfigs {
				if slices.Contains(d.Names, name) && d.Type == "A" && d.Port == port {
					return true
				}
			}
			return false
		})
		if !scraped {
			t.Errorf("Prometheus scrapes no %s:%d (every replica, by DNS): its /metrics are lost", name, port)
		}
	}
}
