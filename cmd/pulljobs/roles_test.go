package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/boardindex"
	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/ratelimit"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/service"
)

// rolesFleet is TestRoles's deployment: nats-server on the shipped
// deploy/nats/standalone.conf, the sandbox, and each binary as its role.
type rolesFleet struct {
	t            *testing.T
	dir          string
	bin          map[string]string
	sec          *secured
	url          string
	ftURL, hrURL string
	cfg          string
	status       jetstream.JetStream // the test's eyes: the status role's
}

// TestRoles runs pulljobs on deploy/nats/standalone.conf, whose users and
// permissions are deploy/nats/pulljobs-auth.conf, each binary given only
// NATS_USER and NATS_PASSWORD of its role: a whole run (its fetcher killed
// mid-fetch and started again), pulljobs status as status, a run
// requested by the trigger role through fetcher serve, a run whose items
// fail at the formatter and at the pusher, and a trigger. NATS must refuse
// none of what they do: a missing permission fails the test with the
// subjects the server refused. Then the operations no role may do are
// tried, each refused by the server, and nothing changes.
func TestRoles(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: builds the binaries and runs for a minute")
	}
	const (
		offers = 2000
		stale  = 10
	)
	f := &rolesFleet{t: t, dir: t.TempDir()}
	f.bin = buildBinaries(t, f.dir)
	f.sec = newSecured(t, f.dir, false)
	f.sec.explainOnFailure(t)
	port := freePort(t)
	f.sec.startServer(t, f.bin, "nats", f.sec.standalone(t, port, freePort(t)))
	waitPort(t, port)
	f.url = fmt.Sprintf("nats://127.0.0.1:%d", port)
	_, f.ftURL, f.hrURL = spawnSandbox(t, f.dir, f.bin, "--synthetic", fmt.Sprint(offers), "--seed", "21", "--stale-jobs", fmt.Sprint(stale))
	f.cfg = sandboxConfig(t, f.dir, f.ftURL, f.hrURL, `
  ack_wait: 5s
  lease_ttl: 10s
  drain_timeout: 5s
  concurrency: 8
`)
	// HrFlow's rate limit, shared by the pushers through NATS, and learned:
	// its counters and its curve are used.
	setHrFlowRate(t, f.cfg, "auto")
	c, err := f.sec.connect(t, f.url, roleStatus, "")
	if err != nil {
		t.Fatal(err)
	}
	if f.status, err = jetstream.New(c.nc); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"formatter-1", "formatter-2", "pusher-1", "pusher-2"} {
		f.startAs(name, f.bin[roleOf(name)], "--nats", f.url, "--config", f.cfg, "--log-format", "json")
	}

	t.Run("a run, each binary as its role", func(t *testing.T) { f.checkRun(t, offers, stale) })
	t.Run("status reads as status", func(t *testing.T) { f.checkStatus(t) })
	t.Run("serve runs what the trigger role asks", func(t *testing.T) { f.checkServe(t) })
	f.sec.checkNoViolation(t)
	t.Run("refused", func(t *testing.T) { f.checkRefusals(t) })
}

// startAs starts a binary as the role its process name says.
func (f *rolesFleet) startAs(name, binary string, args ...string) {
	f.t.Helper()
	startEnv(f.t, f.dir, name, f.sec.as(roleOf(name)), binary, args...)
}

// checkRun runs the fetcher as fetcher, kills it mid-fetch and starts it
// again: it resumes the run, reading what it published and recorded, and
// the run completes as an undisturbed one would.
func (f *rolesFleet) checkRun(t *testing.T, offers, stale int) {
	// Slow pages, so that the kill lands in the fetch.
	setFaults(t, f.ftURL, emulator.Config{Latency: emulator.Duration(150 * time.Millisecond)})
	report := filepath.Join(f.dir, "report.json")
	args := []string{"run", "--nats", f.url, "--config", f.cfg, "--wait", "--report", report, "--log-format", "json"}
	first := startEnv(t, f.dir, "fetcher", f.sec.as(roleFetcher), f.bin["fetcher"], args...)
	deadline := time.Now().Add(2 * time.Minute)
	for published := uint64(0); published < uint64(offers/5); published = f.streamMsgs(rs.OffersStream) {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d offers published after 2 minutes", offers/5)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = wait(first, 10*time.Second)
	runs := f.runs(t)
	if len(runs) != 1 || runs[0].Progress == nil || runs[0].Progress.Sealed {
		t.Fatalf("after the kill: runs %+v, want one unsealed run: the kill must land in the fetch", runs)
	}
	setFaults(t, f.ftURL, emulator.Config{})
	again := startEnv(t, f.dir, "fetcher.2", f.sec.as(roleFetcher), f.bin["fetcher"], args...)
	if err := wait(again, 4*time.Minute); err != nil {
		t.Fatalf("fetcher run --wait, started again: %v\n%s", err, tail(f.dir, "fetcher.2"))
	}
	r := readReport(t, report)
	if e := r.Events; r.RunID != runs[0].RunID || r.Status != rs.StatusSuccess || e.ReadSuccess != offers || e.Created+e.Skipped != offers {
		t.Errorf("report: run %s, %s, %+v; want run %s, success, %d offers read and created", r.RunID, r.Status, r.Events, runs[0].RunID, offers)
	}
	if !r.Sync.Performed || r.Sync.Archived != stale {
		t.Errorf("sync %+v, want %d archived", r.Sync, stale)
	}
	if live, _ := board(t, f.hrURL); len(live) != offers {
		t.Errorf("board holds %d live jobs, want %d", len(live), offers)
	}

	// A replay reads the offers the run stored.
	replay := filepath.Join(f.dir, "replay.json")
	cmd := startEnv(t, f.dir, "fetcher-replay", f.sec.as(roleFetcher), f.bin["fetcher"], "run", "--nats", f.url, "--config", f.cfg,
		"--replay", r.RunID, "--wait", "--report", replay, "--log-format", "json")
	if err := wait(cmd, 2*time.Minute); err != nil {
		t.Fatalf("fetcher run --replay: %v\n%s", err, tail(f.dir, "fetcher-replay"))
	}
	if rr := readReport(t, replay); rr.Status != rs.StatusSuccess || rr.Fetch == nil || rr.Fetch.ReplayOf != r.RunID || rr.Events.ReadSuccess != offers {
		t.Errorf("replay of %s: %s, fetch %+v, %+v; want success with its %d offers", r.RunID, rr.Status, rr.Fetch, rr.Events, offers)
	}
}

// runs lists the runs, newest first, as the status role reads them.
func (f *rolesFleet) runs(t *testing.T) []rs.RunStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runs, err := rs.ListRuns(ctx, f.status, 0)
	if err != nil {
		t.Fatalf("list runs as status: %v", err)
	}
	return runs
}

// streamMsgs is the number of messages stream holds; 0 while it does not
// exist.
func (f *rolesFleet) streamMsgs(stream string) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := f.status.Stream(ctx, stream)
	if err != nil {
		return 0
	}
	return s.CachedInfo().State.Msgs
}

// checkStatus runs pulljobs status as status: the list, and one run.
func (f *rolesFleet) checkStatus(t *testing.T) {
	runs := f.runs(t)
	if len(runs) == 0 {
		t.Fatal("no run to show")
	}
	code, out, errOut := f.pulljobs(t, roleStatus, "status", "--nats", f.url, "--json", runs[0].RunID)
	var d rs.RunDetail
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil || d.Report == nil || d.Report.Status != rs.StatusSuccess {
		t.Errorf("status RUN as status: exit %d, %s %s; want the run's report", code, out, errOut)
	}
	if code, out, errOut := f.pulljobs(t, roleStatus, "status", "--nats", f.url); code != 0 || !strings.Contains(out, runs[0].RunID) {
		t.Errorf("status as status: exit %d, %s %s; want the run listed", code, out, errOut)
	}
	if code, out, errOut := f.pulljobs(t, roleStatus, "status", "--nats", f.url, "--boards"); code != 0 || !strings.Contains(out, runs[0].RunID) {
		t.Errorf("status --boards as status: exit %d, %s %s; want the board and its last run", code, out, errOut)
	}
}

// pulljobs runs the pulljobs binary as role, and returns its exit code and
// output.
func (f *rolesFleet) pulljobs(t *testing.T, role string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.bin["pulljobs"], args...)
	cmd.Env = append(sandboxEnv(), f.sec.as(role)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("pulljobs %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// failingProfile makes of a configuration the profile "failing": some
// offers fail at the formatter (a logic's error), some jobs at the pusher
// (HrFlow refuses a job without a name, and update_content makes the
// pusher write the jobs the board holds already). Synthetic offer ids end
// with a letter, or a digit for a partner's.
func failingProfile(cfg string) string {
	return strings.Replace(cfg, "target_parameters:\n", "target_parameters:\n  update_content: true\n", 1) + failingLogics
}

const failingLogics = `action_parameters:
  logics:
    - name: refuse_some
      jq: 'if (.reference | test("[AB]$")) then error("refused by the test") else . end'
    - name: nameless_some
      jq: 'if (.reference | test("[CD]$")) then del(.name) else . end'
`

// checkServe starts fetcher serve as serve; the trigger role requests a run
// of a profile, then one of a profile whose items fail, and publishes a
// trigger: each run completes, and the failures end as dead letters that
// status reads.
func (f *rolesFleet) checkServe(t *testing.T) {
	profiles := filepath.Join(f.dir, "profiles")
	if err := os.Mkdir(profiles, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(profiles, "annecy.yaml"), string(cfg))
	writeFile(t, filepath.Join(profiles, "failing.yaml"), failingProfile(string(cfg)))
	page := freePort(t)
	serve := startEnv(t, f.dir, "serve-1", f.sec.as(roleServe), f.bin["fetcher"], "serve", "--nats", f.url, "--profiles", profiles,
		"--http", fmt.Sprintf("127.0.0.1:%d", page), "--log-format", "json")
	trigger, err := f.sec.connect(t, f.url, roleTrigger, "")
	if err != nil {
		t.Fatalf("connect as trigger: %v", err)
	}

	run := f.request(t, trigger, "annecy")
	if d := f.awaitReport(t, run); d.Report.Status != rs.StatusSuccess || d.Trigger != rs.TriggerRequest {
		t.Errorf("run %s requested by the trigger role: %s, trigger %s; want success, request", run, d.Report.Status, d.Trigger)
	}

	run = f.request(t, trigger, "failing")
	d := f.awaitReport(t, run)
	e := d.Report.Events
	if d.Report.Status != rs.StatusSuccessWithFailures || e.LogicsFailure == 0 || e.WriteFailure == 0 {
		t.Errorf("run %s of the failing profile: %s, %+v; want success with failures, logics and write failures", run, d.Report.Status, e)
	}
	code, out, _ := f.pulljobs(t, roleStatus, "status", "--nats", f.url, "--json", run)
	var shown rs.RunDetail
	if err := json.Unmarshal([]byte(out), &shown); code != 0 || err != nil {
		t.Fatalf("status RUN as status: exit %d, %v\n%s", code, err, out)
	}
	stages := map[string]int{}
	for _, l := range shown.DeadLetters {
		stages[l.Stage]++
	}
	// status prints the first hundred dead letters of a run, and counts them all.
	if want := e.LogicsFailure + e.WriteFailure; shown.DeadLetterCount != want || stages[rs.FormatterConsumer] == 0 || stages[rs.PusherConsumer] == 0 {
		t.Errorf("dead letters: %d, by stage %v among those shown; want %d, of the formatter and of the pusher", shown.DeadLetterCount, stages, want)
	}

	js, err := jetstream.New(trigger.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m := nats.NewMsg(service.TriggerSubjectPrefix + "annecy")
	m.Data = []byte("{}")
	m.Header.Set(jetstream.MsgIDHeader, "roles-order-1")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("publish a trigger as trigger: %v", err)
	}
	f.eventually(t, "the trigger's run", 2*time.Minute, func() bool { return f.finished(t, rs.TriggerEvent) > 0 })

	// A trigger of no profile is refused, and status lists it.
	m = nats.NewMsg(service.TriggerSubjectPrefix + "nope")
	m.Data = []byte("{}")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("publish a trigger as trigger: %v", err)
	}
	f.eventually(t, "the refused trigger listed by status", time.Minute, func() bool {
		code, out, _ := f.pulljobs(t, roleStatus, "status", "--nats", f.url)
		return code == 0 && strings.Contains(out, "refused triggers: 1")
	})

	// The status page reads what status reads, as serve.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", page))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), run) {
		t.Errorf("status page: %s, want the runs listed\n%.500s", resp.Status, body)
	}
	// What KEDA reads, and the boards through the service, as status.
	resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/backlog", page))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"formatter"`) {
		t.Errorf("/backlog: %s, want the stages' backlog\n%.500s", resp.Status, body)
	}
	status := f.as(t, roleStatus)
	var boards rs.BoardList
	m, err = status.nc.Request(service.BoardsListSubject, []byte("{}"), 10*time.Second)
	if err == nil {
		err = json.Unmarshal(m.Data, &boards)
	}
	if err != nil || len(boards.Boards) != 1 || boards.Boards[0].BoardKey != hrflowtest.DefaultBoardKey || boards.Boards[0].LastRun == "" {
		t.Errorf("%s as status: %v, %+v; want the board and its last run", service.BoardsListSubject, err, boards)
	}

	// A schedule: one tick's run, then the profile is gone.
	writeFile(t, filepath.Join(profiles, "ticking.yaml"), string(cfg)+"schedule:\n  cron: \"@every 2s\"\n")
	if err := serve.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	f.eventually(t, "a scheduled run", 2*time.Minute, func() bool { return f.finished(t, rs.TriggerSchedule) > 0 })
	if err := os.Remove(filepath.Join(profiles, "ticking.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := serve.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	f.eventually(t, "no run in flight", 2*time.Minute, func() bool {
		for _, r := range f.runs(t) {
			if r.FinishedAt == nil {
				return false
			}
		}
		return true
	})
}

// finished counts the successful runs started by trigger.
func (f *rolesFleet) finished(t *testing.T, trigger rs.Trigger) int {
	n := 0
	for _, r := range f.runs(t) {
		if r.Trigger == trigger && r.FinishedAt != nil && r.Status == rs.StatusSuccess {
			n++
		}
	}
	return n
}

// request asks fetcher serve for a run of profile, as the nats CLI would,
// and returns the run's id.
func (f *rolesFleet) request(t *testing.T, c *client, profile string) string {
	t.Helper()
	var reply struct {
		RunID string `json:"run_id"`
	}
	f.eventually(t, "fetcher serve's answer to pulljobs.run."+profile, time.Minute, func() bool {
		m, err := c.nc.Request(service.RunSubjectPrefix+profile, []byte("{}"), 5*time.Second)
		if err != nil {
			return false // no replica serving yet
		}
		if err := json.Unmarshal(m.Data, &reply); err != nil || reply.RunID == "" {
			t.Fatalf("pulljobs.run.%s answered %s %v", profile, m.Data, m.Header)
		}
		return true
	})
	return reply.RunID
}

// awaitReport waits for run's report, as the status role reads it.
func (f *rolesFleet) awaitReport(t *testing.T, run string) rs.RunDetail {
	t.Helper()
	var d rs.RunDetail
	f.eventually(t, "the report of run "+run, 2*time.Minute, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var err error
		d, err = rs.GetRun(ctx, f.status, run, 0)
		return err == nil && d.Report != nil
	})
	return d
}

func (f *rolesFleet) eventually(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting %v for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// state is what the refusals must leave as it is: each stream's messages,
// and the triggers' consumer (each run's consumers go with the run).
func (f *rolesFleet) state(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, s := range []string{rs.OffersStream, rs.JobsStream, rs.RecordsStream, rs.DeadLetterStream,
		boardindex.Stream, service.TriggersStream, "KV_" + rs.RunsBucket, "KV_" + rs.LeasesBucket, "KV_" + rs.BoardsBucket} {
		fmt.Fprintf(&b, "%s: %d messages\n", s, f.streamMsgs(s))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := f.status.Consumer(ctx, service.TriggersStream, service.TriggersConsumer)
	fmt.Fprintf(&b, "consumer %s/%s: %v\n", service.TriggersStream, service.TriggersConsumer, err)
	return b.String()
}

// checkRefusals tries what no role may do; the server refuses each, and
// nothing changes.
func (f *rolesFleet) checkRefusals(t *testing.T) {
	f.sec.expectRefusals()
	before := f.state(t)
	runs := len(f.runs(t))
	run := f.runs(t)[0].RunID

	t.Run("no credentials: a fetcher cannot start a run", func(t *testing.T) {
		name := "fetcher-anonymous"
		cmd := startEnv(t, f.dir, name, nil, f.bin["fetcher"], "run", "--nats", f.url, "--config", f.cfg)
		err := wait(cmd, time.Minute)
		if out := tail(f.dir, name); err == nil || !strings.Contains(out, "Authorization Violation") {
			t.Errorf("fetcher run without credentials: %v\n%s\nwant a failure naming the authorization violation", err, out)
		}
	})
	t.Run("the formatter role cannot request a run nor publish a trigger", func(t *testing.T) {
		c := f.as(t, roleFormatter)
		if _, err := c.nc.Request(service.RunSubjectPrefix+"annecy", []byte("{}"), 2*time.Second); err == nil {
			t.Error("the formatter role's request for a run was answered")
		}
		c.awaitRefusal(t, service.RunSubjectPrefix+"annecy")
		_ = c.nc.Publish(service.TriggerSubjectPrefix+"annecy", []byte("{}"))
		c.awaitRefusal(t, service.TriggerSubjectPrefix+"annecy")
	})
	t.Run("the trigger role can neither delete the offers nor read one", func(t *testing.T) {
		c := f.as(t, roleTrigger)
		js, err := jetstream.New(c.nc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, rs.OffersStream); err == nil {
			t.Error("the trigger role deleted the offers stream")
		}
		c.awaitRefusal(t, "$JS.API.STREAM.DELETE."+rs.OffersStream)
		for _, read := range []struct{ subject, body string }{
			{"$JS.API.STREAM.MSG.GET." + rs.OffersStream, `{"seq":1}`},
			{"$JS.API.DIRECT.GET." + rs.OffersStream, `{"seq":1}`},
			{"$JS.API.CONSUMER.CREATE." + rs.OffersStream + ".peek." + rs.OffersSubjectPrefix + run, `{}`},
		} {
			_ = c.nc.PublishRequest(read.subject, "_INBOX.peek", []byte(read.body))
			c.awaitRefusal(t, read.subject)
		}
		if _, err := c.nc.SubscribeSync(rs.OffersSubjectPrefix + ">"); err == nil {
			c.awaitRefusal(t, rs.OffersSubjectPrefix+">")
		}
	})
	t.Run("the status role cannot store an offer nor write a run key", func(t *testing.T) {
		c := f.as(t, roleStatus)
		for _, subject := range []string{rs.OffersSubjectPrefix + run, "$KV." + rs.RunsBucket + "." + run + ".report"} {
			if _, err := c.nc.Request(subject, []byte(`{"id":"FORGED1"}`), 2*time.Second); err == nil {
				t.Errorf("the status role stored on %s", subject)
			}
			c.awaitRefusal(t, subject)
		}
	})
	t.Run("the pusher role cannot read another role's subjects", func(t *testing.T) {
		c := f.as(t, rolePusher)
		for _, subject := range []string{rs.OffersSubjectPrefix + ">", service.TriggerSubjectPrefix + ">", service.RunSubjectPrefix + "*",
			cli.InboxPrefix("pulljobs-fetcher") + ".>", cli.InboxPrefix("pulljobs-formatter") + ".>", "_INBOX.>"} {
			if _, err := c.nc.SubscribeSync(subject); err == nil {
				c.awaitRefusal(t, subject)
			}
		}
		for _, subject := range []string{"$JS.API.STREAM.MSG.GET." + rs.OffersStream,
			"$JS.API.CONSUMER.CREATE." + rs.OffersStream + ".peek." + rs.OffersSubjectPrefix + run,
			"$JS.API.CONSUMER.MSG.NEXT." + rs.OffersStream + "." + rs.FormatterConsumer} {
			_ = c.nc.PublishRequest(subject, cli.InboxPrefix("pulljobs-pusher")+".peek", []byte(`{"seq":1}`))
			c.awaitRefusal(t, subject)
		}
	})
	t.Run("no role deletes or purges what another one uses", func(t *testing.T) {
		f.checkNoDeletes(t, run)
	})
	if after := f.state(t); after != before {
		t.Errorf("the refused operations changed the state:\nbefore\n%safter\n%s", before, after)
	}
	if n := len(f.runs(t)); n != runs {
		t.Errorf("%d runs after the refused operations, %d before", n, runs)
	}
}

// as connects the test as role, on the inbox its binary uses (the nats
// CLI's for the trigger role).
func (f *rolesFleet) as(t *testing.T, role string) *client {
	t.Helper()
	inbox := map[string]string{roleServe: cli.InboxPrefix("pulljobs-fetcher-serve"), roleTrigger: ""}[role]
	if _, ok := map[string]bool{roleServe: true, roleTrigger: true}[role]; !ok {
		inbox = cli.InboxPrefix("pulljobs-" + role)
	}
	c, err := f.sec.connect(t, f.url, role, inbox)
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	return c
}

// checkNoDeletes asks, as each role, to delete and purge every stream and
// bucket of pulljobs, and to delete each stage's consumer of a run: the
// server refuses each, but for what a role keeps itself: the pusher purges
// the board index and the jobs of finished runs, each stage deletes its own
// consumers, and the fetcher its readers of the offers, a name it cannot
// tell from a formatter's (deploy/README.md).
func (f *rolesFleet) checkNoDeletes(t *testing.T, run string) {
	streams := []string{rs.OffersStream, rs.JobsStream, rs.RecordsStream, rs.DeadLetterStream, boardindex.Stream,
		service.TriggersStream, ratelimit.StreamName, "KV_" + rs.RunsBucket, "KV_" + rs.LeasesBucket, "KV_" + rs.BoardsBucket,
		"KV_" + service.SchedulesBucket}
	own := map[string][]string{
		rolePusher:    {"$JS.API.STREAM.PURGE." + boardindex.Stream, "$JS.API.STREAM.PURGE." + rs.JobsStream, "$JS.API.CONSUMER.DELETE." + rs.JobsStream},
		roleFormatter: {"$JS.API.CONSUMER.DELETE." + rs.OffersStream},
		roleFetcher:   {"$JS.API.CONSUMER.DELETE." + rs.OffersStream},
		roleServe:     {"$JS.API.CONSUMER.DELETE." + rs.OffersStream},
	}
	consumers := []string{rs.OffersStream + "." + rs.RunConsumer(rs.FormatterConsumer, run), rs.JobsStream + "." + rs.RunConsumer(rs.PusherConsumer, run),
		service.TriggersStream + "." + service.TriggersConsumer}
	for _, role := range roles {
		c := f.as(t, role)
		var subjects []string
		for _, s := range streams {
			subjects = append(subjects, "$JS.API.STREAM.DELETE."+s, "$JS.API.STREAM.PURGE."+s)
		}
		for _, c := range consumers {
			subjects = append(subjects, "$JS.API.CONSUMER.DELETE."+c)
		}
		subjects = slices.DeleteFunc(subjects, func(s string) bool {
			return slices.ContainsFunc(own[role], func(o string) bool { return s == o || strings.HasPrefix(s, o+".") })
		})
		for _, s := range subjects {
			if err := c.nc.Publish(s, nil); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range subjects {
			c.awaitRefusal(t, s)
		}
		if t.Failed() {
			t.Logf("as %s", role)
		}
	}
}
