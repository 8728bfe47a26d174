package deploy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/statuspage"
)

// metricsAPIValue reads a value as KEDA's metrics-api scaler does: GET the
// trigger's URL (its host replaced by the test's server), decode the JSON,
// and follow valueLocation's dotted path (kedacore/keda,
// pkg/scalers/metrics_api_scaler.go, GJSON). A path that leads nowhere
// fails the test: KEDA would fail to scale.
func metricsAPIValue(t *testing.T, server, rawURL, location string) float64 {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(server + u.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u.Path, resp.Status)
	}
	var v any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("GET %s: %v", u.Path, err)
	}
	for _, key := range strings.Split(location, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("GET %s: valueLocation %s: no object at %s", u.Path, location, key)
		}
		if v, ok = obj[key]; !ok {
			t.Fatalf("GET %s: valueLocation %s: no key %s in %v", u.Path, location, key, obj)
		}
	}
	n, ok := v.(float64)
	if !ok {
		t.Fatalf("GET %s: valueLocation %s: %v is not a number", u.Path, location, v)
	}
	return n
}

// startNATS starts a JetStream server on loopback.
func startNATS(t *testing.T) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		ServerName: "deploy-test",
		JetStream:  true,
		StoreDir:   t.TempDir(),
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// scalers is what KEDA would compute for each ScaledObject.
type scalers struct {
	t      *testing.T
	m      *manifests
	server string // fetcher serve's HTTP, for the triggers' URLs
}

// active returns, for each ScaledObject, whether KEDA would activate it
// (some trigger's lag above its activationLagThreshold), and the lags.
func (s scalers) active() (map[string]bool, map[string][]float64) {
	s.t.Helper()
	active, lags := map[string]bool{}, map[string][]float64{}
	for name, so := range s.m.scaledObjects {
		for _, tr := range so.Spec.Triggers {
			lag := metricsAPIValue(s.t, s.server, tr.Metadata["url"], tr.Metadata["valueLocation"])
			threshold, _ := strconv.ParseFloat(tr.Metadata["activationTargetValue"], 64)
			active[name] = active[name] || lag > threshold
			lags[name] = append(lags[name], lag)
		}
	}
	return active, lags
}

// byBinary returns the name of the ScaledObject that scales the
// Deployment running binary.
func (s scalers) byBinary(binary string) string {
	for name, so := range s.m.scaledObjects {
		if d, ok := s.m.deployments[so.Spec.ScaleTargetRef.Name]; ok {
			c := d.Spec.Template.Spec.Containers[0]
			if filepath.Base(append(slices.Clone(c.Command), c.Args...)[0]) == binary {
				return name
			}
		}
	}
	s.t.Fatalf("no ScaledObject scales %s", binary)
	return ""
}

// TestScalersReadLiveBacklog declares the pipeline's topology on a live
// server, as every worker does at start, then checks that KEDA reading
// fetcher serve's /backlog finds each ScaledObject's value, keeps every
// worker at zero while nothing waits, wakes the formatters (and the
// pushers) when a run is published, and the pushers when the formatters
// have turned its offers into jobs.
func TestScalersReadLiveBacklog(t *testing.T) {
	m := readManifests(t)
	ns := startNATS(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := pipeline.New(ctx, nc, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	backlog := httptest.NewServer(statuspage.BacklogHandler(js, nil))
	defer backlog.Close()
	s := scalers{t: t, m: m, server: backlog.URL}
	formatter, pusher := s.byBinary("formatter"), s.byBinary("pusher")

	active, lags := s.active()
	for name := range m.scaledObjects {
		if active[name] {
			t.Errorf("before any run: ScaledObject %s active (lags %v): its workers would never scale to zero", name, lags[name])
		}
	}

	const offers = 40
	run := publishRun(ctx, t, p, offers)
	active, lags = s.active()
	if !active[formatter] || !active[pusher] {
		t.Errorf("run %s published (%d offers): active %v (lags %v), want the formatters and pushers woken", run, offers, active, lags)
	}

	workers, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.RunFormatter(workers) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		active, lags = s.active()
		if !active[formatter] && active[pusher] {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("formatters running for 30 s: active %v (lags %v), want the formatter ScaledObject idle and the pusher one active", active, lags)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("formatter: %v", err)
	}
	t.Logf("after formatting: lags %v", lags)
}

// publishRun fetches a run of n offers from a France Travail emulator and
// publishes it, as the fetcher does; no formatter or pusher runs.
func publishRun(ctx context.Context, t *testing.T, p *pipeline.Pipeline, n int) string {
	t.Helper()
	corpus, err := francetravailtest.Offers(francetravailtest.SyntheticOffers(n, 1, francetravailtest.SyntheticOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	ft, err := francetravailtest.New(francetravailtest.Config{Corpus: corpus})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ft)
	defer srv.Close()
	search, err := francetravail.NewClient(francetravail.Config{
		ClientID: francetravailtest.DefaultClientID, ClientSecret: francetravailtest.DefaultClientSecret,
		APIBaseURL: francetravailtest.APIBaseURL(srv.URL), TokenURL: francetravailtest.TokenURL(srv.URL),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer search.CloseIdleConnections()
	run, err := p.Fetch(ctx, pipeline.RunSpec{
		BoardKey:     hrflowtest.DefaultBoardKey,
		Sync:         true,
		SyncMaxShare: pipeline.DefaultSyncMaxShare,
		Action:       format.Spec{Format: format.FormatSpec{Name: format.NamePoleEmploi}},
	}, search, pipeline.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return run
}
