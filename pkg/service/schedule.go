package service

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/robfig/cron/v3"

	"github.com/pulljobs/pulljobs/pkg/config"
	"github.com/pulljobs/pulljobs/pkg/declare"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/retry"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/store"
)

// SchedulesBucket holds, for each scheduled profile, the claim of every
// tick fired (<profile>.<tick in Unix seconds>: the tick's run), the last
// tick fired (<profile>.last) and the next one (<profile>.next: its board
// and time, which the boards' status shows).
const SchedulesBucket = runstatus.SchedulesBucket

// markerTTL is how long the schedules bucket keeps the marker of a claim
// that expired; setting it lets keys carry a time-to-live of their own.
const markerTTL = time.Minute

// maxCatchUpScan bounds the ticks read to find the latest missed one.
const maxCatchUpScan = 1 << 20

// tickClaim is the record of one tick: the run it started.
type tickClaim struct {
	RunID string    `json:"run_id"`
	Tick  time.Time `json:"tick"`
	By    string    `json:"claimed_by"`
	At    time.Time `json:"claimed_at"`
	// CatchUp marks a tick fired late, at start, for catch_up: once.
	CatchUp bool `json:"catch_up,omitempty"`
	// Resumed marks a tick whose trigger found an interrupted run of the
	// same profile and criteria, and resumed it: RunID is that run.
	Resumed bool `json:"resumed,omitempty"`
}

// lastTick is the latest tick a profile's schedule fired, or, before its
// first tick, when a replica first served the schedule.
type lastTick struct {
	Tick time.Time `json:"tick"`
}

// scheduler fires the ticks of the profiles' schedules: one loop per
// scheduled profile, started and stopped by sync, owned by the scheduler
// and stopped by stop.
//
// Exactly one run per tick, however many replicas serve. Every replica
// computes the same ticks (config.Schedule.Ticks). At a tick, each live
// replica claims it with kv.Create of the key <profile>.<tick>, holding a
// new run id: the server lets exactly one Create succeed, and the others
// read the winner's claim, so every replica knows the tick's run. Then each
// replica publishes the tick's trigger, Nats-Msg-Id schedule.<profile>.<tick>:
// the triggers stream stores it once within its duplicate window, and a
// replica that dies between its claim and its publish is covered by the
// others' publishes. The trigger consumer starts the run under the id of
// the claim; a second trigger for the same tick (published after the
// window, or delivered again after a replica died) names the same run, and
// finds it sealed, held by a live process (and waits for it), or
// interrupted (and resumes it): one run per tick, not one per message.
//
// Catch-up: <profile>.last holds the latest tick fired. A replica that
// starts serving a schedule, and each loop before each tick, compares it
// with the ticks due: with catch_up once the latest missed tick fires
// (claimed like any other, so several replicas starting at once still fire
// it once), with skip it is only logged.
type scheduler struct {
	kv     jetstream.KeyValue
	js     jetstream.JetStream
	holder string
	ttl    time.Duration // of a tick's claim: the runs' retention
	log    *slog.Logger
	now    func() time.Time

	mu    sync.Mutex
	loops map[string]*scheduleLoop
	wg    sync.WaitGroup
}

type scheduleLoop struct {
	sched config.Schedule
	stop  context.CancelFunc
}

func newScheduler(ctx context.Context, js jetstream.JetStream, s pipeline.Settings, holder string, log *slog.Logger) (*scheduler, error) {
	s = s.WithDefaults()
	kv, err := declare.KeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:         SchedulesBucket,
		Description:    "pulljobs: the run of each schedule tick, and the last tick fired per profile",
		Storage:        jetstream.FileStorage,
		Replicas:       s.Replicas,
		LimitMarkerTTL: markerTTL,
	})
	if err != nil {
		return nil, err
	}
	return &scheduler{kv: kv, js: js, holder: holder, ttl: s.Retention, log: log, now: time.Now, loops: map[string]*scheduleLoop{}}, nil
}

// sync starts a loop for each scheduled profile of ps, and stops the loops
// of profiles gone, unscheduled or whose schedule changed.
func (sc *scheduler) sync(ctx context.Context, ps *profileSet) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for name, l := range sc.loops {
		p, ok := ps.valid[name]
		if !ok || p.Config.Schedule == nil || *p.Config.Schedule != l.sched {
			l.stop()
			delete(sc.loops, name)
		}
	}
	for name, p := range ps.valid {
		if p.Config.Schedule == nil || sc.loops[name] != nil {
			continue
		}
		lctx, stop := context.WithCancel(ctx)
		sc.loops[name] = &scheduleLoop{sched: *p.Config.Schedule, stop: stop}
		sc.wg.Go(func() { sc.loop(lctx, name, p.Config.Target.BoardKey, *p.Config.Schedule, p.ticks) })
	}
	sc.dropNextTicks(ctx, ps)
}

// dropNextTicks removes the next ticks of the profiles that no schedule of
// ps fires any more, so that no board shows a run that will not come.
// Best effort: a later sync tries again.
func (sc *scheduler) dropNextTicks(ctx context.Context, ps *profileSet) {
	var stale []string
	err := store.Retry(ctx, func(ctx context.Context) error {
		stale = stale[:0]
		l, err := sc.kv.ListKeysFiltered(ctx, runstatus.NextTickKey("*"))
		if err != nil {
			return err
		}
		for k := range l.Keys() {
			profile := strings.TrimSuffix(k, runstatus.NextTickKey(""))
			if p, ok := ps.valid[profile]; !ok || p.Config.Schedule == nil {
				stale = append(stale, k)
			}
		}
		return nil
	})
	if err != nil {
		return
	}
	for _, k := range stale {
		_ = store.Retry(ctx, func(ctx context.Context) error { return sc.kv.Delete(ctx, k) })
	}
}

// stop stops every loop and waits for them.
func (sc *scheduler) stop() {
	sc.mu.Lock()
	for name, l := range sc.loops {
		l.stop()
		delete(sc.loops, name)
	}
	sc.mu.Unlock()
	sc.wg.Wait()
}

// loop fires a profile's ticks until ctx ends. Before waiting for each, it
// records it as the profile's next tick (runstatus.NextTick), which the
// boards' status shows.
func (sc *scheduler) loop(ctx context.Context, profile, board string, s config.Schedule, ticks cron.Schedule) {
	log := sc.log.With("profile", profile, "cron", s.Cron)
	log.Info("schedule served", "timezone", s.Timezone, "catch_up", s.CatchUpPolicy(), "next", ticks.Next(sc.now()))
	for {
		if err := sc.catchUp(ctx, profile, s, ticks, log); err != nil && ctx.Err() == nil {
			log.Error("catch up missed ticks", "err", err)
		}
		next := ticks.Next(sc.now())
		if next.IsZero() {
			log.Warn("the schedule fires no more")
			return
		}
		if err := store.Put(ctx, sc.kv, runstatus.NextTickKey(profile), runstatus.NextTick{BoardKey: board, At: next.UTC()}); err != nil && ctx.Err() == nil {
			log.Warn("record the next tick", "err", err)
		}
		if err := retry.Sleep(ctx, time.Until(next)); err != nil {
			return
		}
		if err := sc.fire(ctx, profile, next, false, log); err != nil && ctx.Err() == nil {
			log.Error("fire a schedule tick", "tick", next, "err", err)
		}
	}
}

// catchUp fires the latest tick due since the last one fired, under
// catch_up once; the first replica ever to serve the schedule records when
// it started instead, so that later starts know what was missed.
func (sc *scheduler) catchUp(ctx context.Context, profile string, s config.Schedule, ticks cron.Schedule, log *slog.Logger) error {
	var last lastTick
	_, found, err := store.Get(ctx, sc.kv, lastKey(profile), &last)
	if err != nil {
		return err
	}
	now := sc.now()
	if !found {
		_, err := store.Create(ctx, sc.kv, lastKey(profile), lastTick{Tick: now})
		return err
	}
	due, missed := latestTick(ticks, last.Tick, now)
	if missed == 0 {
		return nil
	}
	if s.CatchUpPolicy() == config.CatchUpSkip {
		log.Info("missed ticks skipped (catch_up: skip)", "missed", missed, "latest", due)
		return sc.setLast(ctx, profile, due)
	}
	log.Info("firing the latest missed tick (catch_up: once)", "missed", missed, "tick", due)
	return sc.fire(ctx, profile, due, true, log)
}

// latestTick returns the latest tick in (after, now], and how many there are.
func latestTick(ticks cron.Schedule, after, now time.Time) (latest time.Time, n int) {
	for t := ticks.Next(after); !t.IsZero() && !t.After(now) && n < maxCatchUpScan; t = ticks.Next(t) {
		latest, n = t, n+1
	}
	return latest, n
}

// fire claims a tick (or reads who did), publishes its trigger, and records
// it as the last one fired.
func (sc *scheduler) fire(ctx context.Context, profile string, tick time.Time, catchUp bool, log *slog.Logger) error {
	tick = tick.UTC()
	claim := tickClaim{RunID: pipeline.NewRunID(tick), Tick: tick, By: sc.holder, At: sc.now().UTC(), CatchUp: catchUp}
	// A Create retried after its answer was lost finds its own write, and
	// reports it as lost: the claim read next is then its own.
	won, err := store.Create(ctx, sc.kv, tickKey(profile, tick.Unix()), claim, jetstream.KeyTTL(sc.ttl))
	if err != nil {
		return err
	}
	if !won {
		if claim, err = sc.claim(ctx, profile, tick.Unix()); err != nil {
			return err
		}
	}
	m := nats.NewMsg(TriggerSubjectPrefix + profile)
	m.Header.Set(HeaderTick, strconv.FormatInt(tick.Unix(), 10))
	m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("schedule.%s.%d", profile, tick.Unix()))
	m.Data = []byte("{}")
	if err := store.Retry(ctx, func(ctx context.Context) error { _, err := sc.js.PublishMsg(ctx, m); return err }); err != nil {
		return fmt.Errorf("publish the trigger of tick %s: %w", tick.Format(time.RFC3339), err)
	}
	log.Info("schedule tick", "tick", tick, "run", claim.RunID, "claimed_here", won, "claimed_by", claim.By, "catch_up", claim.CatchUp)
	return sc.setLast(ctx, profile, tick)
}

// claim returns the claim of a profile's tick; a tick nobody claimed is
// refused (CodeBadRequest): a trigger naming it is not a schedule's.
func (sc *scheduler) claim(ctx context.Context, profile string, tick int64) (tickClaim, error) {
	var c tickClaim
	_, found, err := store.Get(ctx, sc.kv, tickKey(profile, tick), &c)
	if err != nil {
		return c, err
	}
	if !found {
		return c, refuse(CodeBadRequest, "%s %d: no tick of profile %s's schedule was claimed at that time", HeaderTick, tick, profile)
	}
	return c, nil
}

// resumedBy records that a tick's trigger resumed run rather than starting
// the run of its claim. Best effort: the log says it too.
func (sc *scheduler) resumedBy(ctx context.Context, profile string, tick int64, run string, log *slog.Logger) {
	var c tickClaim
	rev, found, err := store.Get(ctx, sc.kv, tickKey(profile, tick), &c)
	if err == nil && found {
		c.RunID, c.Resumed = run, true
		err = store.Update(ctx, sc.kv, tickKey(profile, tick), c, rev)
	}
	if err != nil {
		log.Warn("record the run a tick resumed", "err", err)
	}
}

// setLast records tick as the last fired, unless a later one is.
func (sc *scheduler) setLast(ctx context.Context, profile string, tick time.Time) error {
	for {
		var last lastTick
		rev, found, err := store.Get(ctx, sc.kv, lastKey(profile), &last)
		if err != nil {
			return err
		}
		if found && !last.Tick.Before(tick) {
			return nil
		}
		next := lastTick{Tick: tick.UTC()}
		if !found {
			created, err := store.Create(ctx, sc.kv, lastKey(profile), next)
			if err != nil || created {
				return err
			}
			continue // another replica created it: read again
		}
		err = store.Update(ctx, sc.kv, lastKey(profile), next, rev)
		if store.IsConflict(err) {
			continue // another replica moved it: read again
		}
		return err
	}
}

func tickKey(profile string, tick int64) string { return profile + "." + strconv.FormatInt(tick, 10) }
func lastKey(profile string) string             { return profile + ".last" }
