package pipeline

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/declare"
	"github.com/pulljobs/pulljobs/pkg/retry"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/store"
)

// Fair dispatch. Each run has a durable consumer of its own at each stage
// (rs.RunConsumer: formatter-<run> on the offers, pusher-<run> on the
// jobs), so that a worker can take the items of a run started late before
// those of a run started early. A worker pulls from every run in flight,
// one source a run, and stages what it pulled in a fair queue
// (pkg/fairshare), from which its workers take the next item: the run with
// the least pass, its pass growing by 1/weight with every item. A run alone
// gets every worker; two runs of equal weight get half each, whatever
// their sizes; and with the workers, they share the HrFlow quota that the
// workers' calls wait for.

// source pulls the items of one run for a consume loop, and stages them in
// the loop's fair queue. It is owned by the loop's source set, which
// starts it when the run appears and stops it when the run is finished or
// the loop stops.
type source struct {
	run  string
	cons jetstream.Consumer
	// held, when set, holds the source while the run's jobs wait for the
	// pushers (the formatter's backpressure, run by run).
	held *backlog

	mu sync.Mutex
	// board and weight are the run's, once its spec is read (open).
	board  string
	weight float64
	// staged are the messages offered to the queue and not taken yet: the
	// loop keeps them alive while they wait.
	staged []stagedMsg
}

// share returns the run's board and weight, once open read them.
func (s *source) share() (board string, weight float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.board, s.weight
}

// stagedMsg is a message offered to the fair queue.
type stagedMsg struct {
	msg   jetstream.Msg
	taken <-chan struct{}
}

// sourceSet is a consume loop's sources, one a run in flight.
type sourceSet struct {
	l  *consumeLoop
	mu sync.Mutex
	by map[string]*sourceRun
	wg sync.WaitGroup // the sources' goroutines
}

// sourceRun is a source and how to stop it.
type sourceRun struct {
	src  *source
	stop context.CancelFunc
}

// start starts the source of run, unless it has one, under ctx.
func (ss *sourceSet) start(ctx context.Context, run string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.by[run] != nil || ctx.Err() != nil {
		return
	}
	sctx, stop := context.WithCancel(ctx)
	s := &source{run: run}
	ss.by[run] = &sourceRun{src: s, stop: stop}
	ss.wg.Go(func() {
		ss.l.feed(sctx, s)
		ss.mu.Lock()
		if cur := ss.by[run]; cur != nil && cur.src == s {
			delete(ss.by, run)
		}
		ss.mu.Unlock()
	})
}

// stop stops the source of run, if any; it returns at once.
func (ss *sourceSet) stop(run string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if sr := ss.by[run]; sr != nil {
		sr.stop()
	}
}

// snapshot returns the sources running.
func (ss *sourceSet) snapshot() []*source {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]*source, 0, len(ss.by))
	for _, sr := range ss.by {
		out = append(out, sr.src)
	}
	return out
}

// minPull is the fewest items a loop pulls at once over its sources: a
// pull is a round trip to the server, and a loop of few workers would
// otherwise make one for every few items.
const minPull = 128

// batch is how many messages a source of weight w keeps staged at most:
// its share, among the sources running, of the loop's pulls. A run alone
// keeps a pull's worth; a run among many, a few, so that a worker does not
// take far more than its turn of a run's items from the other workers.
func (ss *sourceSet) batch(w float64) int {
	total := 0.0
	for _, s := range ss.snapshot() {
		_, sw := s.share()
		total += sw
	}
	if total < w {
		total = w
	}
	pulls := max(ss.l.concurrency, minPull)
	return max(1, min(pulls, int(math.Ceil(float64(pulls)*w/total))))
}

// feed pulls the run's items until ctx ends, through the run's hold, then
// hands back what it holds. Once the run is finished, it removes the run's
// consumer: its items need no more work.
func (l *consumeLoop) feed(ctx context.Context, s *source) {
	defer func() {
		for _, m := range l.queue.Forget(s.run) {
			_ = m.Nak() // another worker, or this one later, takes it
		}
		s.mu.Lock()
		s.staged = nil
		s.mu.Unlock()
		if l.runs.isFinished(s.run) {
			l.dropRun(context.WithoutCancel(ctx), s.run)
		}
	}()
	if err := l.open(ctx, s); err != nil {
		if ctx.Err() == nil {
			l.logger.Error("cannot pull the items of a run", "consumer", l.name, "run", s.run, "err", err)
		}
		return
	}
	if s.held != nil {
		var wg sync.WaitGroup
		defer wg.Wait()
		hctx, stop := context.WithCancel(ctx)
		defer stop()
		wg.Go(func() { s.held.watch(hctx) })
	}
	for ctx.Err() == nil {
		if err := s.held.wait(ctx); err != nil {
			return
		}
		if err := l.pump(ctx, s); err != nil && ctx.Err() == nil {
			// A NATS fail-over, or the run's consumer gone with its run.
			l.logger.Warn("pull messages", "consumer", l.name, "run", s.run, "err", err)
			_ = retry.Sleep(ctx, pollRetry)
		}
	}
}

// open reads the run's spec and makes sure its consumer exists (the fetcher
// made it, unless the run predates it or it was removed), and, for a stage
// held by the next, the next stage's consumer of the run. It tries again
// through NATS's fail-overs until ctx ends; it fails at once only for a
// run that is unknown (expired).
func (l *consumeLoop) open(ctx context.Context, s *source) error {
	for {
		err := l.tryOpen(ctx, s)
		if err == nil || errors.Is(err, rs.ErrUnknownRun) {
			return err
		}
		if ctx.Err() == nil {
			l.logger.Warn("open the items of a run; retrying", "consumer", l.name, "run", s.run, "err", err)
		}
		if err := retry.Sleep(ctx, pollRetry); err != nil {
			return err
		}
	}
}

func (l *consumeLoop) tryOpen(ctx context.Context, s *source) error {
	run, err := l.runs.get(ctx, s.run)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.board, s.weight = run.spec.BoardKey, run.spec.weight()
	s.mu.Unlock()
	if s.cons, err = l.stage.ensure(ctx, l.settings, s.run); err != nil {
		return err
	}
	if l.next != nil && l.next.high > 0 {
		// Made here if the fetcher has not made it yet: the hold must see
		// the jobs from the first one.
		next, err := l.next.consumers.ensure(ctx, l.settings, s.run)
		if err != nil {
			return err
		}
		s.held = &backlog{cons: next, high: uint64(l.next.high)}
	}
	return nil
}

// pump pulls the run's items and stages them, until ctx ends or the run's
// hold holds. It pulls only what it stages, at most its share of the
// loop's pulls (sourceSet.batch) staged and not taken: the loop keeps all
// of them alive while they wait (keepStagedAlive), so none waits out its
// ack wait however many runs share the workers, and nothing waits in a
// client-side buffer. When the run has nothing waiting, it waits at the
// server for its next item.
func (l *consumeLoop) pump(ctx context.Context, s *source) error {
	for ctx.Err() == nil && !s.held.holding() {
		_, weight := s.share()
		batch := l.sources.batch(weight)
		staged := s.waiting()
		if staged > batch/2 {
			s.awaitTaken(ctx)
			continue
		}
		msgs, err := l.pull(ctx, s, batch-staged, staged == 0)
		if err != nil {
			return err
		}
		if len(msgs) == 0 && staged > 0 {
			s.awaitTaken(ctx) // none new: pull again once one is taken
			continue
		}
		for _, m := range msgs {
			if ctx.Err() != nil {
				_ = m.Nak() // stopping: another worker takes it now
				continue
			}
			taken := l.queue.Offer(s.run, weight, m)
			s.mu.Lock()
			s.staged = append(s.staged, stagedMsg{m, taken})
			s.mu.Unlock()
		}
	}
	return nil
}

// pull takes up to n of the run's items waiting at the server, at once;
// with wait, and none waiting, it waits up to pullExpiry for the next one.
func (l *consumeLoop) pull(ctx context.Context, s *source, n int, wait bool) ([]jetstream.Msg, error) {
	b, err := s.cons.FetchNoWait(n)
	if err != nil {
		return nil, err
	}
	msgs, err := collect(b)
	if len(msgs) > 0 || err != nil || !wait {
		return msgs, err
	}
	wctx, cancel := context.WithTimeout(ctx, pullExpiry)
	defer cancel()
	if b, err = s.cons.Fetch(1, jetstream.FetchContext(wctx)); err != nil {
		return nil, err
	}
	msgs, err = collect(b)
	if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		err = nil // nothing came within pullExpiry: ask again
	}
	return msgs, err
}

// collect reads a batch to its end.
func collect(b jetstream.MessageBatch) ([]jetstream.Msg, error) {
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	return msgs, b.Error()
}

// waiting counts the source's messages staged and not taken yet, and
// forgets those taken.
func (s *source) waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for len(s.staged) > 0 && isClosed(s.staged[0].taken) {
		s.staged[0] = stagedMsg{}
		s.staged = s.staged[1:]
	}
	for _, st := range s.staged {
		if !isClosed(st.taken) {
			n++
		}
	}
	return n
}

// awaitTaken returns once the oldest message staged is taken, or ctx ends.
func (s *source) awaitTaken(ctx context.Context) {
	s.mu.Lock()
	var oldest <-chan struct{}
	for _, st := range s.staged {
		if !isClosed(st.taken) {
			oldest = st.taken
			break
		}
	}
	s.mu.Unlock()
	if oldest == nil {
		return
	}
	select {
	case <-oldest:
	case <-ctx.Done():
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// keepStagedAlive tells the server, every third of the ack wait, that the
// messages staged and not taken yet are still wanted, and renews the board
// leases of their runs: a run waiting for its turn is alive, not stalled.
// The loop runs it until ctx ends.
func (l *consumeLoop) keepStagedAlive(ctx context.Context) {
	t := time.NewTicker(l.ackWait / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range l.sources.snapshot() {
			s.mu.Lock()
			waiting := 0
			for _, st := range s.staged {
				if !isClosed(st.taken) {
					_ = st.msg.InProgress()
					waiting++
				}
			}
			board := s.board
			s.mu.Unlock()
			if waiting > 0 && board != "" {
				l.heartbeat.touch(board, s.run)
			}
		}
	}
}

// stageConsumers describes the per-run consumers of a stage.
type stageConsumers struct {
	name   string // the stage's consumer prefix: rs.FormatterConsumer or rs.PusherConsumer
	stream jetstream.Stream
	prefix string // the stream's subjects, + <run>
}

// config is the configuration of the stage's consumer of run.
func (c stageConsumers) config(s Settings, run string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       rs.RunConsumer(c.name, run),
		Description:   "pulljobs " + c.name + " workers, run " + run,
		FilterSubject: c.prefix + run,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.AckWait,
		MaxDeliver:    s.MaxDeliver,
		MaxAckPending: s.MaxAckPending,
	}
}

// ensure creates the stage's consumer of run, or returns it if it exists.
func (c stageConsumers) ensure(ctx context.Context, s Settings, run string) (jetstream.Consumer, error) {
	if cons, err := c.stream.Consumer(ctx, rs.RunConsumer(c.name, run)); err == nil {
		return cons, nil
	}
	return declare.Consumer(ctx, c.stream, c.config(s.WithDefaults(), run))
}

// drop removes the stage's consumer of run. Best effort: a consumer left
// is removed by the next worker of the stage that starts (sweep).
func (c stageConsumers) drop(ctx context.Context, run string) {
	_ = deleteConsumer(ctx, c.stream, rs.RunConsumer(c.name, run)) // or left for the sweep
}

// dropRun removes what the loop's stage keeps of a finished run: its
// consumer and, for the pushers, the jobs of the run left in their work
// queue (copies of items that ended already).
func (l *consumeLoop) dropRun(ctx context.Context, run string) {
	l.stage.drop(ctx, run)
	if l.purgeOnDrop {
		_ = store.Purge(ctx, l.stage.stream, l.stage.prefix+run, 0)
	}
}

// sweep removes the stage's consumers of runs that are finished or
// unknown (expired): left by a stage whose workers had all stopped when
// their run ended.
func (l *consumeLoop) sweep(ctx context.Context) {
	names := l.stage.stream.ConsumerNames(ctx)
	var runs []string
	for name := range names.Name() {
		if run, ok := rs.RunOfConsumer(l.stage.name, name); ok {
			runs = append(runs, run)
		}
	}
	for _, run := range runs {
		if l.runs.isFinished(run) {
			l.dropRun(ctx, run)
			continue
		}
		if known, err := store.Exists(ctx, l.runs.ledger.runs, rs.SpecKey(run)); err == nil && !known {
			l.dropRun(ctx, run)
		}
	}
}
