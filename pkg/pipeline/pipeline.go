// Package pipeline is pull_jobs as NATS JetStream workers: a fetcher
// publishes every offer of a run, formatter workers apply the run's format
// and logics, pusher workers upsert the jobs into the HrFlow board, and a
// final sync stage archives the board's jobs missing from the run — only
// when the run is complete and safe.
//
// The same code runs in one process on an embedded server, or as separate
// processes on a NATS cluster: every process declares the topology, the run
// spec travels with the run, and a run's completion is tracked in
// JetStream itself (a seal from the fetcher, one final record per item, an
// exactly-once trigger for sync), not in any process's memory.
//
// Many runs share one fleet: each run has a consumer of its own at each
// stage, and a worker serves every run in flight fairly, by weight
// (source.go, pkg/fairshare), so that a run started after a large one is
// not held behind it.
//
// How the code is laid out:
//
//   - item.go: how one item ends — a stage (a Handler) returns an Outcome,
//     and the consume loop (loop.go) carries it out: publish, dead-letter,
//     record, acknowledge. Cross-cutting steps are Middleware
//     (middleware.go). source.go: how the loop pulls each run's items and
//     hands them out fairly; backlog.go: how a stage holds a run back while
//     the next one lags.
//   - formatter.go and pusher.go: the two stages. The pusher decides each
//     job from the board index (pkg/boardindex; index.go: a run's index)
//     with decidePush.
//   - fetcher.go: Fetch, the start of a run; tracker.go: what follows a run
//     from its spec to its sync; sync.go: decideSync and the report;
//     archive.go: the archives and their marks.
//   - ledger.go: the store of runs, records, leases (lease.go) and boards in
//     JetStream, through pkg/store; claim.go: jobs done once by one
//     process; topology.go: the streams, consumers and buckets; settings.go:
//     the knobs.
//
// Dependencies point one way: the engine reads and writes pkg/runstatus's
// wire formats and names, pkg/boardindex's index, pkg/store's helpers and
// pkg/payload's messages; none of them imports the engine.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/payload"
	"github.com/pulljobs/pulljobs/pkg/retry"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/store"
)

// Options configure a Pipeline.
type Options struct {
	Settings Settings
	// Logger receives the pipeline's logs; nil discards them.
	Logger *slog.Logger
	// Exclusive says that no other process can reach the NATS server (an
	// embedded server that does not listen): a board held by anyone else
	// was held by a process that is gone, so it is taken at once.
	Exclusive bool
	// Dial, when set, opens a connection of its own for each worker that
	// RunFormatter and RunPusher start, closed when it returns. In a process
	// that runs several stages, a stage's heavy publishing then never holds
	// up another's pulls and acknowledgements on a shared connection (which
	// stalled pull consumers for seconds when tried).
	Dial func() (*nats.Conn, error)
	// Stages are the stages this process runs; zero means all of them. A
	// process declares only the streams, consumers and buckets its stages
	// use, so that NATS permissions per role (deploy/nats) can let each role
	// create what it uses and nothing else. Fetch and Wait need StageFetch,
	// RunFormatter StageFormat, RunPusher StagePush: each fails without.
	Stages Stages
}

// Stages is a set of the pipeline's stages, as one process runs them.
type Stages uint8

// The stages, and all of them.
const (
	StageFetch  Stages = 1 << iota // Fetch and Wait: the fetcher, fetcher serve
	StageFormat                    // RunFormatter
	StagePush                      // RunPusher, and the sync
	AllStages   = StageFetch | StageFormat | StagePush
)

// has reports whether s holds every stage of t.
func (s Stages) has(t Stages) bool { return s&t == t }

// ErrStageNotOpened is the error of a Run method, Fetch or Wait called on a
// Pipeline whose Options.Stages leave its stage out.
var ErrStageNotOpened = errors.New("pipeline: stage not among the Options.Stages this pipeline was opened with")

// Pipeline is one process's handle on the pipeline. Create it with New.
// RunFormatter and RunPusher block, each until its context ends or
// Shutdown is called; Shutdown stops them all and what New started.
type Pipeline struct {
	link      // the connection New was given
	logger    *slog.Logger
	holder    string // names this process in leases and claims
	exclusive bool
	stages    Stages
	dial      func() (*nats.Conn, error)
	heartbeat *heartbeat
	counts    *counts
	events    *events

	stopWorkers context.CancelFunc // ends every Run method's context
	stopping    context.Context
	workers     sync.WaitGroup // the Run methods in flight
	stopBeat    context.CancelFunc
	beat        sync.WaitGroup // the heartbeat
}

// link is one NATS connection and the pipeline's handles on it.
type link struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	ledger  *ledger
	carrier *payload.Carrier
}

// counts are the items this process's formatters and pushers ended or
// passed on, for progress.
type counts struct{ formatted, pushed atomic.Int64 }

// New declares the topology on nc's JetStream and starts the process's
// lease heartbeat. nc stays the caller's: Shutdown does not close it.
func New(ctx context.Context, nc *nats.Conn, o Options) (*Pipeline, error) {
	if err := o.Settings.Validate(); err != nil {
		return nil, fmt.Errorf("pipeline settings: %w", err)
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	stages := o.Stages
	if stages == 0 {
		stages = AllStages
	}
	lk, err := attach(ctx, nc, o.Settings, stages, logger)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{link: *lk, logger: logger, holder: holderID(), exclusive: o.Exclusive, stages: stages, dial: o.Dial, counts: &counts{},
		events: &events{nc: nc, logger: logger}}
	p.heartbeat = newHeartbeat(lk.ledger, logger)
	p.stopping, p.stopWorkers = context.WithCancel(context.Background())
	beatCtx, stopBeat := context.WithCancel(context.WithoutCancel(ctx))
	p.stopBeat = stopBeat
	p.beat.Go(func() { p.heartbeat.run(beatCtx) })
	return p, nil
}

// attach opens JetStream on nc and declares the topology that stages use.
// A cluster may still be electing its leaders when workers start, and
// replicated streams take a moment to create: it retries, it does not die.
func attach(ctx context.Context, nc *nats.Conn, s Settings, stages Stages, logger *slog.Logger) (*link, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(asyncPending), jetstream.WithPublishAsyncTimeout(payload.PublishTimeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	var l *ledger
	err = retry.Do(ctx, declareRetry, func(ctx context.Context) error {
		dctx, cancel := context.WithTimeout(ctx, declareTimeout)
		defer cancel()
		l, err = declareAll(dctx, js, s, stages)
		if err != nil && ctx.Err() == nil {
			return store.Transient(err)
		}
		return err
	}, func(err error, wait time.Duration) {
		logger.Warn("declare streams and buckets; retrying", "err", err, "retry_in", wait.Round(time.Millisecond).String())
	})
	if err != nil {
		return nil, err
	}
	return &link{nc: nc, js: js, ledger: l, carrier: payload.NewCarrier(js, nc)}, nil
}

// declareTimeout bounds one attempt at declaring the topology.
const declareTimeout = 5 * time.Second

// declareRetry keeps a starting process trying while NATS comes up.
var declareRetry = retry.Policy{Name: store.RetryName, InitialInterval: 250 * time.Millisecond, MaxInterval: 5 * time.Second, MaxElapsed: 2 * time.Minute, MaxAttempts: -1}

// Shutdown stops the pipeline in order: the Run methods stop pulling and
// finish the items they hold (each within the settings' DrainTimeout), the
// trackers stop (a sync in progress is taken over by another process),
// their own connections close, and the heartbeat stops. It returns early
// with ctx's error if ctx ends first; the workers then go on draining in
// the background. The connection given to New stays open.
func (p *Pipeline) Shutdown(ctx context.Context) error {
	p.stopWorkers()
	done := make(chan struct{})
	go func() { p.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.stopBeat()
	p.beat.Wait()
	return nil
}

// Close is Shutdown without a deadline.
func (p *Pipeline) Close() { _ = p.Shutdown(context.Background()) }

func holderID() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + ":" + strconv.Itoa(os.Getpid()) + ":" + hex.EncodeToString(b[:])
}

// ownLink returns the link a worker uses: p's, or, with Options.Dial, one
// on a connection of its own; release closes that connection.
func (p *Pipeline) ownLink(ctx context.Context) (lk *link, release func(), err error) {
	if p.dial == nil {
		return &p.link, func() {}, nil
	}
	nc, err := p.dial()
	if err != nil {
		return nil, nil, fmt.Errorf("connect a worker: %w", err)
	}
	lk, err = attach(ctx, nc, p.ledger.settings, p.stages, p.logger)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return lk, nc.Close, nil
}

// enter registers a Run method: its context ends with ctx or Shutdown.
func (p *Pipeline) enter(ctx context.Context) (context.Context, func()) {
	p.workers.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(p.stopping, cancel)
	return ctx, func() { stop(); cancel(); p.workers.Done() }
}

// RunFormatter runs a formatter worker until ctx ends or Shutdown, then
// finishes the offers it holds and returns.
func (p *Pipeline) RunFormatter(ctx context.Context) error {
	return p.runStage(ctx, stage{
		needs: StageFormat, stage: rs.FormatterStage, kind: rs.FormatFailure, streamName: rs.OffersStream,
		consumers: (*ledger).formatterConsumers, concurrency: p.ledger.settings.FormatConcurrency,
		next: func(l *ledger) *nextStage {
			return &nextStage{consumers: l.pusherConsumers(), high: l.settings.JobsBacklog}
		},
		done: &p.counts.formatted,
		handler: func(*link) Handler {
			return chain(formatOffer, touchLease(p.heartbeat), traced("pulljobs.format"))
		},
	})
}

// RunPusher runs a pusher worker, with the tracker that builds each run's
// board index and fires its sync, until ctx ends or Shutdown; then it
// finishes the jobs it holds and returns. board carries the HrFlow
// credentials and the shared rate limit.
func (p *Pipeline) RunPusher(ctx context.Context, board Board) error {
	return p.runStage(ctx, stage{
		needs: StagePush, stage: rs.PusherStage, kind: rs.WriteFailure, streamName: rs.JobsStream,
		consumers: (*ledger).pusherConsumers, concurrency: p.ledger.settings.Concurrency, purgeOnDrop: true,
		done: &p.counts.pushed,
		handler: func(lk *link) Handler {
			s := &pusher{ledger: lk.ledger, index: lk.ledger.index.Cached(), board: board}
			return chain(s.push, touchLease(p.heartbeat), requireLease(p.heartbeat), traced("pulljobs.push"))
		},
		tracker: func(lk *link) *tracker {
			return &tracker{ledger: lk.ledger, lister: board, holder: p.holder, events: p.events, logger: p.logger, followed: map[string]bool{},
				sync: &syncer{ledger: lk.ledger, board: board, heartbeat: p.heartbeat, events: p.events, logger: p.logger}}
		},
	})
}

// stage describes a worker.
type stage struct {
	needs       Stages         // the stages it needs declared
	stage       rs.Stage       // on records and dead letters
	kind        rs.FailureKind // of an item given up
	streamName  string
	consumers   func(*ledger) stageConsumers
	concurrency int
	purgeOnDrop bool          // see consumeLoop.purgeOnDrop
	done        *atomic.Int64 // counts the items the worker passed on or ended
	handler     func(*link) Handler
	tracker     func(*link) *tracker // nil: the stage tracks no run
	// next is the next stage, whose backlog of a run holds the run at this
	// stage (backlog.go); nil or a bound below 1: none.
	next func(*ledger) *nextStage
}

// runStage runs a consume loop with what every worker needs around it: the
// finished runs, the max-deliveries advisories, the consumers' gauges, and
// the tracker. Each of those stops with the loop, and is waited for.
func (p *Pipeline) runStage(ctx context.Context, s stage) error {
	if !p.stages.has(s.needs) {
		return fmt.Errorf("%s: %w", s.stage, ErrStageNotOpened)
	}
	ctx, leave := p.enter(ctx)
	defer leave()
	lk, release, err := p.ownLink(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", s.stage, err)
	}
	defer release()
	consumers := s.consumers(lk.ledger)
	l := &consumeLoop{name: consumers.name, stage: consumers, settings: lk.ledger.settings, concurrency: s.concurrency,
		ackWait: lk.ledger.settings.AckWait, maxDeliver: lk.ledger.settings.MaxDeliver, drainTimeout: lk.ledger.settings.DrainTimeout,
		handle: s.handler(lk), runs: newRunCache(lk.ledger), heartbeat: p.heartbeat, logger: p.logger, purgeOnDrop: s.purgeOnDrop,
		ender: &ender{ledger: lk.ledger, stage: s.stage, kind: s.kind, carry: lk.carrier, logger: p.logger, done: s.done}}
	if s.next != nil {
		l.next = s.next(lk.ledger)
	}
	l.runs.onFinished = func(run string) { l.sources.stop(run) }
	var wg sync.WaitGroup
	defer wg.Wait()
	bg, stopBg := context.WithCancel(ctx)
	defer stopBg()
	if err := l.runs.watchFinished(bg, &wg, p.logger); err != nil {
		return fmt.Errorf("%s: watch finished runs: %w", s.stage, err)
	}
	sub, err := watchMaxDeliveries(bg, lk.nc, consumers.stream, s.streamName, consumers.name, l.ender, p.logger)
	if err != nil {
		return fmt.Errorf("%s: watch max deliveries: %w", s.stage, err)
	}
	defer sub.Unsubscribe()
	unregister := observeConsumers(consumers)
	defer unregister()
	if s.tracker != nil {
		tr := s.tracker(lk)
		wg.Go(func() {
			if err := tr.run(bg); err != nil && bg.Err() == nil {
				p.logger.Error("run tracker stopped", "err", err)
			}
		})
	}
	p.logger.Info("worker started", "stage", s.stage, "concurrency", s.concurrency)
	err = l.run(ctx)
	p.logger.Info("worker stopped", "stage", s.stage)
	return err
}

// Event is a note about a run published on core NATS for whoever waits for
// it (pulljobs.events.<run>). Events are best effort; the report is not.
type Event struct {
	Type     EventType `json:"type"`
	Done     int       `json:"done"`
	Expected int       `json:"expected"`
	Message  string    `json:"message,omitempty"`
}

// EventType says what an Event is about.
type EventType string

// Event types.
const (
	EventStalled EventType = "stalled" // the watchdog saw no progress for stall_after
	EventDone    EventType = "done"    // the report is written
)

// events publishes Events.
type events struct {
	nc     *nats.Conn
	logger *slog.Logger
}

func (e *events) send(run string, ev Event) {
	b, _ := json.Marshal(ev) // an Event always marshals
	if err := e.nc.Publish(rs.EventsSubjectPrefix+run, b); err != nil {
		e.logger.Debug("publish event", "run", run, "err", err)
	}
}

// Progress is where a run stands.
type Progress struct {
	Run string
	// Fetched counts the offers published so far; Sealed says the fetch is
	// over, and Expected is then the number of items of the run.
	Fetched  int
	Sealed   bool
	Expected int
	// Done counts the items that reached a final state (an item ended twice
	// after a crash counts twice until the end).
	Done int
	// Formatted and Pushed count what this process's own formatter and
	// pusher did (0 when it runs none).
	Formatted, Pushed int
}

// Wait waits for run's report and returns it. Every second it calls
// progress (when not nil) from its goroutine. Stall warnings of the
// watchdog are logged.
func (p *Pipeline) Wait(ctx context.Context, run string, progress func(Progress)) (rs.Report, error) {
	if !p.stages.has(StageFetch) {
		return rs.Report{}, fmt.Errorf("wait for run %s: %w", run, ErrStageNotOpened)
	}
	reports, err := store.Watch(ctx, p.ledger.runs, rs.ReportKey(run))
	if err != nil {
		return rs.Report{}, fmt.Errorf("wait for run %s: %w", run, err)
	}
	defer reports.Stop()
	evs := make(chan *nats.Msg, 16)
	sub, err := p.nc.ChanSubscribe(rs.EventsSubjectPrefix+run, evs)
	if err != nil {
		return rs.Report{}, fmt.Errorf("wait for run %s: %w", run, err)
	}
	defer sub.Unsubscribe()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	pr := Progress{Run: run}
	for {
		select {
		case <-ctx.Done():
			return rs.Report{}, ctx.Err()
		case e, ok := <-reports.Updates():
			if !ok {
				return rs.Report{}, fmt.Errorf("wait for run %s: watcher closed", run)
			}
			if e == nil {
				continue
			}
			var r rs.Report
			if err := json.Unmarshal(e.Value(), &r); err != nil {
				return rs.Report{}, fmt.Errorf("report of run %s: %w", run, err)
			}
			return r, nil
		case m := <-evs:
			var ev Event
			if json.Unmarshal(m.Data, &ev) == nil && ev.Type == EventStalled {
				p.logger.Warn("run stalled", "run", run, "done", ev.Done, "expected", ev.Expected, "detail", ev.Message)
			}
		case <-tick.C:
			if progress == nil {
				continue
			}
			if err := p.progress(ctx, &pr); err != nil && ctx.Err() == nil {
				p.logger.Debug("progress", "run", run, "err", err)
			}
			progress(pr)
		}
	}
}

func (p *Pipeline) progress(ctx context.Context, pr *Progress) error {
	if !pr.Sealed {
		seal, ok, err := p.ledger.seal(ctx, pr.Run)
		if err != nil {
			return err
		}
		if ok {
			pr.Sealed, pr.Expected, pr.Fetched = true, seal.Expected, seal.Expected
		} else if pr.Fetched, err = store.Count(ctx, p.ledger.offers, rs.OffersSubjectPrefix+pr.Run); err != nil {
			return err
		}
	}
	done, err := p.ledger.countRecords(ctx, pr.Run)
	if err != nil {
		return err
	}
	pr.Done = done
	pr.Formatted, pr.Pushed = int(p.counts.formatted.Load()), int(p.counts.pushed.Load())
	return nil
}

// Report returns the report of a finished run; ok is false while it runs.
func (p *Pipeline) Report(ctx context.Context, run string) (r rs.Report, ok bool, err error) {
	return p.ledger.report(ctx, run)
}
