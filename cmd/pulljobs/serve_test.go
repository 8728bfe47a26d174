package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/service"
)

// serveFleet is the deployment of TestServeMultiProcess: a real
// nats-server, the sandbox, a formatter and a pusher, and `fetcher serve`
// replicas on a directory of profiles.
type serveFleet struct {
	t        *testing.T
	dir      string
	bin      map[string]string
	natsURL  string
	profiles string
	cfg      []byte // the sandbox configuration every profile starts from
	nc       *nats.Conn
	js       jetstream.JetStream
}

// TestServeMultiProcess runs fetcher serve as a deployment would, with two
// replicas: a trigger published while no replica ran starts its run when
// they come up; a request starts a run; requests for secrets, endpoints
// and unknown profiles are refused; bad triggers are dead-lettered while
// both replicas stay up; a schedule fires exactly one run per tick across
// the replicas, and still one per tick after one of them is killed.
//
// It needs a nats-server binary ($PULLJOBS_NATS_SERVER, as .ci/run builds
// it) and skips without one; -short skips it too.
func TestServeMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: builds the binaries and runs for a minute")
	}
	if os.Getenv("PULLJOBS_NATS_SERVER") == "" {
		t.Skip("needs a nats-server binary: set PULLJOBS_NATS_SERVER (.ci/run builds one from the pinned module)")
	}
	f := newServeFleet(t)
	f.writeProfile("annecy", "")
	f.writeProfile("broken", "bogus: true\n")

	// The triggers stream exists once a replica ever ran; a trigger
	// published while none runs waits in it.
	first := f.serve("serve-0")
	f.waitReplicas(1)
	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := wait(first, 30*time.Second); err != nil {
		t.Fatalf("serve stopped with SIGTERM: %v, want exit 0\n%s", err, tail(f.dir, "serve-0"))
	}
	f.publish("annecy", "{}", "order-1")
	replica1, replica2 := f.serve("serve-1"), f.serve("serve-2")
	f.waitReplicas(2)
	byTrigger := f.waitRun(runstatus.TriggerEvent, "annecy")
	if st := f.statusJSON(byTrigger.RunID); st.Status != runstatus.StatusSuccess {
		t.Errorf("run by trigger: %+v", st)
	}

	t.Run("request", func(t *testing.T) { f.checkRequest() })
	t.Run("refusals", func(t *testing.T) { f.checkRefusals() })
	t.Run("bad triggers", func(t *testing.T) { f.checkBadTriggers(replica1, replica2) })
	t.Run("schedule", func(t *testing.T) { f.checkSchedule(replica1, replica2) })
}

func newServeFleet(t *testing.T) *serveFleet {
	t.Helper()
	f := &serveFleet{t: t, dir: t.TempDir()}
	f.bin = buildBinaries(t, f.dir)
	natsPort := freePort(t)
	f.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	start(t, f.dir, "nats-server", f.bin["nats-server"], "-js", "-sd", filepath.Join(f.dir, "nats"), "-a", "127.0.0.1", "-p", fmt.Sprint(natsPort))
	waitPort(t, natsPort)
	_, ftURL, hrURL := spawnSandbox(t, f.dir, f.bin, "--synthetic", "30", "--seed", "7")
	cfg := sandboxConfig(t, f.dir, ftURL, hrURL, `
  ack_wait: 2s
  lease_ttl: 4s
  drain_timeout: 2s
  concurrency: 8
`)
	var err error
	if f.cfg, err = os.ReadFile(cfg); err != nil {
		t.Fatal(err)
	}
	f.profiles = filepath.Join(f.dir, "profiles")
	if err := os.Mkdir(f.profiles, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"formatter", "pusher"} {
		start(t, f.dir, w, f.bin[w], "--nats", f.natsURL, "--config", cfg, "--log-format", "json")
	}
	if f.nc, err = nats.Connect(f.natsURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.nc.Close)
	if f.js, err = jetstream.New(f.nc); err != nil {
		t.Fatal(err)
	}
	return f
}

// writeProfile writes the profile name: the sandbox configuration, then
// extra top-level sections.
func (f *serveFleet) writeProfile(name, extra string) {
	f.t.Helper()
	writeFile(f.t, filepath.Join(f.profiles, name+".yaml"), string(f.cfg)+extra)
}

func (f *serveFleet) serve(name string) *exec.Cmd {
	return start(f.t, f.dir, name, f.bin["fetcher"], "serve", "--nats", f.natsURL, "--profiles", f.profiles, "--log-format", "json", "--wait-board", "30s")
}

// replicas counts the replicas that answer a PING of the micro service.
func (f *serveFleet) replicas() int {
	f.t.Helper()
	inbox := nats.NewInbox()
	sub, err := f.nc.SubscribeSync(inbox)
	if err != nil {
		f.t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := f.nc.PublishRequest("$SRV.PING."+service.ServiceName, inbox, nil); err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for {
		if _, err := sub.NextMsg(500 * time.Millisecond); err != nil {
			return n
		}
		n++
	}
}

func (f *serveFleet) waitReplicas(n int) {
	f.t.Helper()
	f.eventually(fmt.Sprintf("%d replicas answering", n), 60*time.Second, func() bool { return f.replicas() == n })
}

func (f *serveFleet) eventually(what string, d time.Duration, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// publish publishes a trigger and checks that the stream stored it.
func (f *serveFleet) publish(profile, body, msgID string) {
	f.t.Helper()
	m := nats.NewMsg(service.TriggerSubjectPrefix + profile)
	m.Data = []byte(body)
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.js.PublishMsg(ctx, m); err != nil {
		f.t.Fatalf("publish a trigger for %s: %v", profile, err)
	}
}

// runs lists the runs, newest first.
func (f *serveFleet) runs() []runstatus.RunStatus {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runs, err := runstatus.ListRuns(ctx, f.js, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return runs
}

// waitRun waits for a finished run of profile started by trigger.
func (f *serveFleet) waitRun(trigger runstatus.Trigger, profile string) runstatus.RunStatus {
	f.t.Helper()
	var found runstatus.RunStatus
	f.eventually("a finished run by "+string(trigger), 60*time.Second, func() bool {
		for _, r := range f.runs() {
			if r.Trigger == trigger && r.Profile == profile && r.FinishedAt != nil {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// statusJSON runs `pulljobs status --json RUN`, as a user would.
func (f *serveFleet) statusJSON(run string) runstatus.RunDetail {
	f.t.Helper()
	out, err := exec.Command(f.bin["pulljobs"], "status", "--nats", f.natsURL, "--json", run).Output()
	if err != nil {
		f.t.Fatalf("pulljobs status --json %s: %v", run, err)
	}
	var d runstatus.RunDetail
	if err := json.Unmarshal(out, &d); err != nil {
		f.t.Fatalf("pulljobs status --json: %v\n%s", err, out)
	}
	return d
}

// request sends a request to the service: its reply, or its error's code
// and description.
func (f *serveFleet) request(profile, body string) (reply service.RunReply, code, desc string) {
	f.t.Helper()
	m, err := f.nc.Request(service.RunSubjectPrefix+profile, []byte(body), 20*time.Second)
	if err != nil {
		f.t.Fatalf("request pulljobs.run.%s: %v", profile, err)
	}
	if code := m.Header.Get("Nats-Service-Error-Code"); code != "" {
		return reply, code, m.Header.Get("Nats-Service-Error")
	}
	if err := json.Unmarshal(m.Data, &reply); err != nil {
		f.t.Fatalf("reply %s: %v", m.Data, err)
	}
	return reply, "", ""
}

func (f *serveFleet) checkRequest() {
	reply, code, desc := f.request("annecy", "{}")
	if code != "" {
		f.t.Fatalf("request refused: %s %s", code, desc)
	}
	f.eventually("the requested run's report", 60*time.Second, func() bool {
		return f.statusJSON(reply.RunID).Report != nil
	})
	if d := f.statusJSON(reply.RunID); d.Status != runstatus.StatusSuccess || d.Trigger != runstatus.TriggerRequest || d.Profile != "annecy" {
		f.t.Errorf("run by request: %s, trigger %q, profile %q", d.Status, d.Trigger, d.Profile)
	}
}

func (f *serveFleet) checkRefusals() {
	for _, tc := range []struct{ profile, body, code, says string }{
		{"annecy", `{"origin_parameters": {"client_secret": "stolen-secret"}}`, service.CodeForbidden, "origin_parameters.client_secret"},
		{"annecy", `{"origin_parameters": {"api_base_url": "https://evil.example.com"}}`, service.CodeForbidden, "origin_parameters.api_base_url"},
		{"annecy", `{"target_parameters": {"api_secret": "stolen-secret"}}`, service.CodeForbidden, "target_parameters"},
		{"nosuch", `{}`, service.CodeNotFound, `unknown profile "nosuch"`},
		{"broken", `{}`, service.CodeNotFound, "bogus"},
	} {
		_, code, desc := f.request(tc.profile, tc.body)
		if code != tc.code || !strings.Contains(desc, tc.says) || strings.Contains(desc, "stolen-secret") || strings.Contains(desc, "evil.example.com") {
			f.t.Errorf("%s %s: %s %q, want %s saying %q (and quoting no refused value)", tc.profile, tc.body, code, desc, tc.code, tc.says)
		}
	}
}

func (f *serveFleet) checkBadTriggers(replicas ...*exec.Cmd) {
	f.publish("nosuch", "{}", "")
	f.publish("annecy", "not json", "")
	f.publish("annecy", `{"origin_parameters": {"client_secret": "stolen-secret"}}`, "")
	var letters []runstatus.DeadLetter
	f.eventually("three dead-lettered triggers", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if letters, _, err = runstatus.ReadDeadLetters(ctx, f.js, runstatus.DeadLetterSubjectPrefix+service.TriggerStage+".*", 0); err != nil {
			f.t.Fatal(err)
		}
		return len(letters) == 3
	})
	want := map[string]string{"unknown profile": "pulljobs.dlq.trigger.nosuch", "unreadable request": "pulljobs.dlq.trigger.annecy", "client_secret": "pulljobs.dlq.trigger.annecy"}
	for says, subject := range want {
		if !slices.ContainsFunc(letters, func(l runstatus.DeadLetter) bool { return strings.Contains(l.Reason, says) && l.Subject == subject }) {
			f.t.Errorf("no dead letter on %s saying %q: %+v", subject, says, letters)
		}
	}
	for _, r := range replicas {
		if r.ProcessState != nil {
			f.t.Errorf("replica %d exited: %v", r.Process.Pid, r.ProcessState)
		}
	}
	if n := f.replicas(); n != 2 {
		f.t.Errorf("%d replicas answer after bad triggers, want 2", n)
	}
}

// tickClaim is what the schedules bucket says of a tick.
type tickClaim struct {
	RunID   string `json:"run_id"`
	By      string `json:"claimed_by"`
	Resumed bool   `json:"resumed"`
}

// ticks reads the claims of the ticker profile's ticks, by tick.
func (f *serveFleet) ticks() map[int64]tickClaim {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := f.js.KeyValue(ctx, service.SchedulesBucket)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[int64]tickClaim{}
	l, err := kv.ListKeysFiltered(ctx, "ticker.*")
	if err != nil {
		f.t.Fatal(err)
	}
	for k := range l.Keys() {
		tick, err := strconv.ParseInt(strings.TrimPrefix(k, "ticker."), 10, 64)
		if err != nil {
			continue // ticker.last
		}
		e, err := kv.Get(ctx, k)
		if err != nil {
			f.t.Fatal(err)
		}
		var c tickClaim
		if err := json.Unmarshal(e.Value(), &c); err != nil {
			f.t.Fatal(err)
		}
		out[tick] = c
	}
	return out
}

// checkSchedule adds a scheduled profile, SIGHUPs the replicas, and checks
// a few ticks; then kills one replica and checks a few more.
func (f *serveFleet) checkSchedule(replicas ...*exec.Cmd) {
	f.writeProfile("ticker", "schedule:\n  cron: '@every 2s'\n")
	for _, r := range replicas {
		if err := r.Process.Signal(syscall.SIGHUP); err != nil {
			f.t.Fatal(err)
		}
	}
	victim := replicas[0]
	f.eventually("4 ticks", time.Minute, func() bool { return len(f.ticks()) >= 4 })
	before := len(f.ticks())
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		f.t.Fatal(err)
	}
	_ = wait(victim, 10*time.Second)
	f.eventually("4 more ticks after SIGKILL of a replica", time.Minute, func() bool { return len(f.ticks()) >= before+4 })

	// Every tick claimed names a run that exists, and no tick started two.
	// The schedule ticks on meanwhile: only the ticks up to the last one
	// claimed now are counted, and the runs are listed before the claims are
	// read, so that every run counted has its claim read.
	upTo := slices.Max(slices.Collect(maps.Keys(f.ticks())))
	const idTime = len("20060102T150405000Z") // a run id begins with its time, a tick's run with its tick
	lastID := pipeline.NewRunID(time.Unix(upTo, 0))[:idTime]
	var (
		claims  map[int64]tickClaim
		byRun   map[string]int
		missing []int64
	)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		runs := f.runs()
		claims, byRun, missing = f.ticks(), map[string]int{}, nil
		for _, r := range runs {
			if r.Profile == "ticker" && r.Trigger == runstatus.TriggerSchedule && len(r.RunID) >= idTime && r.RunID[:idTime] <= lastID {
				byRun[r.RunID]++
			}
		}
		maps.DeleteFunc(claims, func(tick int64, _ tickClaim) bool { return tick > upTo })
		for tick, c := range claims {
			if byRun[c.RunID] == 0 {
				missing = append(missing, tick)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("stuck: ticks %v name runs that never started (claims %+v)", missing, claims)
		}
	}
	var ticks []int64
	fresh := 0
	for tick, c := range claims {
		ticks = append(ticks, tick)
		if !c.Resumed {
			fresh++
		}
	}
	slices.Sort(ticks)
	if len(byRun) != fresh {
		f.t.Errorf("%d scheduled runs for %d ticks that started their own (claims %+v): want exactly one run per tick", len(byRun), fresh, claims)
	}
	f.t.Logf("%d ticks over %ds, %d runs; a replica killed after tick %d", len(ticks), ticks[len(ticks)-1]-ticks[0], len(byRun), ticks[before-1])
}
