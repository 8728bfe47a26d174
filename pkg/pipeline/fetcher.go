package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/payload"
	"github.com/pulljobs/pulljobs/pkg/retry"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/store"
)

// Searcher is what the fetcher needs of France Travail;
// *francetravail.Client implements it.
type Searcher interface {
	Search(ctx context.Context, q francetravail.Query, yield func(francetravail.Offer) error) (francetravail.Summary, error)
}

// FetchOptions tune Fetch.
type FetchOptions struct {
	// WaitBoard is how long to wait for a board busy with a run of another
	// configuration before giving up with a *BusyError. Zero refuses at once.
	WaitBoard time.Duration
	// OnFetched, when set, is called with the number of offers fetched so
	// far, from Fetch's goroutine; it must be quick.
	OnFetched func(fetched int)
	// OnStarted, when set, is called once the run holds its board, with its
	// id and whether it resumes (or attaches to) an earlier attempt of the
	// same run, before anything is fetched; from Fetch's goroutine. A
	// service replies to a request from it, while Fetch goes on.
	OnStarted func(run string, resumed bool)
}

// asyncPending bounds the publishes awaiting their acknowledgement.
const asyncPending = 1024

// fetchClaimTTL is how long a fetch whose process stopped showing signs of
// life keeps others from taking it over. A fetcher proves it is alive
// cheaply, so this is short: a fetcher killed and started again resumes
// within it.
const fetchClaimTTL = 10 * time.Second

// Fetch runs the fetch stage of a run: it takes the board, stores the
// run's spec, publishes every offer the search returns (or, for a replay,
// every offer stored by the replayed run), and seals the run once every
// publish is acknowledged. It returns the run id.
//
// When the board is held by an unfinished run with the same spec, Fetch
// joins it and returns its id: it fetches only if that run's fetch is
// unfinished and no live process is fetching it (then it publishes only
// the offers the run lacks), and returns once the run is sealed. A search
// that fails still seals the run, with the failure (the offers read so far
// are processed; sync is refused). An offer too large for NATS even
// compressed ends failed at once, and the run goes on. Fetch returns an
// error without sealing when ctx ends or NATS cannot take the offers:
// running it again resumes the run.
func (p *Pipeline) Fetch(ctx context.Context, spec RunSpec, src Searcher, o FetchOptions) (string, error) {
	if !p.stages.has(StageFetch) {
		return "", fmt.Errorf("fetch: %w", ErrStageNotOpened)
	}
	now := time.Now().UTC()
	if spec.ID == "" {
		spec.ID = NewRunID(now)
	}
	if spec.CreatedAt.IsZero() {
		spec.CreatedAt = now
	}
	if !rs.ValidRunID(spec.ID) {
		return "", fmt.Errorf("run id %q: want letters, digits, - and _", spec.ID)
	}
	if err := spec.Validate(); err != nil {
		return "", err
	}
	if spec.ReplayOf == "" && src == nil {
		return "", errors.New("fetch: no France Travail client for a run that is not a replay")
	}
	run, resumed, err := p.ledger.acquire(ctx, spec, acquireOptions{holder: p.holder, wait: o.WaitBoard, assumeStale: p.exclusive, logger: p.logger})
	if err != nil {
		return "", err
	}
	if o.OnStarted != nil {
		o.OnStarted(run, resumed)
	}
	if resumed {
		if spec, err = p.ledger.spec(ctx, run); err != nil {
			return run, err
		}
	} else {
		// The run's trace: its fetch, and its sync in whichever process.
		runCtx, sp := tracer.Start(ctx, "pulljobs.run", trace.WithAttributes(runAttr.String(run), boardAttr.String(spec.BoardKey)))
		defer sp.End()
		spec.TraceParent = traceParent(runCtx)
		if _, err := store.Create(ctx, p.ledger.runs, rs.SpecKey(run), spec); err != nil {
			return run, err
		}
	}
	f := &fetch{p: p, spec: spec, src: src, o: o, resumed: resumed, log: p.logger.With("run", run, "board", spec.BoardKey)}
	return run, f.run(runContext(ctx, spec))
}

// fetch is one attempt at fetching a run.
type fetch struct {
	p       *Pipeline
	spec    RunSpec
	src     Searcher
	o       FetchOptions
	resumed bool
	log     *slog.Logger
}

// run fetches the run unless it is sealed, or another live process fetches
// it: then it waits for the seal, and takes the fetch over should that
// process stop.
func (f *fetch) run(ctx context.Context) error {
	run := f.spec.ID
	// Keep the board while fetching, however slow the API is.
	beatCtx, stopBeat := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopBeat()
	wg.Go(func() {
		t := time.NewTicker(f.p.ledger.settings.LeaseTTL / 8)
		defer t.Stop()
		for {
			f.p.heartbeat.touch(f.spec.BoardKey, run)
			select {
			case <-beatCtx.Done():
				return
			case <-t.C:
			}
		}
	})
	for joined := false; ; joined = true {
		if _, sealed, err := f.p.ledger.seal(ctx, run); err != nil || sealed {
			if sealed && f.resumed {
				f.log.Info("joined a run whose fetch is complete")
			}
			return err
		}
		owner := f.p.holder + "/" + randomHex()
		won, _, err := store.Claim(ctx, f.p.ledger.runs, rs.FetchKey(run), fetchClaim{Owner: owner, Heartbeat: time.Now().UTC()}, fetchClaimTTL)
		if err != nil {
			return err
		}
		if won {
			return f.fetch(ctx, owner)
		}
		if !joined {
			f.log.Info("another process is fetching this run; waiting for its seal")
		}
		if err := retry.Sleep(ctx, fetchClaimTTL/4); err != nil {
			return fmt.Errorf("fetch of run %s interrupted (run it again to resume): %w", run, err)
		}
	}
}

// fetch fetches the run as owner of its fetch claim, and seals it.
func (f *fetch) fetch(ctx context.Context, owner string) error {
	run := f.spec.ID
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel, below
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wg.Go(func() {
		store.KeepClaim(ctx, cancel, f.p.ledger.runs, rs.FetchKey(run), owner, fetchClaimTTL, func(c *fetchClaim) { c.Heartbeat = time.Now().UTC() })
	})
	seen, err := f.published(ctx)
	if err != nil {
		return err
	}
	// The run's consumers exist before its first offer: the stages' workers
	// find it there, and so do the lag signals that wake them.
	if err := f.p.ledger.ensureRunConsumers(ctx, run); err != nil {
		return fmt.Errorf("create the consumers of run %s: %w", run, err)
	}
	f.log.Info("fetch started", "resumed", f.resumed, "replay_of", f.spec.ReplayOf, "published_before", seen.count)
	started := time.Now().UTC()
	pub := newPublisher(ctx, f.p)
	held := f.hold(ctx)
	if held != nil {
		wg.Go(func() { held.watch(ctx) })
	}
	fetched := 0
	yield := func(offer francetravail.Offer) error {
		fetched++
		if f.o.OnFetched != nil {
			f.o.OnFetched(fetched)
		}
		id := offerID(offer)
		if !seen.add(id) {
			return nil
		}
		if err := held.wait(ctx); err != nil {
			return err
		}
		return pub.publish(ctx, run, id, offer)
	}
	var sum francetravail.Summary
	var readErr error
	if f.spec.ReplayOf != "" {
		sum, readErr = f.p.replay(ctx, f.spec.ReplayOf, yield)
	} else {
		sum, readErr = f.src.Search(ctx, f.spec.Query, yield)
	}
	if err := pub.wait(); err != nil {
		return fmt.Errorf("publish offers of run %s (run the fetch again to resume it): %w", run, err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("fetch of run %s interrupted (run it again to resume): %w", run, context.Cause(ctx))
	}
	seal := rs.Seal{Expected: seen.count, ReadSuccess: seen.count, Truncated: sum.Truncated, Total: sum.Total, Duplicates: sum.Duplicates + seen.duplicates,
		Unreached: sum.Unreached, Windows: sum.Windows, Requests: sum.Requests, StartedAt: started, SealedAt: time.Now().UTC()}
	if readErr != nil && !errors.Is(readErr, errPublish) {
		seal.ReadFailure, seal.ReadError = true, readErr.Error()
		f.log.Error("fetch failed; the run goes on with what was read, and will not sync", "err", readErr, "read", seen.count)
	}
	if _, err := store.Create(ctx, f.p.ledger.runs, rs.SealKey(run), seal); err != nil {
		return err
	}
	f.log.Info("fetch sealed", "offers", seal.Expected, "duplicates", seal.Duplicates, "truncated", seal.Truncated, "read_failure", seal.ReadFailure)
	return nil
}

// hold returns the backpressure of the formatters on the fetch, or nil
// when the settings bound nothing or NATS cannot show the formatters'
// consumer: backpressure never stops a fetch.
func (f *fetch) hold(ctx context.Context) *backlog {
	high := f.p.ledger.settings.OffersBacklog
	if high <= 0 {
		return nil
	}
	cons, err := f.p.ledger.offers.Consumer(ctx, rs.RunConsumer(rs.FormatterConsumer, f.spec.ID))
	if err != nil {
		f.log.Warn("fetching without backpressure: the formatters' consumer is out of reach", "err", err)
		return nil
	}
	return &backlog{cons: cons, high: uint64(high), whileTaking: true}
}

// offerSet counts the offers a fetch published, and, when it must, which:
// a francetravail.IDSet holds their ids in about 8 bytes each, exactly.
type offerSet struct {
	ids        francetravail.IDSet
	count      int // distinct offers
	duplicates int // offers met again, that the search itself did not remove
	track      bool
}

// add reports whether id is new, and counts it.
func (s *offerSet) add(id string) bool {
	if s.track && !s.ids.Add(id) {
		s.duplicates++
		return false
	}
	s.count++
	return true
}

// published returns the set of offers the run published already (resumed
// run), or an empty one. A fresh search removes its duplicates itself: only
// a resumed run or a replay (whose stored offers may hold a republished
// one) pays for the set.
func (f *fetch) published(ctx context.Context) (*offerSet, error) {
	s := &offerSet{track: f.resumed || f.spec.ReplayOf != ""}
	if !f.resumed {
		return s, nil
	}
	err := store.ReadStream(ctx, f.p.ledger.offers, []string{rs.OffersSubjectPrefix + f.spec.ID}, true, func(m jetstream.Msg) error {
		s.add(m.Headers().Get(rs.HeaderOfferID))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the offers already published: %w", err)
	}
	// Offers that failed at the fetch have a record and no message.
	err = f.p.ledger.readRecords(ctx, f.spec.ID, 0, func(r rs.Record) error {
		if r.Stage == rs.FetcherStage {
			s.add(r.Offer)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.duplicates = 0
	return s, nil
}

// offerID returns the offer's id, or a stable stand-in for an offer without
// one, so that it still flows to the formatter and ends as a format failure.
func offerID(o francetravail.Offer) string {
	if id, err := o.ID(); err == nil {
		return id
	}
	sum := sha256.Sum256(o)
	return "noid-" + hex.EncodeToString(sum[:8])
}

// replay yields the offers stored by an earlier run.
func (p *Pipeline) replay(ctx context.Context, from string, yield func(francetravail.Offer) error) (francetravail.Summary, error) {
	var sum francetravail.Summary
	err := store.ReadStream(ctx, p.ledger.offers, []string{rs.OffersSubjectPrefix + from}, false, func(m jetstream.Msg) error {
		data, err := payload.Decode(m.Headers(), m.Data())
		if err != nil {
			return err
		}
		sum.Total++
		sum.Fetched++
		return yield(francetravail.Offer(data))
	})
	if err != nil {
		return sum, fmt.Errorf("replay run %s: %w", from, err)
	}
	if sum.Total == 0 {
		return sum, fmt.Errorf("replay run %s: no stored offers (unknown run, or older than the retention)", from)
	}
	return sum, nil
}

// errPublish marks a search stopped because the offers could not be
// published: a NATS failure, not a read failure.
var errPublish = errors.New("publish")

// publisher publishes a run's offers asynchronously and checks every
// acknowledgement, in a goroutine it owns until wait. A publish whose
// acknowledgement failed is retried synchronously; an offer that no retry
// can carry (too large) ends failed at once, through the fetcher's ender.
type publisher struct {
	ctx     context.Context // ends the checks early
	p       *Pipeline
	ender   *ender
	pending chan pendingPub
	done    chan struct{}
	err     error // first publish that failed for good; read after done
}

type pendingPub struct {
	it  *Item
	msg *nats.Msg
	ack jetstream.PubAckFuture
}

func newPublisher(ctx context.Context, p *Pipeline) *publisher {
	pb := &publisher{ctx: ctx, p: p, pending: make(chan pendingPub, asyncPending), done: make(chan struct{}),
		ender: &ender{ledger: p.ledger, stage: rs.FetcherStage, kind: rs.PublishFailure, carry: p.carrier, logger: p.logger}}
	go pb.check()
	return pb
}

// publish publishes one offer of run, in a trace of its own.
func (pb *publisher) publish(ctx context.Context, run, id string, offer francetravail.Offer) error {
	select {
	case <-pb.done:
		return fmt.Errorf("%w: %w", errPublish, pb.err)
	default:
	}
	octx, sp := offerSpan(ctx, run, id)
	defer sp.End()
	m := nats.NewMsg(rs.OffersSubjectPrefix + run)
	m.Header.Set(rs.HeaderOfferID, id)
	inject(octx, m.Header)
	it := &Item{Run: run, Offer: id, Data: offer, Header: m.Header, Delivery: 1}
	var tooLarge *payload.TooLargeError
	if err := payload.Encode(m, offer, pb.p.nc.MaxPayload()); errors.As(err, &tooLarge) {
		return pb.fail(ctx, it, err)
	}
	f, err := pb.p.js.PublishMsgAsync(m)
	if err != nil {
		return pb.republish(ctx, it, m)
	}
	select {
	case pb.pending <- pendingPub{it, m, f}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fail ends an offer that cannot be carried: a failed record, a dead letter.
func (pb *publisher) fail(ctx context.Context, it *Item, cause error) error {
	if err := pb.ender.end(ctx, it, failed(rs.FetcherStage, rs.PublishFailure, fmt.Errorf("offer %s: %w", it.Offer, cause))); err != nil {
		return fmt.Errorf("%w: %w", errPublish, err)
	}
	return nil
}

// republish publishes m synchronously, retrying through fail-overs.
func (pb *publisher) republish(ctx context.Context, it *Item, m *nats.Msg) error {
	m.Data = it.Data
	err := pb.p.carrier.Publish(ctx, m)
	var tooLarge *payload.TooLargeError
	switch {
	case errors.As(err, &tooLarge):
		return pb.fail(ctx, it, err)
	case err != nil:
		return fmt.Errorf("%w: offer %s: %w", errPublish, it.Offer, err)
	}
	return nil
}

func (pb *publisher) check() {
	defer close(pb.done)
	for pp := range pb.pending {
		if pb.err != nil {
			continue // drain
		}
		select {
		case <-pp.ack.Ok():
		case err := <-pp.ack.Err():
			if rerr := pb.republish(pb.ctx, pp.it, pp.msg); rerr != nil {
				pb.err = fmt.Errorf("%w (first attempt: %v)", rerr, err)
			}
		case <-pb.ctx.Done():
			pb.err = pb.ctx.Err()
		}
	}
}

// wait returns once every publish is acknowledged, with the first failure;
// early, with the context's error, when the publisher's context ends.
func (pb *publisher) wait() error {
	close(pb.pending)
	<-pb.done
	return pb.err
}
