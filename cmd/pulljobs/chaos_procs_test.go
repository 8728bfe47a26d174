package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// proc is one process of a chaos trial. Unlike start's *exec.Cmd, its exit
// is observed by a goroutine of its own, so that the harness can poll
// whether it ended while it waits for another event, and kill it at any time.
type proc struct {
	name string   // "pusher-1"
	argv []string // binary and arguments: a restart uses the same
	env  []string // added to the environment: a restart uses the same
	log  string   // path of its output
	cmd  *exec.Cmd
	done chan struct{} // closed once the process exited and was reaped
	err  error         // cmd.Wait's answer; read after done
}

// spawn starts argv as name, with env added to its environment, its output
// in dir/<logName>.log. A cleanup kills it (SIGKILL: nothing of a chaos
// trial needs a graceful stop) and waits for it, before t's temporary
// directories are removed.
func spawn(t *testing.T, dir, name, logName string, env []string, argv ...string) *proc {
	t.Helper()
	p := &proc{name: name, argv: argv, env: env, log: filepath.Join(dir, logName+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = append(sandboxEnv(), env...)
	dieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

// exited reports whether the process ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode is the process's exit code once it ended; -1 when a signal
// ended it.
func (p *proc) exitCode() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

// kill sends SIGKILL and waits until the process is reaped. Idempotent.
func (p *proc) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// waitExit waits at most d for the process to end by itself.
func (p *proc) waitExit(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// pid is the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// tailLines returns the last n lines of the process's output.
func (p *proc) tailLines(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// observer watches a trial's run through its own NATS connection, as an
// operator with the nats CLI would: the runs bucket and the offers stream.
// Every look is bounded by lookTimeout, so that a look while nats-server is
// down fails fast instead of stalling the harness.
type observer struct {
	nc *nats.Conn
	js jetstream.JetStream
	kv jetstream.KeyValue // the runs bucket, once declared
}

const lookTimeout = 500 * time.Millisecond

func newObserver(t *testing.T, url string, opts ...nats.Option) *observer {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name("pulljobs-chaos-observer"), nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond), nats.RetryOnFailedConnect(true)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &observer{nc: nc, js: js}
}

// onRuns calls f with the runs bucket; it fails while the bucket is not
// declared yet or the server is down.
func (o *observer) onRuns(f func(context.Context, jetstream.KeyValue) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), lookTimeout)
	defer cancel()
	if o.kv == nil {
		kv, err := o.js.KeyValue(ctx, runstatus.RunsBucket)
		if err != nil {
			return err
		}
		o.kv = kv // a handle names the bucket: it outlives a server restart
	}
	return f(ctx, o.kv)
}

// get returns the value of key in the runs bucket; ok is false when the key
// is absent or cannot be read now.
func (o *observer) get(key string) (value []byte, ok bool) {
	err := o.onRuns(func(ctx context.Context, kv jetstream.KeyValue) error {
		e, err := kv.Get(ctx, key)
		if err == nil {
			value = e.Value()
		}
		return err
	})
	return value, err == nil
}

// keys lists the runs bucket's keys, sorted.
func (o *observer) keys() (keys []string, err error) {
	err = o.onRuns(func(ctx context.Context, kv jetstream.KeyValue) error {
		keys, err = kv.Keys(ctx)
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil
		}
		return err
	})
	sort.Strings(keys)
	return keys, err
}

// runIDs lists the runs whose spec is stored: one per run ever started.
func (o *observer) runIDs() ([]string, error) {
	keys, err := o.keys()
	var ids []string
	for _, k := range keys {
		if id, ok := strings.CutSuffix(k, ".spec"); ok {
			ids = append(ids, id)
		}
	}
	return ids, err
}

// runOf returns the run of board: the first whose spec names it, "" when
// none does yet.
func (o *observer) runOf(board string) string {
	ids, _ := o.runIDs()
	for _, id := range ids {
		spec, ok := o.get(id + ".spec")
		var s struct {
			BoardKey string `json:"board_key"`
		}
		if ok && json.Unmarshal(spec, &s) == nil && s.BoardKey == board {
			return id
		}
	}
	return ""
}

// published is the number of offers in the offers stream: this trial's
// server holds one run's, or a second run's too.
func (o *observer) published() (uint64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), lookTimeout)
	defer cancel()
	s, err := o.js.Stream(ctx, runstatus.OffersStream)
	if err != nil {
		return 0, false
	}
	return s.CachedInfo().State.Msgs, true
}

// ownerPID reads the process id out of a final key's owner,
// "host:pid:random/random" (pipeline's holder, then the attempt).
func ownerPID(value []byte) (int, string, error) {
	var f struct {
		Owner string `json:"owner"`
	}
	if err := json.Unmarshal(value, &f); err != nil {
		return 0, "", fmt.Errorf("final key %s: %w", value, err)
	}
	holder, _, _ := strings.Cut(f.Owner, "/")
	parts := strings.Split(holder, ":")
	if len(parts) < 3 {
		return 0, f.Owner, fmt.Errorf("final key owner %q: want host:pid:random", f.Owner)
	}
	pid, err := strconv.Atoi(parts[len(parts)-2])
	return pid, f.Owner, err
}

// setFaults puts cfg in force on the emulator at baseURL.
func setFaults(t *testing.T, baseURL string, cfg emulator.Config) {
	t.Helper()
	if err := putFaults(baseURL, cfg); err != nil {
		t.Fatal(err)
	}
}

// putFaults is setFaults for any goroutine.
func putFaults(baseURL string, cfg emulator.Config) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPut, baseURL+emulator.AdminPrefix+"faults", strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("PUT %s/_emulator/faults: %s", baseURL, resp.Status)
	}
	return nil
}

// describe lists every stream with its message count, and every consumer
// with what it has not delivered, not had acknowledged, and redelivered:
// where the items of a stalled run are.
func (o *observer) describe() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var b strings.Builder
	streams := o.js.ListStreams(ctx)
	for s := range streams.Info() {
		fmt.Fprintf(&b, "%s %d messages", s.Config.Name, s.State.Msgs)
		st, err := o.js.Stream(ctx, s.Config.Name)
		if err != nil {
			fmt.Fprintf(&b, " (%v)\n", err)
			continue
		}
		consumers := st.ListConsumers(ctx)
		for c := range consumers.Info() {
			fmt.Fprintf(&b, "; consumer %s: %d pending, %d unacknowledged, %d redelivered", c.Name, c.NumPending, c.NumAckPending, c.NumRedelivered)
		}
		if err := consumers.Err(); err != nil {
			fmt.Fprintf(&b, "; consumers: %v", err)
		}
		b.WriteString("\n")
	}
	if err := streams.Err(); err != nil {
		fmt.Fprintf(&b, "streams: %v\n", err)
	}
	return b.String()
}
