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
package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"crypto/rand"
	"encoding/hex"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/retry"
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
}

// Pipeline is one process's handle on the pipeline. Create it with New; its
// Run methods block, each until its context ends; Close stops what New
// started, after every Run returned.
type Pipeline struct {
	nc        *nats.Conn
	js        jetstream.JetStream
	t         *topology
	logger    *slog.Logger
	holder    string
	exclusive bool
	hb        *heartbeat
	dial      func() (*nats.Conn, error)
	counts    *counts

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// counts are the items this process's formatters and pushers ended or
// passed on, for progress.
type counts struct{ formatted, pushed atomic.Int64 }

// New declares the topology on nc's JetStream and starts the process's
// lease heartbeat.
func New(ctx context.Context, nc *nats.Conn, o Options) (*Pipeline, error) {
	if err := o.Settings.Validate(); err != nil {
		return nil, fmt.Errorf("pipeline settings: %w", err)
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	js, t, err := attach(ctx, nc, o.Settings, logger)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{nc: nc, js: js, t: t, logger: logger, holder: holderID(), exclusive: o.Exclusive, dial: o.Dial, counts: &counts{}}
	p.hb = newHeartbeat(t, logger)
	hbCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	p.stop = stop
	p.wg.Go(func() { p.hb.run(hbCtx) })
	return p, nil
}

// attach opens JetStream on nc and declares the topology. A cluster may
// still be electing its leaders when workers start, and replicated streams
// take a moment to create: it retries, it does not die.
func attach(ctx context.Context, nc *nats.Conn, s Settings, logger *slog.Logger) (jetstream.JetStream, *topology, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(asyncPending), jetstream.WithPublishAsyncTimeout(publishTimeout))
	if err != nil {
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	var t *topology
	err = retry.Do(ctx, declareRetry, func(ctx context.Context) error {
		dctx, cancel := context.WithTimeout(ctx, declareTimeout)
		defer cancel()
		t, err = declareAll(dctx, js, s)
		if err != nil && ctx.Err() == nil {
			return transient{err}
		}
		return err
	}, func(err error, wait time.Duration) {
		logger.Warn("declare streams and buckets; retrying", "err", err, "retry_in", wait.Round(time.Millisecond).String())
	})
	if err != nil {
		return nil, nil, err
	}
	return js, t, nil
}

// onOwnConn returns the handle a worker uses: p itself, or, with
// Options.Dial, a handle on a connection of its own that shares p's
// identity, heartbeat and counts; release closes that connection.
func (p *Pipeline) onOwnConn(ctx context.Context) (w *Pipeline, release func(), err error) {
	if p.dial == nil {
		return p, func() {}, nil
	}
	nc, err := p.dial()
	if err != nil {
		return nil, nil, fmt.Errorf("connect a worker: %w", err)
	}
	js, t, err := attach(ctx, nc, p.t.settings, p.logger)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	w = &Pipeline{nc: nc, js: js, t: t, logger: p.logger, holder: p.holder, exclusive: p.exclusive, hb: p.hb, counts: p.counts}
	return w, nc.Close, nil
}

const (
	// publishTimeout bounds the wait for one publish's acknowledgement.
	publishTimeout = 30 * time.Second
	// declareTimeout bounds one attempt at declaring the topology.
	declareTimeout = 5 * time.Second
)

// declareRetry keeps a starting process trying while NATS comes up.
var declareRetry = retry.Policy{InitialInterval: 250 * time.Millisecond, MaxInterval: 5 * time.Second, MaxElapsed: 2 * time.Minute, MaxAttempts: -1}

// Close stops the heartbeat and waits for it. Call it after every Run
// method returned.
func (p *Pipeline) Close() {
	p.stop()
	p.wg.Wait()
}

func holderID() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + ":" + strconv.Itoa(os.Getpid()) + ":" + hex.EncodeToString(b[:])
}

// RunFormatter runs a formatter worker until ctx ends, then finishes the
// offers it holds and returns.
func (p *Pipeline) RunFormatter(ctx context.Context) error {
	p, release, err := p.onOwnConn(ctx)
	if err != nil {
		return fmt.Errorf("formatter: %w", err)
	}
	defer release()
	runs := newRunCache(p.t)
	f := &formatterStage{p: p, runs: runs}
	cons, err := p.t.offers.Consumer(ctx, FormatterConsumer)
	if err != nil {
		return fmt.Errorf("formatter: %w", err)
	}
	return p.runWorker(ctx, runs, &consumeLoop{
		name: FormatterConsumer, cons: cons, concurrency: p.t.settings.FormatConcurrency,
		handle: f.handle, giveUp: f.giveUp,
	}, p.t.offers, OffersStream, nil)
}

// RunPusher runs a pusher worker, with the completion tracker and the sync
// stage, until ctx ends; then it finishes the jobs it holds and returns.
// board carries the HrFlow credentials and the shared rate limit.
func (p *Pipeline) RunPusher(ctx context.Context, board Board) error {
	p, release, err := p.onOwnConn(ctx)
	if err != nil {
		return fmt.Errorf("pusher: %w", err)
	}
	defer release()
	runs := newRunCache(p.t)
	s := &pusherStage{p: p, board: board, runs: runs}
	cons, err := p.t.jobs.Consumer(ctx, PusherConsumer)
	if err != nil {
		return fmt.Errorf("pusher: %w", err)
	}
	tr := &tracker{p: p, sync: &syncStage{p: p, board: board}, followed: map[string]bool{}}
	return p.runWorker(ctx, runs, &consumeLoop{
		name: PusherConsumer, cons: cons, concurrency: p.t.settings.Concurrency,
		handle: s.handle, giveUp: s.giveUp,
	}, p.t.jobs, JobsStream, tr)
}

// runWorker runs a consume loop with what every worker needs around it.
func (p *Pipeline) runWorker(ctx context.Context, runs *runCache, l *consumeLoop, stream jetstream.Stream, streamName string, tr *tracker) error {
	l.ackWait, l.maxDeliver, l.drainTimeout, l.logger = p.t.settings.AckWait, p.t.settings.MaxDeliver, p.t.settings.DrainTimeout, p.logger
	var wg sync.WaitGroup
	defer wg.Wait()
	bg, stopBg := context.WithCancel(ctx)
	defer stopBg()
	if err := runs.watchFinished(bg, &wg, p.logger); err != nil {
		return fmt.Errorf("%s: watch finished runs: %w", l.name, err)
	}
	sub, err := watchMaxDeliveries(bg, p.nc, stream, streamName, l.name, l.giveUp, p.logger)
	if err != nil {
		return fmt.Errorf("%s: watch max deliveries: %w", l.name, err)
	}
	defer sub.Unsubscribe()
	if tr != nil {
		wg.Go(func() {
			if err := tr.run(bg); err != nil && bg.Err() == nil {
				p.logger.Error("completion tracker stopped", "err", err)
			}
		})
	}
	p.logger.Info("worker started", "stage", l.name, "concurrency", l.concurrency)
	err = l.run(ctx)
	p.logger.Info("worker stopped", "stage", l.name)
	return err
}

// fail ends an item as failed: a copy on the dead-letter stream, with the
// stage and reason in headers, then its final record.
func (p *Pipeline) fail(ctx context.Context, run, offer, stage string, data []byte, rec Record) error {
	m := nats.NewMsg(dlqPrefix + run + "." + stage)
	m.Header.Set(hdrOfferID, offer)
	m.Header.Set(hdrStage, stage)
	m.Header.Set(hdrReason, oneLine(rec.Reason))
	m.Header.Set(jetstream.MsgIDHeader, msgID(run, offer)+"."+stage)
	m.Data = data
	if _, err := p.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("dead-letter %s of run %s: %w", offer, run, err)
	}
	p.logger.Warn("item failed", "run", run, "offer", offer, "stage", stage, "failure", rec.Failure, "reason", rec.Reason)
	return p.t.record(ctx, run, rec)
}

// Event is a note about a run published on core NATS for whoever waits for
// it (pulljobs.events.<run>). Events are best effort; the report is not.
type Event struct {
	Type     string `json:"type"`
	Done     int    `json:"done"`
	Expected int    `json:"expected"`
	Message  string `json:"message,omitempty"`
}

// Event types.
const (
	EventStalled = "stalled"
	EventDone    = "done"
)

func (p *Pipeline) event(run string, e Event) {
	b, _ := json.Marshal(e) // an Event always marshals
	if err := p.nc.Publish(eventsPrefix+run, b); err != nil {
		p.logger.Debug("publish event", "run", run, "err", err)
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
	// Done counts the items that reached a final state.
	Done int
	// Formatted and Pushed count what this process's own formatter and
	// pusher did (0 when it runs none).
	Formatted, Pushed int
}

// Wait waits for run's report and returns it. Every second, and when the
// progress changes, it calls progress (when not nil) from its goroutine.
// Stall warnings of the watchdog are logged.
func (p *Pipeline) Wait(ctx context.Context, run string, progress func(Progress)) (Report, error) {
	reports, err := watch(ctx, p.t.runs, reportKey(run))
	if err != nil {
		return Report{}, fmt.Errorf("wait for run %s: %w", run, err)
	}
	defer reports.Stop()
	// Counting the done items costs a delivery per item: only for progress.
	var itemUpdates <-chan jetstream.KeyValueEntry
	if progress != nil {
		items, err := watch(ctx, p.t.items, run+".*", jetstream.MetaOnly(), jetstream.IgnoreDeletes())
		if err != nil {
			return Report{}, fmt.Errorf("wait for run %s: %w", run, err)
		}
		defer items.Stop()
		itemUpdates = items.Updates()
	}
	events := make(chan *nats.Msg, 16)
	sub, err := p.nc.ChanSubscribe(eventsPrefix+run, events)
	if err != nil {
		return Report{}, fmt.Errorf("wait for run %s: %w", run, err)
	}
	defer sub.Unsubscribe()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	pr := Progress{Run: run}
	done := map[string]struct{}{}
	for {
		select {
		case <-ctx.Done():
			return Report{}, ctx.Err()
		case e, ok := <-reports.Updates():
			if !ok {
				return Report{}, fmt.Errorf("wait for run %s: watcher closed", run)
			}
			if e == nil {
				continue
			}
			var r Report
			if err := json.Unmarshal(e.Value(), &r); err != nil {
				return Report{}, fmt.Errorf("report of run %s: %w", run, err)
			}
			return r, nil
		case e := <-itemUpdates:
			if e != nil {
				done[e.Key()] = struct{}{}
			}
		case m := <-events:
			var ev Event
			if json.Unmarshal(m.Data, &ev) == nil && ev.Type == EventStalled {
				p.logger.Warn("run stalled", "run", run, "done", ev.Done, "expected", ev.Expected, "detail", ev.Message)
			}
		case <-tick.C:
			if progress == nil {
				continue
			}
			pr.Done = len(done)
			if err := p.progress(ctx, &pr); err != nil && ctx.Err() == nil {
				p.logger.Debug("progress", "run", run, "err", err)
			}
			progress(pr)
		}
	}
}

func (p *Pipeline) progress(ctx context.Context, pr *Progress) error {
	if !pr.Sealed {
		seal, ok, err := p.t.seal(ctx, pr.Run)
		if err != nil {
			return err
		}
		if ok {
			pr.Sealed, pr.Expected, pr.Fetched = true, seal.Expected, seal.Expected
		} else {
			subject := offersPrefix + pr.Run
			info, err := p.t.offers.Info(ctx, jetstream.WithSubjectFilter(subject))
			if err != nil {
				return err
			}
			pr.Fetched = int(info.State.Subjects[subject])
		}
	}
	pr.Formatted, pr.Pushed = int(p.counts.formatted.Load()), int(p.counts.pushed.Load())
	return nil
}

// Report returns the report of a finished run; ok is false while it runs.
func (p *Pipeline) Report(ctx context.Context, run string) (r Report, ok bool, err error) {
	return p.t.report(ctx, run)
}
