package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecuredCost measures what TLS and authentication cost: the same run
// of PULLJOBS_SECURED_COST synthetic offers, on a deployment of its own
// (nats-server, pulljobs sandbox, a formatter, a pusher and `fetcher run
// --wait`, each a process), on a nats-server without users nor TLS, on
// deploy/nats/standalone.conf (each binary as its role), and on it with
// TLS for clients. It prints the CPU seconds of each process and the
// ratios of the totals to the first's, the sandbox left out (it stands in
// for the APIs). The sandbox does the same work in every run: the totals
// are also given per second of its CPU, which takes out most of a shared
// machine's drift from one run to the next. With PULLJOBS_SECURED_ROUNDS=N
// it measures N rounds, each in another order, and prints the medians.
//
//	PULLJOBS_NATS_SERVER=/work/bin/nats-server PULLJOBS_SECURED_COST=20000 PULLJOBS_SECURED_ROUNDS=3 go test ./cmd/pulljobs -run TestSecuredCost -v -timeout 30m
func TestSecuredCost(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PULLJOBS_SECURED_COST"))
	if n <= 0 {
		t.Skip("set PULLJOBS_SECURED_COST=20000 to measure the cost of TLS and authentication on a run of that size")
	}
	rounds := 1
	if v := os.Getenv("PULLJOBS_SECURED_ROUNDS"); v != "" {
		var err error
		if rounds, err = strconv.Atoi(v); err != nil || rounds <= 0 {
			t.Fatalf("PULLJOBS_SECURED_ROUNDS=%s: want a number of rounds", v)
		}
	}
	dir := t.TempDir()
	bin := buildBinaries(t, dir)
	modes := []securedMode{plainNATS, rolesNATS, rolesTLSNATS}
	cpu, perSandbox, walls := map[securedMode][]float64{}, map[securedMode][]float64{}, map[securedMode][]float64{}
	for round := range rounds {
		for i := range modes {
			m := modes[(round+i)%len(modes)]
			r := securedRun(t, dir, bin, n, m, fmt.Sprintf("%d-%d", round, m))
			cpu[m], walls[m] = append(cpu[m], r.cpu), append(walls[m], r.wall)
			perSandbox[m] = append(perSandbox[m], r.cpu/r.sandbox)
		}
		t.Logf("round %d: CPU %.2f s plain, %.2f s with roles (%.2f ×), %.2f s with roles and TLS (%.2f ×); per second of the sandbox's: %.2f, %.2f (%.2f ×), %.2f (%.2f ×)", round+1,
			cpu[plainNATS][round], cpu[rolesNATS][round], cpu[rolesNATS][round]/cpu[plainNATS][round],
			cpu[rolesTLSNATS][round], cpu[rolesTLSNATS][round]/cpu[plainNATS][round],
			perSandbox[plainNATS][round], perSandbox[rolesNATS][round], perSandbox[rolesNATS][round]/perSandbox[plainNATS][round],
			perSandbox[rolesTLSNATS][round], perSandbox[rolesTLSNATS][round]/perSandbox[plainNATS][round])
	}
	p, r, s := median(cpu[plainNATS]), median(cpu[rolesNATS]), median(cpu[rolesTLSNATS])
	pp, rp, sp := median(perSandbox[plainNATS]), median(perSandbox[rolesNATS]), median(perSandbox[rolesTLSNATS])
	t.Logf("%d offers, medians of %d: CPU of nats-server, fetcher, formatter and pusher %.2f s plain, %.2f s with roles (%.2f ×), %.2f s with roles and TLS (%.2f ×); per second of the sandbox's CPU %.2f, %.2f (%.2f ×), %.2f (%.2f ×); wall %.1f, %.1f and %.1f s",
		n, rounds, p, r, r/p, s, s/p, pp, rp, rp/pp, sp, sp/pp, median(walls[plainNATS]), median(walls[rolesNATS]), median(walls[rolesTLSNATS]))
}

// securedMode is how a run of TestSecuredCost reaches NATS.
type securedMode int

const (
	plainNATS    securedMode = iota // no users, no TLS
	rolesNATS                       // standalone.conf: each binary as its role
	rolesTLSNATS                    // and TLS for clients
)

func (m securedMode) String() string {
	return [...]string{"plain", "roles", "roles and TLS"}[m]
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// securedMeasure is what securedRun measured, in seconds: the CPU of every
// process but the sandbox, the sandbox's, and the run's wall time.
type securedMeasure struct{ cpu, sandbox, wall float64 }

// securedRun runs n offers on a deployment of its own, reaching NATS as
// mode says, logs each process's CPU seconds, and returns the measure.
func securedRun(t *testing.T, parent string, bin map[string]string, n int, mode securedMode, name string) (m securedMeasure) {
	t.Helper()
	dir, err := os.MkdirTemp(parent, name+"-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(filepath.Join(dir, "nats"))
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	var sec *secured
	as := func(string) []string { return nil }
	var server *exec.Cmd
	if mode != plainNATS {
		sec = newSecured(t, dir, mode == rolesTLSNATS)
		conf := sec.standalone(t, port, freePort(t))
		if mode == rolesTLSNATS {
			b, err := os.ReadFile(conf)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, conf, string(b)+fmt.Sprintf("\ntls {\n  cert_file: %s\n  key_file: %s\n}\n", sec.certs.Cert, sec.certs.Key))
			url = fmt.Sprintf("tls://127.0.0.1:%d", port)
		}
		server = sec.startServer(t, bin, "nats", conf)
		as = sec.as
	} else {
		server = start(t, dir, "nats", bin["nats-server"], "-js", "-sd", filepath.Join(dir, "nats"), "-a", "127.0.0.1", "-p", fmt.Sprint(port))
	}
	waitPort(t, port)
	sb, ftURL, hrURL := spawnSandbox(t, dir, bin, "--synthetic", fmt.Sprint(n), "--seed", "13")
	cfg := sandboxConfig(t, dir, ftURL, hrURL, "  retention: 1h\n")
	formatter := startEnv(t, dir, "formatter", as(roleFormatter), bin["formatter"], "--nats", url, "--config", cfg, "--log-level", "warn")
	pusher := startEnv(t, dir, "pusher", as(rolePusher), bin["pusher"], "--nats", url, "--config", cfg, "--log-level", "warn")
	report := filepath.Join(dir, "report.json")
	began := time.Now()
	fetcher := startEnv(t, dir, "fetcher", as(roleFetcher), bin["fetcher"], "run", "--nats", url, "--config", cfg, "--wait", "--report", report, "--log-level", "warn")
	if err := wait(fetcher, 10*time.Minute); err != nil {
		t.Fatalf("fetcher: %v\n%s", err, tail(dir, "fetcher"))
	}
	m.wall = time.Since(began).Seconds()
	if r := readReport(t, report); r.Events.Created != n {
		t.Fatalf("%d offers: report says %d created: %+v", n, r.Events.Created, r.Events)
	}
	if sec != nil {
		sec.checkNoViolation(t)
	}
	var line []string
	for _, p := range []struct {
		name string
		cmd  *exec.Cmd
	}{{"fetcher", fetcher}, {"formatter", formatter}, {"pusher", pusher}, {"nats-server", server}, {"sandbox", sb}} {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			if err := wait(p.cmd, time.Minute); err != nil && p.cmd.ProcessState == nil {
				t.Fatalf("%s: %v", p.name, err)
			}
		}
		s := (p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()).Seconds()
		if p.name == "sandbox" {
			m.sandbox = s
		} else {
			m.cpu += s
		}
		line = append(line, fmt.Sprintf("%s %.2f s", p.name, s))
	}
	t.Logf("%s, %d offers in %.1f s: CPU %s; %.2f s without the sandbox", mode, n, m.wall, strings.Join(line, ", "), m.cpu)
	return m
}
