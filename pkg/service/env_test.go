package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/service/servicetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// net/http keeps idle keep-alive connections of httptest servers.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

// testPipeline is the pipeline section of every test profile, and the
// settings of the test's workers: the fleet's settings are one.
const testPipeline = `
pipeline:
  ack_wait: 2s
  lease_ttl: 4s
  drain_timeout: 2s
`

var testSettings = pipeline.Settings{AckWait: 2 * time.Second, LeaseTTL: 4 * time.Second, DrainTimeout: 2 * time.Second}

// env is a fleet on one machine and a directory of profiles pointing at
// its emulators.
type env struct {
	*servicetest.Fleet
	t   *testing.T
	dir string
}

func logger(t *testing.T) *slog.Logger {
	if testing.Verbose() && os.Getenv("PULLJOBS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

func newEnv(t *testing.T, offers int) *env {
	t.Helper()
	e := &env{Fleet: servicetest.New(t, servicetest.Options{Offers: offers, Seed: 1}), t: t, dir: t.TempDir()}
	t.Setenv("PULLJOBS_TEST_FT_SECRET", francetravailtest.DefaultClientSecret)
	return e
}

// profile writes DIR/name.yaml: the sandbox's configuration, then extra.
func (e *env) profile(name, extra string) {
	e.t.Helper()
	yaml := fmt.Sprintf(`origin_parameters:
  client_id: %s
  client_secret: ${PULLJOBS_TEST_FT_SECRET}
  api_base_url: %s
  token_url: %s
  rate_limit: 0
target_parameters:
  board_key: %s
%s%s`, francetravailtest.DefaultClientID, francetravailtest.APIBaseURL(e.FTURL), francetravailtest.TokenURL(e.FTURL),
		hrflowtest.DefaultBoardKey, testPipeline, extra)
	if err := os.WriteFile(filepath.Join(e.dir, name+".yaml"), []byte(yaml), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// workers runs a formatter and a pusher with the profiles' settings until
// the returned stop.
func (e *env) workers() (p *pipeline.Pipeline, stop func()) {
	e.t.Helper()
	p = e.Pipeline(pipeline.Options{Settings: testSettings, Logger: logger(e.t)})
	return p, e.Workers(p)
}

// serve starts a replica on the profiles until the returned stop, which
// stops it gracefully and waits for it.
func (e *env) serve(o Options) (*Service, func()) {
	e.t.Helper()
	o.ProfilesDir, o.Logger = e.dir, logger(e.t)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, e.Conn(), o)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Run: %v", err)
		}
		s.Close()
	}
	e.t.Cleanup(stop)
	waitFor(e.t, "the micro service", func() bool {
		_, err := e.Conn().Request("$SRV.PING."+ServiceName, nil, time.Second)
		return err == nil
	})
	return s, stop
}

// request sends a request to the service and returns its reply, or the
// micro error's code and description.
func request(t *testing.T, nc *nats.Conn, subject, body string) (reply RunReply, code, desc string) {
	t.Helper()
	m, err := nc.Request(subject, []byte(body), 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	if code := m.Header.Get("Nats-Service-Error-Code"); code != "" {
		return reply, code, m.Header.Get("Nats-Service-Error")
	}
	if err := json.Unmarshal(m.Data, &reply); err != nil {
		t.Fatalf("reply %s: %v", m.Data, err)
	}
	return reply, "", ""
}

// waitReport waits for run's report.
func waitReport(t *testing.T, p *pipeline.Pipeline, run string) runstatus.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stuckAfter)
	defer cancel()
	r, err := p.Wait(ctx, run, nil)
	if err != nil {
		t.Fatalf("wait for run %s: %v", run, err)
	}
	return r
}

// stuckAfter bounds every wait of these tests: far beyond what any of them
// needs on a loaded machine, so that passing it means a hang, not slowness.
const stuckAfter = time.Minute

// waitFor polls cond until it holds, and fails the test as stuck past
// stuckAfter.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(stuckAfter)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("stuck: still waiting for %s after %v", what, stuckAfter)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deadLetters returns the refused triggers on the dead-letter stream.
func deadLetters(t *testing.T, js jetstream.JetStream) []runstatus.DeadLetter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, _, err := runstatus.ReadDeadLetters(ctx, js, runstatus.DeadLetterSubjectPrefix+TriggerStage+".*", 0)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatal(err)
	}
	return l
}
