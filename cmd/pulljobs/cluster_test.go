package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/config"
	"github.com/pulljobs/pulljobs/pkg/natsembed/natstest"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// TestCluster runs pulljobs on the three-node cluster of deploy/nats, with
// replicated streams, TLS on routes and client connections, and each binary
// as its role of deploy/nats/pulljobs-auth.conf; it kills one NATS node in
// the middle of the run: the workers reconnect to the others, and the run
// completes without any operation refused.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: builds five binaries and runs three NATS servers")
	}
	const offers = 2000
	dir := t.TempDir()
	began := time.Now()
	bin := buildBinaries(t, dir)
	t.Logf("%.1fs: binaries built", time.Since(began).Seconds())
	sec := newSecured(t, dir, true)
	sec.explainOnFailure(t)

	// The deploy configurations, on free ports and in the test's directory.
	var urls []string
	var nodes []*exec.Cmd
	ports := make([][3]int, 3) // client, cluster, http
	for i := range ports {
		ports[i] = [3]int{freePort(t), freePort(t), freePort(t)}
	}
	for i := range 3 {
		conf := clusterConf(t, i, ports, filepath.Join(dir, fmt.Sprintf("nats-%d", i+1)), *sec.certs)
		path := filepath.Join(dir, fmt.Sprintf("node-%d.conf", i+1))
		writeFile(t, path, conf)
		nodes = append(nodes, sec.startServer(t, bin, fmt.Sprintf("nats-%d", i+1), path))
		urls = append(urls, fmt.Sprintf("tls://127.0.0.1:%d", ports[i][0]))
	}
	for _, p := range ports {
		waitPort(t, p[0])
	}
	waitHealthy(t, ports)
	t.Logf("%.1fs: cluster healthy", time.Since(began).Seconds())

	_, ftURL, hrURL := spawnSandbox(t, dir, bin, "--synthetic", fmt.Sprint(offers), "--seed", "11", "--hrflow-latency", "2ms")
	cfg := sandboxConfig(t, dir, ftURL, hrURL, `
  replicas: 3
  ack_wait: 5s
  lease_ttl: 20s
  drain_timeout: 5s
`)
	// Each worker starts on another node, and knows them all.
	for i, name := range []string{"formatter-1", "formatter-2", "pusher-1", "pusher-2"} {
		servers := strings.Join(append(urls[i%3:], urls[:i%3]...), ",")
		startEnv(t, dir, name, sec.as(roleOf(name)), bin[roleOf(name)], "--nats", servers, "--config", cfg, "--log-format", "json")
	}
	report := filepath.Join(dir, "report.json")
	fetcher := startEnv(t, dir, "fetcher", sec.as(roleFetcher), bin["fetcher"], "run", "--nats", strings.Join(urls, ","), "--config", cfg, "--wait", "--report", report, "--log-format", "json")

	deadline := time.Now().Add(3 * time.Minute)
	for creations(t, hrURL) < offers/4 {
		if time.Now().After(deadline) {
			t.Fatal("no progress after 3 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%.1fs: %d jobs created: SIGKILL nats-2", time.Since(began).Seconds(), creations(t, hrURL))
	if err := nodes[1].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := wait(fetcher, 4*time.Minute); err != nil {
		t.Fatalf("fetcher --wait: %v\n%s", err, tail(dir, "fetcher"))
	}
	var r runstatus.Report
	if b, err := os.ReadFile(report); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if e := r.Events; r.Status != runstatus.StatusSuccess || e.ReadSuccess != offers || e.Created+e.Skipped != offers {
		t.Errorf("report: %s %+v, want success with every offer on the board", r.Status, r.Events)
	}
	live, _ := board(t, hrURL)
	if len(live) != offers {
		t.Errorf("board holds %d live jobs, want %d", len(live), offers)
	}
	if got := hrStats(t, hrURL).Count("POST /job/indexing", 201); got != offers {
		t.Errorf("jobs created %d times, want %d", got, offers)
	}
	sec.checkNoViolation(t)
	t.Logf("run %s on three nodes, one killed: %s in %.1fs", r.RunID, r.Status, r.DurationSeconds)
}

// clusterConf rewrites deploy/nats/node-<i+1>.conf for the test's ports,
// store directory and certificates (the same for every node: they are all
// on loopback).
func clusterConf(t *testing.T, i int, ports [][3]int, store string, certs natstest.Certs) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "nats", fmt.Sprintf("node-%d.conf", i+1)))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	// Deploy ports: client 4222+i, cluster 6222+i, http 8222+i.
	for j := range 3 {
		conf = strings.ReplaceAll(conf, fmt.Sprintf("127.0.0.1:%d", 4222+j), fmt.Sprintf("127.0.0.1:%d", ports[j][0]))
		conf = strings.ReplaceAll(conf, fmt.Sprintf("127.0.0.1:%d", 6222+j), fmt.Sprintf("127.0.0.1:%d", ports[j][1]))
		conf = strings.ReplaceAll(conf, fmt.Sprintf("127.0.0.1:%d", 8222+j), fmt.Sprintf("127.0.0.1:%d", ports[j][2]))
	}
	conf = regexp.MustCompile(`store_dir: \S+`).ReplaceAllString(conf, "store_dir: "+store)
	tls := "/etc/pulljobs/nats/tls/"
	conf = strings.NewReplacer(fmt.Sprintf("%snode-%d.pem", tls, i+1), certs.Cert, fmt.Sprintf("%snode-%d-key.pem", tls, i+1), certs.Key,
		tls+"ca.pem", certs.CA).Replace(conf)
	if strings.Contains(conf, tls) {
		t.Fatalf("node-%d.conf: certificates of %s the test does not know:\n%s", i+1, tls, conf)
	}
	return conf
}

// waitHealthy waits until every node is healthy, JetStream's meta layer
// included, and the meta leader sees both other peers: before that,
// replicated streams cannot be placed.
func waitHealthy(t *testing.T, ports [][3]int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	get := func(port int, path string, v any) error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(v)
	}
	for _, p := range ports {
		for {
			var health struct{ Status string }
			var jsz struct {
				Meta struct {
					Leader   string `json:"leader"`
					Replicas []struct {
						Current bool `json:"current"`
					} `json:"replicas"`
				} `json:"meta_cluster"`
			}
			if get(p[2], "/healthz", &health) == nil && health.Status == "ok" &&
				get(p[2], "/jsz", &jsz) == nil && jsz.Meta.Leader != "" && len(jsz.Meta.Replicas) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node on port %d not healthy after 60s: %+v %+v", p[0], health, jsz)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestDeployFiles checks what deploy/ ships: the example configuration reads
// and validates, and the NATS node configurations pass nats-server's own check.
func TestDeployFiles(t *testing.T) {
	env := map[string]string{"FT_CLIENT_ID": "id", "FT_CLIENT_SECRET": "s", "HRFLOW_API_SECRET": "ask_x",
		"HRFLOW_API_USER": "me@example.com", "HRFLOW_BOARD_KEY": strings.Repeat("0", 40)}
	f, err := os.Open(filepath.Join("..", "..", "deploy", "pulljobs.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := config.Parse(f, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(config.RoleAll); err != nil {
		t.Fatal(err)
	}
}
