package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
)

// jszResponse is what KEDA's nats-jetstream scaler decodes from the
// monitoring endpoint's /jsz (kedacore/keda, pkg/scalers/
// nats_jetstream_scaler.go): the same fields, the same JSON names.
type jszResponse struct {
	Accounts []struct {
		Name    string `json:"name"`
		Streams []struct {
			Name  string `json:"name"`
			State struct {
				LastSequence int64 `json:"last_seq"`
			} `json:"state"`
			Consumers []struct {
				Name          string `json:"name"`
				NumAckPending int    `json:"num_ack_pending"`
				NumPending    int    `json:"num_pending"`
				Config        struct {
					DurableName string `json:"durable_name"`
				} `json:"config"`
			} `json:"consumer_detail"`
		} `json:"stream_detail"`
	} `json:"account_details"`
	MetaCluster struct {
		ClusterSize int `json:"cluster_size"`
	} `json:"meta_cluster"`
}

// kedaLag reads a consumer's lag as KEDA's nats-jetstream scaler does:
// the same URL, and pending plus unacknowledged messages. KEDA falls back
// to the stream's last sequence when the consumer is missing, so a scaler
// naming a wrong consumer would scale on the wrong number without an
// error: here a missing stream or consumer fails the test.
func kedaLag(t *testing.T, endpoint, account, stream, consumer string) int64 {
	t.Helper()
	url := fmt.Sprintf("http://%s/jsz?acc=%s&consumers=true&config=true", endpoint, account)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jsz jszResponse
	if err := json.NewDecoder(resp.Body).Decode(&jsz); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	for _, a := range jsz.Accounts {
		if a.Name != account {
			continue
		}
		for _, s := range a.Streams {
			if s.Name != stream {
				continue
			}
			for _, c := range s.Consumers {
				if c.Name == consumer {
					return int64(c.NumPending + c.NumAckPending)
				}
			}
			t.Fatalf("stream %s has no consumer %s on the live server: KEDA would scale on the stream's last sequence (%d)", stream, consumer, s.State.LastSequence)
		}
		t.Fatalf("account %s has no stream %s on the live server", account, stream)
	}
	t.Fatalf("no account %s in %s", account, url)
	return 0
}

// startMonitoredNATS starts a JetStream server on loopback with its HTTP
// monitoring port, what KEDA reads. (pkg/natsembed has no option for a
// monitoring port.)
func startMonitoredNATS(t *testing.T) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		ServerName: "deploy-test",
		JetStream:  true,
		StoreDir:   t.TempDir(),
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		HTTPHost:   "127.0.0.1",
		HTTPPort:   server.RANDOM_PORT,
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
	t        *testing.T
	m        *manifests
	endpoint string
}

// active returns, for each ScaledObject, whether KEDA would activate it
// (some trigger's lag above its activationLagThreshold), and the lags.
func (s scalers) active() (map[string]bool, map[string][]int64) {
	s.t.Helper()
	active, lags := map[string]bool{}, map[string][]int64{}
	for name, so := range s.m.scaledObjects {
		for _, tr := range so.Spec.Triggers {
			lag := kedaLag(s.t, s.endpoint, tr.Metadata["account"], tr.Metadata["stream"], tr.Metadata["consumer"])
			threshold, _ := strconv.ParseInt(tr.Metadata["activationLagThreshold"], 10, 64)
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

// TestScalersReadLiveConsumers declares the pipeline's topology on a live
// server, as every worker does at start, then checks that KEDA reading
// the monitoring endpoint finds each ScaledObject's stream and consumer,
// keeps every worker at zero while nothing waits, wakes the formatters
// (and the pushers) when a run is published, and the pushers when the
// formatters have turned its offers into jobs.
func TestScalersReadLiveConsumers(t *testing.T) {
	m := readManifests(t)
	ns := startMonitoredNATS(t)
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
	s := scalers{t: t, m: m, endpoint: ns.MonitorAddr().String()}
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
