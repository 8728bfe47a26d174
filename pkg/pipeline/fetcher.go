package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/retry"
)

// Searcher is what the fetcher needs of France Travail;
// *francetravail.Client implements it.
type Searcher interface {
	Search(ctx context.Context, q francetravail.Query, yield func(francetravail.Offer) error) (francetravail.Summary, error)
}

// FetchOptions tune Fetch.
type FetchOptions struct {
	// WaitBoard is how long to wait for a board busy with another run before
	// giving up with a *BusyError. Zero refuses at once.
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

// Fetch runs the fetch stage of a new run: it takes the board, stores the
// run's spec, publishes every offer the search returns (or, for a replay,
// every offer stored by the replayed run), and seals the run once every
// publish is acknowledged. It returns the run id.
//
// When the board is held by an unfinished run with the same spec whose
// processes stopped, Fetch resumes that run and returns its id: it publishes
// only the offers that run lacks, or nothing if its fetch was complete. A search that fails still seals the
// run, with the failure (the offers read so far are processed; sync is
// refused). Fetch returns an error without sealing when ctx ends or NATS
// cannot take the offers: running it again resumes the run.
func (p *Pipeline) Fetch(ctx context.Context, spec RunSpec, src Searcher, o FetchOptions) (string, error) {
	now := time.Now().UTC()
	if spec.ID == "" {
		spec.ID = NewRunID(now)
	}
	if spec.CreatedAt.IsZero() {
		spec.CreatedAt = now
	}
	if !ValidRunID(spec.ID) {
		return "", fmt.Errorf("run id %q: want letters, digits, - and _", spec.ID)
	}
	if err := spec.Validate(); err != nil {
		return "", err
	}
	if spec.ReplayOf == "" && src == nil {
		return "", errors.New("fetch: no France Travail client for a run that is not a replay")
	}
	run, resumed, err := p.t.acquire(ctx, spec, acquireOptions{holder: p.holder, wait: o.WaitBoard, assumeStale: p.exclusive, logger: p.logger})
	if err != nil {
		return "", err
	}
	if o.OnStarted != nil {
		o.OnStarted(run, resumed)
	}
	if resumed {
		stored, err := p.t.spec(ctx, run)
		if err != nil {
			return run, err
		}
		spec = stored
		if _, sealed, err := p.t.seal(ctx, run); err != nil || sealed {
			// Fetched already: the workers finish the run where it stopped.
			p.logger.Info("resuming a run whose fetch was complete", "run", run, "board", spec.BoardKey)
			return run, err
		}
	} else if _, err := createJSON(ctx, p.t.runs, specKey(run), spec); err != nil {
		return run, err
	}
	log := p.logger.With("run", run, "board", spec.BoardKey)
	log.Info("fetch started", "resumed", resumed, "replay_of", spec.ReplayOf)
	ctx, sp := tracer.Start(ctx, "pulljobs.fetch")
	sp.SetAttributes(runAttr.String(run))
	defer sp.End()

	// Keep the board while fetching, however slow the API is.
	beatCtx, stopBeat := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(p.t.settings.LeaseTTL / 8)
		defer t.Stop()
		for {
			p.hb.touch(spec.BoardKey, run)
			select {
			case <-beatCtx.Done():
				return
			case <-t.C:
			}
		}
	})
	defer wg.Wait()
	defer stopBeat()

	known := map[string]bool{}
	if resumed {
		if err := p.readSubject(ctx, offersPrefix+run, true, func(m jetstream.Msg) error {
			known[m.Headers().Get(hdrOfferID)] = true
			return nil
		}); err != nil {
			return run, fmt.Errorf("read the offers already published: %w", err)
		}
		log.Info("offers already published by the interrupted fetch", "count", len(known))
	}
	pub := newPublisher(ctx, p.js)
	fetched := 0
	var pubErr error
	yield := func(offer francetravail.Offer) error {
		id := offerID(offer)
		fetched++
		if o.OnFetched != nil {
			o.OnFetched(fetched)
		}
		if known[id] {
			return nil
		}
		known[id] = true
		m := nats.NewMsg(offersPrefix + run)
		m.Header.Set(hdrOfferID, id)
		m.Header.Set(jetstream.MsgIDHeader, msgID(run, id))
		inject(ctx, m.Header)
		m.Data = offer
		if err := pub.publish(ctx, m); err != nil {
			pubErr = err
			return err
		}
		return nil
	}
	started := time.Now().UTC()
	var sum francetravail.Summary
	var readErr error
	if spec.ReplayOf != "" {
		sum, readErr = p.replay(ctx, spec.ReplayOf, yield)
	} else {
		sum, readErr = src.Search(ctx, spec.Query, yield)
	}
	if err := pub.wait(); err != nil && pubErr == nil {
		pubErr = err
	}
	if pubErr != nil {
		return run, fmt.Errorf("publish offers of run %s (run the fetch again to resume it): %w", run, pubErr)
	}
	if err := ctx.Err(); err != nil {
		return run, fmt.Errorf("fetch of run %s interrupted (run it again to resume): %w", run, err)
	}
	seal := Seal{Expected: len(known), ReadSuccess: len(known), Truncated: sum.Truncated, Total: sum.Total,
		Unreached: sum.Unreached, Windows: sum.Windows, Requests: sum.Requests, StartedAt: started, SealedAt: time.Now().UTC()}
	if readErr != nil {
		seal.ReadFailure, seal.ReadError = true, readErr.Error()
		log.Error("fetch failed; the run goes on with what was read, and will not sync", "err", readErr, "read", len(known))
	}
	if _, err := createJSON(ctx, p.t.runs, sealKey(run), seal); err != nil {
		return run, err
	}
	log.Info("fetch sealed", "offers", seal.Expected, "truncated", seal.Truncated, "read_failure", seal.ReadFailure)
	return run, nil
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
	err := p.readSubject(ctx, offersPrefix+from, false, func(m jetstream.Msg) error {
		sum.Total++
		sum.Fetched++
		return yield(francetravail.Offer(m.Data()))
	})
	if err != nil {
		return sum, fmt.Errorf("replay run %s: %w", from, err)
	}
	if sum.Total == 0 {
		return sum, fmt.Errorf("replay run %s: no stored offers (unknown run, or older than the retention)", from)
	}
	return sum, nil
}

// readSubject calls fn for every message stored on subject in the offers
// stream, in order, until the last one stored when it started.
func (p *Pipeline) readSubject(ctx context.Context, subject string, headersOnly bool, fn func(jetstream.Msg) error) error {
	var info *jetstream.StreamInfo
	err := withRetry(ctx, func(ctx context.Context) error {
		var err error
		info, err = p.t.offers.Info(ctx, jetstream.WithSubjectFilter(subject))
		return err
	})
	if err != nil {
		return err
	}
	if info.State.Subjects[subject] == 0 {
		return nil
	}
	cons, err := p.t.offers.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, HeadersOnly: headersOnly})
	if err != nil {
		return err
	}
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		if meta.NumPending == 0 {
			return nil
		}
	}
}

// publisher publishes asynchronously and checks every acknowledgement, in a
// goroutine it owns until wait. A publish that fails is retried
// synchronously (its message id makes the retry safe).
type publisher struct {
	ctx     context.Context // ends the checks early
	js      jetstream.JetStream
	pending chan pendingPub
	done    chan struct{}
	err     error // first publish that failed for good; read after done
}

type pendingPub struct {
	msg *nats.Msg
	ack jetstream.PubAckFuture
}

func newPublisher(ctx context.Context, js jetstream.JetStream) *publisher {
	pb := &publisher{ctx: ctx, js: js, pending: make(chan pendingPub, asyncPending), done: make(chan struct{})}
	go pb.check()
	return pb
}

func (pb *publisher) publish(ctx context.Context, m *nats.Msg) error {
	select {
	case <-pb.done:
		return pb.err
	default:
	}
	f, err := pb.js.PublishMsgAsync(m)
	if err != nil {
		if err := pb.republish(ctx, m); err != nil {
			return err
		}
		return nil
	}
	select {
	case pb.pending <- pendingPub{m, f}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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
			if rerr := pb.republish(pb.ctx, pp.msg); rerr != nil {
				pb.err = fmt.Errorf("%w (first attempt: %v)", rerr, err)
			}
		case <-pb.ctx.Done():
			pb.err = pb.ctx.Err()
		}
	}
}

// publishRetry bounds the synchronous retries of one publish: NATS may be
// restarting or electing a leader.
var publishRetry = retry.Policy{InitialInterval: 100 * time.Millisecond, MaxInterval: 5 * time.Second, MaxElapsed: 2 * time.Minute, MaxAttempts: -1}

func (pb *publisher) republish(ctx context.Context, m *nats.Msg) error {
	return retry.Do(ctx, publishRetry, func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := pb.js.PublishMsg(actx, m); err != nil {
			return transient{err}
		}
		return nil
	}, nil)
}

// wait returns once every publish is acknowledged, with the first failure;
// early, with the context's error, when the publisher's context ends.
func (pb *publisher) wait() error {
	close(pb.pending)
	<-pb.done
	return pb.err
}

// transient marks an error worth retrying whatever its type.
type transient struct{ err error }

func (t transient) Error() string   { return t.err.Error() }
func (t transient) Unwrap() error   { return t.err }
func (t transient) Retryable() bool { return true }
