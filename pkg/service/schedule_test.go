package service

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/config"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/store"
)

// scheduled returns a profile set with one scheduled profile.
func scheduled(t *testing.T, name string, s config.Schedule) *profileSet {
	t.Helper()
	ticks, err := s.Ticks()
	if err != nil {
		t.Fatal(err)
	}
	p := &Profile{Name: name, Config: config.Config{Schedule: &s, Target: config.Target{BoardKey: hrflowtest.DefaultBoardKey}}, ticks: ticks}
	return &profileSet{valid: map[string]*Profile{name: p}, invalid: map[string]*ProfileError{}}
}

// newTestScheduler is one replica's scheduler, with the triggers stream.
func newTestScheduler(t *testing.T, e *env, holder string) *scheduler {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js := e.JetStream()
	if _, _, err := declareTriggers(ctx, js, testSettings); err != nil {
		t.Fatal(err)
	}
	sc, err := newScheduler(ctx, js, testSettings, holder, logger(t).With("replica", holder))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// tickTriggers reads the triggers stream: the tick of each message.
func tickTriggers(t *testing.T, e *env) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.JetStream().Stream(ctx, TriggersStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ticks []int64
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		tick, err := strconv.ParseInt(m.Header.Get(HeaderTick), 10, 64)
		if err != nil {
			t.Fatalf("trigger %d without a tick: %v", seq, err)
		}
		ticks = append(ticks, tick)
	}
	return ticks
}

// claims reads the tick claims of profile, by tick.
func claims(t *testing.T, sc *scheduler, profile string) map[int64]tickClaim {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[int64]tickClaim{}
	l, err := sc.kv.ListKeysFiltered(ctx, profile+".*")
	if err != nil {
		t.Fatal(err)
	}
	for k := range l.Keys() {
		tick, err := strconv.ParseInt(strings.TrimPrefix(k, profile+"."), 10, 64)
		if err != nil {
			continue // the last key
		}
		e, err := sc.kv.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		var c tickClaim
		if err := json.Unmarshal(e.Value(), &c); err != nil {
			t.Fatal(err)
		}
		out[tick] = c
	}
	return out
}

// TestScheduleExactlyOnce runs two replicas' schedulers on one server for
// a few ticks: each tick is claimed once, with one run id, and its trigger
// is stored once.
func TestScheduleExactlyOnce(t *testing.T) {
	e := newEnv(t, 1)
	a, b := newTestScheduler(t, e, "replica-a"), newTestScheduler(t, e, "replica-b")
	ps := scheduled(t, "ticker", config.Schedule{Cron: "@every 1s"})
	ctx, cancel := context.WithCancel(context.Background())
	a.sync(ctx, ps)
	b.sync(ctx, ps)
	const ticks = 3
	waitFor(t, "3 ticks claimed", func() bool { return len(claims(t, a, "ticker")) >= ticks })
	var next runstatus.NextTick
	if _, found, err := store.Get(context.Background(), a.kv, runstatus.NextTickKey("ticker"), &next); err != nil || !found || next.At.IsZero() || next.BoardKey == "" {
		t.Errorf("next tick %+v (found %v, %v), want the profile's board and a time", next, found, err)
	}
	a.sync(ctx, &profileSet{valid: map[string]*Profile{}})
	if _, found, err := store.Get(context.Background(), a.kv, runstatus.NextTickKey("ticker"), &next); err != nil || found {
		t.Errorf("next tick of a profile no longer scheduled: found %v, %v; want none", found, err)
	}
	cancel()
	a.stop()
	b.stop()

	got := claims(t, a, "ticker")
	triggers := tickTriggers(t, e)
	stored := map[int64]int{}
	for _, tick := range triggers {
		stored[tick]++
	}
	by := map[string]int{}
	runs := map[string]bool{}
	for tick, c := range got {
		if stored[tick] != 1 {
			t.Errorf("tick %d has %d triggers stored, want exactly 1", tick, stored[tick])
		}
		if c.Tick.Unix() != tick || runs[c.RunID] {
			t.Errorf("claim of tick %d: %+v (run seen before: %v)", tick, c, runs[c.RunID])
		}
		runs[c.RunID] = true
		by[c.By]++
	}
	if len(triggers) != len(got) {
		t.Errorf("%d triggers stored for %d ticks claimed: %v", len(triggers), len(got), triggers)
	}
	t.Logf("%d ticks, claimed by %v", len(got), by)
}

// TestCatchUp checks what a replica starting after every replica was down
// does with the ticks missed meanwhile.
func TestCatchUp(t *testing.T) {
	hour := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		catchUp    string
		last       *time.Time // nil: the schedule was never served
		wantFired  []time.Time
		wantLastAt time.Time
	}{
		{"once fires the latest missed tick", config.CatchUpOnce, &hour, []time.Time{hour.Add(5 * time.Hour)}, hour.Add(5 * time.Hour)},
		{"skip fires none", config.CatchUpSkip, &hour, nil, hour.Add(5 * time.Hour)},
		{"nothing missed", config.CatchUpOnce, ptr(hour.Add(5 * time.Hour)), nil, hour.Add(5 * time.Hour)},
		{"never served: nothing was missed", config.CatchUpOnce, nil, nil, hour.Add(5*time.Hour + 30*time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 1)
			sc := newTestScheduler(t, e, "replica-a")
			sc.now = func() time.Time { return hour.Add(5*time.Hour + 30*time.Minute) }
			ctx := context.Background()
			if tc.last != nil {
				if _, err := store.Create(ctx, sc.kv, lastKey("daily"), lastTick{Tick: *tc.last}); err != nil {
					t.Fatal(err)
				}
			}
			s := config.Schedule{Cron: "@hourly", CatchUp: tc.catchUp}
			ticks, _ := s.Ticks()
			for range 2 { // a second look at the same moment fires nothing more
				if err := sc.catchUp(ctx, "daily", s, ticks, sc.log); err != nil {
					t.Fatal(err)
				}
			}
			var fired []time.Time
			for tick := range claims(t, sc, "daily") {
				fired = append(fired, time.Unix(tick, 0).UTC())
			}
			if len(fired) != len(tc.wantFired) || (len(fired) == 1 && !fired[0].Equal(tc.wantFired[0])) {
				t.Errorf("fired %v, want %v", fired, tc.wantFired)
			}
			if n := len(tickTriggers(t, e)); n != len(tc.wantFired) {
				t.Errorf("%d triggers stored, want %d", n, len(tc.wantFired))
			}
			var last lastTick
			if _, found, err := store.Get(ctx, sc.kv, lastKey("daily"), &last); err != nil || !found || !last.Tick.Equal(tc.wantLastAt) {
				t.Errorf("last = %v (found %v, %v), want %v", last.Tick, found, err, tc.wantLastAt)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestTickClaimExpires checks that tick claims carry the retention as
// their time-to-live, and the last tick none.
func TestTickClaimExpires(t *testing.T) {
	e := newEnv(t, 1)
	sc := newTestScheduler(t, e, "replica-a")
	ctx := context.Background()
	if err := sc.fire(ctx, "ticker", time.Now().Truncate(time.Second), false, sc.log); err != nil {
		t.Fatal(err)
	}
	st, err := sc.kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != 0 || st.LimitMarkerTTL() == 0 {
		t.Errorf("bucket TTL %v, marker TTL %v: want no bucket TTL, and per-key TTLs allowed", st.TTL(), st.LimitMarkerTTL())
	}
	js := e.JetStream()
	s, err := js.Stream(ctx, "KV_"+SchedulesBucket)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	l, _ := sc.kv.ListKeys(ctx)
	for k := range l.Keys() {
		raw, err := s.GetLastMsgForSubject(ctx, "$KV."+SchedulesBucket+"."+k)
		if err != nil {
			t.Fatal(err)
		}
		ttl := raw.Header.Get(jetstream.MsgTTLHeader)
		switch {
		case strings.HasSuffix(k, ".last") && ttl != "":
			t.Errorf("the last tick expires (%s): catch-up would forget it", ttl)
		case !strings.HasSuffix(k, ".last"):
			found = true
			if ttl == "" {
				t.Errorf("claim %s never expires", k)
			}
		}
	}
	if !found {
		t.Error("no claim stored")
	}
}
