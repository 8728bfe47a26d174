// Package service is `fetcher serve`: a long-running fetcher, run by any
// number of replicas, that starts runs of the profiles of a directory on
// request (the NATS micro service pulljobs, on pulljobs.run.<profile>), on
// events (durable triggers on pulljobs.trigger.<profile>) and on the
// profiles' schedules, and tells how runs went (pulljobs.runs.list and
// pulljobs.runs.get).
//
// A profile is a configuration file, DIR/<profile>.yaml, exactly as
// `fetcher run --config` takes it, with an optional schedule section.
// Replicas share nothing but NATS: triggers go through a durable consumer
// they share, requests through the micro service's queue group, and each
// schedule tick is claimed once in a key-value bucket.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
)

// Options configure a Service.
type Options struct {
	// ProfilesDir holds the profiles, DIR/<profile>.yaml.
	ProfilesDir string
	// WaitBoard bounds how long a trigger or a schedule tick waits for a
	// board busy with another run before it is dead-lettered. Default
	// DefaultWaitBoard. Requests never wait: they are refused at once.
	WaitBoard time.Duration
	// DrainTimeout bounds how long a stopping service lets its fetches in
	// flight finish; those still running are then interrupted, and resumed
	// by the next attempt of the same run. Default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Logger receives the service's and the pipeline's logs; nil discards
	// them.
	Logger *slog.Logger
	// FranceTravailLimiter, when not nil, returns the limiter that the
	// France Travail client of a profile waits for beside its own rate
	// limit, given the profile's client id: the hold of the application's
	// quota that every replica shares (worker.FranceTravailHold).
	FranceTravailLimiter func(ctx context.Context, clientID string) (francetravail.Limiter, error)
}

// Defaults of Options.
const (
	DefaultWaitBoard    = 10 * time.Minute
	DefaultDrainTimeout = 30 * time.Second
)

// Service is one replica of `fetcher serve`. Create it with New, run it
// with Run, release it with Close.
type Service struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	p      *pipeline.Pipeline
	o      Options
	log    *slog.Logger
	holder string

	settings    pipeline.Settings // the fleet's, fixed at start
	profiles    atomic.Pointer[profileSet]
	triggers    jetstream.Stream
	triggerCons jetstream.Consumer
	sched       *scheduler
	reloads     chan struct{}

	// fetchCtx is the context of every fetch; stopFetches ends it once the
	// drain time-out has passed.
	fetchCtx    context.Context
	stopFetches context.CancelFunc
	mu          sync.Mutex // guards stopping, and fetches' Go against its Wait
	stopping    bool
	fetches     sync.WaitGroup
}

// New reads the profiles, reports those it cannot use, opens the pipeline
// (with the profiles' pipeline section: the fleet's, which every profile
// must share) and declares the triggers stream, its consumer and the
// schedules bucket. It fails only when the directory cannot be read or
// NATS cannot be used.
func New(ctx context.Context, nc *nats.Conn, o Options) (*Service, error) {
	if o.WaitBoard <= 0 {
		o.WaitBoard = DefaultWaitBoard
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{nc: nc, o: o, log: log, holder: holderID(), reloads: make(chan struct{}, 1)}
	ps, settings, err := loadProfiles(ctx, o.ProfilesDir, nil, o.FranceTravailLimiter, log)
	if err != nil {
		return nil, err
	}
	s.settings = settings
	s.reportProfiles(ps)
	s.profiles.Store(ps)
	if s.p, err = pipeline.New(ctx, nc, pipeline.Options{Settings: settings, Logger: log, Stages: pipeline.StageFetch}); err != nil {
		ps.closeIdle()
		return nil, err
	}
	if err := s.declare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.fetchCtx, s.stopFetches = context.WithCancel(context.WithoutCancel(ctx))
	return s, nil
}

func (s *Service) declare(ctx context.Context) error {
	var err error
	if s.js, err = jetstream.New(s.nc); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if s.triggers, s.triggerCons, err = declareTriggers(ctx, s.js, s.settings); err != nil {
		return err
	}
	s.sched, err = newScheduler(ctx, s.js, s.settings, s.holder, s.log)
	return err
}

// Run serves until ctx ends, then stops gracefully: it leaves the micro
// service and the triggers' consumer, stops the schedules, lets the
// fetches in flight finish within the drain time-out, and interrupts
// those left, whose triggers go back to another replica.
func (s *Service) Run(ctx context.Context) error {
	svc, err := s.addMicro(ctx)
	if err != nil {
		return fmt.Errorf("start the micro service: %w", err)
	}
	giveUps, err := s.watchGiveUps(ctx)
	if err != nil {
		_ = svc.Stop()
		return fmt.Errorf("watch exhausted triggers: %w", err)
	}
	unobserve := s.observeBoards()
	defer unobserve()
	var handlers sync.WaitGroup
	consumer := make(chan struct{})
	go func() {
		defer close(consumer)
		s.consumeTriggers(ctx, &handlers)
	}()
	s.sched.sync(ctx, s.profiles.Load())
	s.log.Info("serving", "profiles", strings.Join(s.profiles.Load().names(), ","), "holder", s.holder)
serve:
	for {
		select {
		case <-s.reloads:
			s.reload(ctx)
		case <-ctx.Done():
			break serve
		}
	}
	s.log.Info("stopping: no more requests, triggers or ticks; finishing the fetches in flight", "drain_timeout", s.o.DrainTimeout.String())
	_ = svc.Stop()
	_ = giveUps.Unsubscribe()
	s.sched.stop()
	<-consumer
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.drain()
	handlers.Wait()
	s.log.Info("stopped")
	return nil
}

// drain waits for the fetches in flight, at most the drain time-out, then
// interrupts those left and waits for them to return.
func (s *Service) drain() {
	done := make(chan struct{})
	go func() {
		s.fetches.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.o.DrainTimeout):
		s.log.Warn("drain time-out: interrupting the fetches in flight; the next attempt of each run resumes it")
		s.stopFetches()
		<-done
	}
}

// RequestReload asks Run to read the profiles again (SIGHUP); it never
// blocks.
func (s *Service) RequestReload() {
	select {
	case s.reloads <- struct{}{}:
	default:
	}
}

// reload reads the profiles again, reports those it cannot use, and
// serves the new set: runs in flight keep the profile they started with,
// and schedules whose profile changed restart. A profile whose pipeline
// section differs from the running one is refused: the pipeline section is
// the fleet's, changed by a restart.
func (s *Service) reload(ctx context.Context) {
	ps, _, err := loadProfiles(ctx, s.o.ProfilesDir, &s.settings, s.o.FranceTravailLimiter, s.log)
	if err != nil {
		s.log.Error("reload profiles; keeping the current ones", "err", err)
		return
	}
	s.reportProfiles(ps)
	old := s.profiles.Swap(ps)
	old.closeIdle()
	s.sched.sync(ctx, ps)
	s.log.Info("profiles reloaded", "profiles", strings.Join(ps.names(), ","))
}

// reportProfiles logs each profile that cannot be used, with its file and
// the key at fault.
func (s *Service) reportProfiles(ps *profileSet) {
	for _, pe := range ps.invalid {
		s.log.Error("profile refused; the others are served", "profile", pe.Name, "file", pe.Path, "err", pe.Err)
	}
	if len(ps.valid) == 0 {
		s.log.Warn("no valid profile", "dir", s.o.ProfilesDir)
	}
}

// profile returns the named profile, or a refusal saying why there is
// none (CodeNotFound).
func (s *Service) profile(name string) (*Profile, error) {
	ps := s.profiles.Load()
	if p, ok := ps.valid[name]; ok {
		return p, nil
	}
	if pe, ok := ps.invalid[name]; ok {
		return nil, refuse(CodeNotFound, "profile %s is invalid (%s): %v", name, pe.Path, pe.Err)
	}
	known := ps.names()
	if len(known) == 0 {
		return nil, refuse(CodeNotFound, "unknown profile %q: no valid profile is served", name)
	}
	return nil, refuse(CodeNotFound, "unknown profile %q (profiles: %s)", name, strings.Join(known, ", "))
}

// JetStream returns the service's JetStream handle, for the status page.
func (s *Service) JetStream() jetstream.JetStream { return s.js }

// Close releases the pipeline and the profiles' clients. Call it after Run
// returned.
func (s *Service) Close() {
	if s.stopFetches != nil {
		s.stopFetches()
	}
	s.p.Close()
	s.profiles.Load().closeIdle()
}

func holderID() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return host + ":" + strconv.Itoa(os.Getpid()) + ":" + hex.EncodeToString(b[:])
}
