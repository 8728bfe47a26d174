package service

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

func TestRunOnRequest(t *testing.T) {
	e := newEnv(t, 20)
	e.profile("annecy", "")
	e.profile("broken", "bogus: 1\n")
	p, _ := e.workers()
	e.serve(Options{})
	nc := e.Conn()

	reply, code, desc := request(t, nc, RunSubjectPrefix+"annecy", "{}")
	if code != "" {
		t.Fatalf("request refused: %s %s", code, desc)
	}
	if reply.Resumed {
		t.Error("a first run says it resumed")
	}
	r := waitReport(t, p, reply.RunID)
	if r.Status != runstatus.StatusSuccess || r.Events.ReadSuccess != 20 || r.Events.Created != 20 {
		t.Errorf("report: %s, events %+v; want success with 20 created", r.Status, r.Events)
	}
	if r.Trigger != runstatus.TriggerRequest || r.Profile != "annecy" {
		t.Errorf("report says trigger %q, profile %q; want request, annecy", r.Trigger, r.Profile)
	}

	// A request overriding criteria, as a dry run.
	reply, code, desc = request(t, nc, RunSubjectPrefix+"annecy", `{"dry_run": true, "origin_parameters": {"departement": "73"}}`)
	if code != "" {
		t.Fatalf("request refused: %s %s", code, desc)
	}
	r = waitReport(t, p, reply.RunID)
	if !r.DryRun || r.Trigger != runstatus.TriggerRequest {
		t.Errorf("report = dry run %v, trigger %q; want a dry run on request", r.DryRun, r.Trigger)
	}

	stats := serviceStats(t, nc)
	for _, ep := range stats.Endpoints {
		if ep.Name == "run" && (ep.NumRequests != 2 || ep.NumErrors != 0) {
			t.Errorf("stats of run: %d requests, %d errors; want 2 and 0", ep.NumRequests, ep.NumErrors)
		}
	}

	// The board, as pulljobs.boards.list tells it: the dry run last, the
	// first run's sync its last successful one.
	m, err := nc.Request(BoardsListSubject, nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var boards runstatus.BoardList
	if err := json.Unmarshal(m.Data, &boards); err != nil || len(boards.Boards) != 1 {
		t.Fatalf("boards.list = %s (%v), want one board", m.Data, err)
	}
	if b := boards.Boards[0]; b.LastRun != reply.RunID || b.LastSyncRun == "" || b.LastSyncRun == reply.RunID || b.LiveJobs == nil || *b.LiveJobs != 20 {
		t.Errorf("board %+v, want the dry run %s last, the first run's sync, 20 live jobs", b, reply.RunID)
	}
}

func TestRequestRefusals(t *testing.T) {
	e := newEnv(t, 5)
	e.profile("annecy", "")
	e.profile("broken", "bogus: 1\n")
	e.serve(Options{})
	nc := e.Conn()
	for _, tc := range []struct {
		profile, body, code, says string
	}{
		{"annecy", `{"origin_parameters": {"client_secret": "stolen-secret"}}`, CodeForbidden, "origin_parameters.client_secret: not a search criterion"},
		{"annecy", `{"origin_parameters": {"client_id": "someone-else"}}`, CodeForbidden, "origin_parameters.client_id"},
		{"annecy", `{"origin_parameters": {"api_base_url": "https://evil.example.com"}}`, CodeForbidden, "origin_parameters.api_base_url"},
		{"annecy", `{"origin_parameters": {"token_url": "https://evil.example.com/token"}}`, CodeForbidden, "origin_parameters.token_url"},
		{"annecy", `{"target_parameters": {"board_key": "ffffffffffffffffffffffffffffffffffffffff"}}`, CodeForbidden, "target_parameters: refused"},
		{"annecy", `{"target_parameters": {"api_secret": "stolen-secret"}}`, CodeForbidden, "target_parameters: refused"},
		{"annecy", `{"action_parameters": {"format": "rich"}}`, CodeForbidden, "action_parameters: refused"},
		{"nosuch", `{}`, CodeNotFound, `unknown profile "nosuch" (profiles: annecy)`},
		{"broken", `{}`, CodeNotFound, "profile broken is invalid"},
		{"annecy", `{"origin_parameters": {"departement": "999"}}`, CodeBadRequest, `origin_parameters.departement: invalid query: departement "999"`},
		{"annecy", `{"origin_parameters": {"departemnt": "73"}}`, CodeBadRequest, "did you mean departement?"},
		{"annecy", `{"dryrun": true}`, CodeBadRequest, "dryrun: unknown key (did you mean dry_run?)"},
		{"annecy", `{"replay_of": "not a run id!"}`, CodeBadRequest, "replay_of"},
		{"annecy", `run please`, CodeBadRequest, "unreadable request"},
	} {
		t.Run(tc.profile+" "+tc.body, func(t *testing.T) {
			_, code, desc := request(t, nc, RunSubjectPrefix+tc.profile, tc.body)
			if code != tc.code || !strings.Contains(desc, tc.says) {
				t.Errorf("got %s %q, want %s saying %q", code, desc, tc.code, tc.says)
			}
			if strings.Contains(desc, "stolen-secret") || strings.Contains(desc, "evil.example.com") {
				t.Errorf("the refusal quotes the refused value: %q", desc)
			}
		})
	}
	// The broken profile was reported with its key, and the other served.
	if _, code, desc := request(t, nc, RunSubjectPrefix+"broken", "{}"); !strings.Contains(desc, "bogus: line") {
		t.Errorf("broken profile: %s %q, want the key at fault", code, desc)
	}
}

func serviceStats(t *testing.T, nc *nats.Conn) micro.Stats {
	t.Helper()
	m, err := nc.Request("$SRV.STATS."+ServiceName, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var s micro.Stats
	if err := json.Unmarshal(m.Data, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMicroInfo(t *testing.T) {
	e := newEnv(t, 5)
	e.profile("annecy", "")
	e.serve(Options{})
	want := map[string]string{"run": "pulljobs.run.*", "runs_list": "pulljobs.runs.list", "runs_get": "pulljobs.runs.get", "boards_list": "pulljobs.boards.list"}
	var info micro.Info
	// The service answers once it exists, and adds its endpoints then.
	waitFor(t, "every endpoint", func() bool {
		m, err := e.Conn().Request("$SRV.INFO."+ServiceName, nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(m.Data, &info); err != nil {
			t.Fatal(err)
		}
		return len(info.Endpoints) >= len(want)
	})
	subjects := map[string]string{}
	for _, ep := range info.Endpoints {
		subjects[ep.Name] = ep.Subject
		if ep.QueueGroup == "" {
			t.Errorf("endpoint %s has no queue group: every replica would answer", ep.Name)
		}
	}
	for name, subject := range want {
		if subjects[name] != subject {
			t.Errorf("endpoint %s on %q, want %q", name, subjects[name], subject)
		}
	}
}

// blocker is a France Travail search that holds its run's board until
// released: another run, alive, on the same board.
type blocker struct{ release chan struct{} }

func (b blocker) Search(ctx context.Context, _ francetravail.Query, _ func(francetravail.Offer) error) (francetravail.Summary, error) {
	select {
	case <-b.release:
		return francetravail.Summary{}, nil
	case <-ctx.Done():
		return francetravail.Summary{}, ctx.Err()
	}
}

// holdBoard starts a run of another configuration on the test board, held
// alive until release, which returns the run's fetch error (and is safe
// to call again).
func (e *env) holdBoard(p *pipeline.Pipeline) (run string, release func() error) {
	e.t.Helper()
	started := make(chan string, 1)
	done := make(chan error, 1)
	unblock := make(chan struct{})
	spec := pipeline.RunSpec{BoardKey: hrflowtest.DefaultBoardKey, SyncMaxShare: 0.5, Query: francetravail.Query{MotsCles: "holder"}}
	go func() {
		_, err := p.Fetch(context.Background(), spec, blocker{unblock}, pipeline.FetchOptions{OnStarted: func(run string, _ bool) { started <- run }})
		done <- err
	}()
	var once sync.Once
	var err error
	release = func() error {
		once.Do(func() {
			close(unblock)
			err = <-done
		})
		return err
	}
	e.t.Cleanup(func() { _ = release() })
	select {
	case run = <-started:
	case err := <-done:
		e.t.Fatalf("hold the board: %v", err)
	}
	return run, release
}

// TestBusyBoard checks that a request for a busy board is refused at once,
// and that a trigger waits for it within the bound, then runs; or is
// dead-lettered past the bound.
func TestBusyBoard(t *testing.T) {
	e := newEnv(t, 5)
	e.profile("annecy", "")
	p, _ := e.workers()
	holder, release := e.holdBoard(p)
	// A replica with a short bound, for the trigger that outlives it.
	_, stopShort := e.serve(Options{WaitBoard: 200 * time.Millisecond})
	nc := e.Conn()
	js := e.JetStream()

	_, code, desc := request(t, nc, RunSubjectPrefix+"annecy", "{}")
	if code != CodeBoardBusy || !strings.Contains(desc, holder) {
		t.Errorf("request on a busy board: %s %q, want %s naming run %s", code, desc, CodeBoardBusy, holder)
	}

	// Past the bound: dead-lettered, with the reason.
	publish(t, nc, "annecy", `{}`, "past-the-bound")
	waitFor(t, "the trigger dead-lettered", func() bool { return len(deadLetters(t, js)) == 1 })
	if l := deadLetters(t, js)[0]; !strings.Contains(l.Reason, "stayed busy with run "+holder) || l.Stage != TriggerStage {
		t.Errorf("dead letter %+v, want the busy board's reason", l)
	}
	stopShort()

	// Within the bound: it waits, then runs once the board is free. The
	// bound is one no release could outlast but a hang.
	e.serve(Options{WaitBoard: stuckAfter})
	publish(t, nc, "annecy", `{}`, "within-the-bound")
	waitFor(t, "a replica to hold the trigger while the board is busy", func() bool { return triggersHeld(t, js) == 1 })
	if err := release(); err != nil {
		t.Fatalf("the run holding the board: %v", err)
	}
	waitFor(t, "the waiting trigger's run", func() bool { return len(runsBy(t, js, runstatus.TriggerEvent)) == 1 })
	run := runsBy(t, js, runstatus.TriggerEvent)[0]
	if r := waitReport(t, p, run.RunID); r.Status != runstatus.StatusSuccess {
		t.Errorf("the waiting trigger's run ended %s", r.Status)
	}
}

// publish publishes a trigger, checks the stream took it, and returns its
// acknowledgement (Duplicate says it was stored before).
func publish(t *testing.T, nc *nats.Conn, profile, body, msgID string) jetstream.PubAck {
	t.Helper()
	m := nats.NewMsg(TriggerSubjectPrefix + profile)
	m.Data = []byte(body)
	if msgID != "" {
		m.Header.Set("Nats-Msg-Id", msgID)
	}
	r, err := nc.RequestMsg(m, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var ack jetstream.PubAck
	if err := json.Unmarshal(r.Data, &ack); err != nil || ack.Stream != TriggersStream {
		t.Fatalf("trigger not stored: %s", r.Data)
	}
	return ack
}

// triggersHeld is the number of triggers a replica took and has not yet
// acknowledged.
func triggersHeld(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, TriggersStream, TriggersConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.NumAckPending
}

// runsBy lists the runs that trigger started.
func runsBy(t *testing.T, js jetstream.JetStream, trigger runstatus.Trigger) []runstatus.RunStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	runs, err := runstatus.ListRuns(ctx, js, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []runstatus.RunStatus
	for _, r := range runs {
		if r.Trigger == trigger {
			out = append(out, r)
		}
	}
	return out
}

func TestTriggers(t *testing.T) {
	e := newEnv(t, 12)
	e.profile("annecy", "")
	js := e.JetStream()
	nc := e.Conn()
	// The stream exists once any replica ever started: triggers published
	// while none runs wait in it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := declareTriggers(ctx, js, testSettings); err != nil {
		t.Fatal(err)
	}
	publish(t, nc, "annecy", `{}`, "order-42")
	if ack := publish(t, nc, "annecy", `{}`, "order-42"); !ack.Duplicate {
		t.Errorf("the same Nats-Msg-Id again: %+v, want it taken as a duplicate", ack)
	}
	publish(t, nc, "nosuch", `{}`, "")
	publish(t, nc, "annecy", `not json`, "")
	publish(t, nc, "annecy", `{"origin_parameters": {"client_secret": "stolen-secret"}}`, "")
	publish(t, nc, "annecy", `{"origin_parameters": {"departement": "999"}}`, "")

	p, _ := e.workers()
	e.serve(Options{})
	waitFor(t, "four dead letters", func() bool { return len(deadLetters(t, js)) == 4 })
	waitFor(t, "the trigger's run", func() bool { return len(runsBy(t, js, runstatus.TriggerEvent)) > 0 })
	run := runsBy(t, js, runstatus.TriggerEvent)[0]
	r := waitReport(t, p, run.RunID)
	if r.Status != runstatus.StatusSuccess || r.Events.Created != 12 || r.Trigger != runstatus.TriggerEvent || r.Profile != "annecy" {
		t.Errorf("trigger's run: %s, %+v, trigger %q, profile %q", r.Status, r.Events, r.Trigger, r.Profile)
	}
	if n := len(runsBy(t, js, runstatus.TriggerEvent)); n != 1 {
		t.Errorf("%d runs by trigger, want 1: Nats-Msg-Id dedupes", n)
	}

	letters := deadLetters(t, js)
	for _, says := range []string{`unknown profile "nosuch"`, "unreadable request", "origin_parameters.client_secret: not a search criterion", `departement "999"`} {
		n := 0
		for _, l := range letters {
			if strings.Contains(l.Reason, says) && l.Stage == TriggerStage {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d dead letters saying %q, want 1: %+v", n, says, letters)
		}
	}
	assertWithheld(t, e, "stolen-secret")
	// The replica is still up.
	if _, err := nc.Request("$SRV.PING."+ServiceName, nil, time.Second); err != nil {
		t.Errorf("replica down after bad triggers: %v", err)
	}
}

// assertWithheld checks that no message on the dead-letter stream carries
// secret.
func assertWithheld(t *testing.T, e *env, secret string) {
	t.Helper()
	sub, err := e.Conn().SubscribeSync("_assert." + secret)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.JetStream().Stream(ctx, runstatus.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if strings.Contains(string(m.Data), secret) || strings.Contains(strings.Join(m.Header.Values(runstatus.HeaderReason), ""), secret) {
			t.Errorf("dead letter %d on %s carries the refused secret", seq, m.Subject)
		}
	}
}

// TestDrainInterruptsAndTheNextAttemptResumes stops a replica whose fetch
// outlives the drain time-out: the fetch is interrupted, and the next
// request for the same profile resumes the same run.
func TestDrainInterruptsAndTheNextAttemptResumes(t *testing.T) {
	e := newEnv(t, 10)
	e.profile("annecy", "")
	p, _ := e.workers()
	// Every France Travail call hangs: the fetch can end only by being
	// interrupted (its own time-outs and retries would take minutes).
	if err := e.FT.Faults().Set(emulator.Config{Latency: emulator.Duration(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	_, stop := e.serve(Options{DrainTimeout: 100 * time.Millisecond})
	nc := e.Conn()
	first, code, desc := request(t, nc, RunSubjectPrefix+"annecy", "{}")
	if code != "" {
		t.Fatalf("refused: %s %s", code, desc)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		stop()
	}()
	select {
	case <-stopped:
	case <-time.After(stuckAfter):
		t.Errorf("stop still waiting after %v with a 100ms drain time-out: the fetch in flight was not interrupted", stuckAfter)
		<-stopped
	}
	if err := e.FT.Faults().Set(emulator.Config{}); err != nil {
		t.Fatal(err)
	}
	e.serve(Options{})
	var again RunReply
	waitFor(t, "the interrupted run's lease to go stale and a request to resume it", func() bool {
		var code string
		again, code, _ = request(t, nc, RunSubjectPrefix+"annecy", "{}")
		return code == ""
	})
	if again.RunID != first.RunID || !again.Resumed {
		t.Errorf("second request: %+v, want run %s resumed", again, first.RunID)
	}
	if r := waitReport(t, p, first.RunID); r.Status != runstatus.StatusSuccess || r.Events.Created != 10 {
		t.Errorf("resumed run: %s, %+v", r.Status, r.Events)
	}
}
