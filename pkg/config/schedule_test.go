package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestScheduleTicks(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		sched  Schedule
		after  string
		want   string
		wantTZ string
	}{
		{"five fields in UTC by default", Schedule{Cron: "0 6 * * 1-5"}, "2026-11-27T07:00:00Z", "2026-11-30T06:00:00Z", ""},
		{"five fields in the schedule's zone", Schedule{Cron: "0 6 * * *", Timezone: "Europe/Paris"}, "2026-11-27T07:00:00Z", "2026-11-28T05:00:00Z", "Europe/Paris"},
		{"@hourly", Schedule{Cron: "@hourly"}, "2026-11-27T07:10:00Z", "2026-11-27T08:00:00Z", ""},
		{"@daily in a zone", Schedule{Cron: "@daily", Timezone: "America/New_York"}, "2026-11-27T07:10:00Z", "2026-11-28T05:00:00Z", ""},
		{"@every on the epoch's multiples", Schedule{Cron: "@every 30m"}, "2026-11-27T07:10:42Z", "2026-11-27T07:30:00Z", ""},
		{"@every from a tick", Schedule{Cron: "@every 2s"}, "2026-11-27T07:10:42Z", "2026-11-27T07:10:44Z", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ticks, err := tc.sched.Ticks()
			if err != nil {
				t.Fatal(err)
			}
			got := ticks.Next(at(tc.after))
			if !got.Equal(at(tc.want)) {
				t.Errorf("Next(%s) = %s, want %s", tc.after, got.UTC().Format(time.RFC3339), tc.want)
			}
		})
	}
}

// TestEveryIsTheSameForEveryReplica checks that two replicas started at
// different moments compute the same ticks: the exactly-once claim of a
// tick relies on it.
func TestEveryIsTheSameForEveryReplica(t *testing.T) {
	ticks, err := Schedule{Cron: "@every 7s"}.Ticks()
	if err != nil {
		t.Fatal(err)
	}
	a := ticks.Next(time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC))
	for _, before := range []time.Duration{6900 * time.Millisecond, 3 * time.Second, time.Millisecond} {
		if b := ticks.Next(a.Add(-before)); !b.Equal(a) {
			t.Errorf("a replica asking %v before the tick %s gets %s", before, a, b)
		}
	}
	if a.UnixNano()%int64(7*time.Second) != 0 {
		t.Errorf("tick %s is not a multiple of 7s since the epoch", a)
	}
	if next := ticks.Next(a); next.Sub(a) != 7*time.Second {
		t.Errorf("the tick after %s is %s, want 7s later", a, next)
	}
}

func TestScheduleErrors(t *testing.T) {
	for _, tc := range []struct {
		yaml, key, says string
	}{
		{"schedule:\n  cron: '61 * * * *'\n", "schedule.cron", "61"},
		{"schedule:\n  cron: '* * * *'\n", "schedule.cron", "expected exactly 5 fields"},
		{"schedule:\n  cron: '0 0 0 * * *'\n", "schedule.cron", "expected exactly 5 fields"},
		{"schedule:\n  timezone: UTC\n", "schedule.cron", "required"},
		{"schedule:\n  cron: '@every 100ms'\n", "schedule.cron", "1s or more"},
		{"schedule:\n  cron: 'CRON_TZ=Europe/Paris 0 6 * * *'\n", "schedule.cron", "schedule.timezone"},
		{"schedule:\n  cron: '@daily'\n  timezone: Europe/Pariss\n", "schedule.timezone", "unknown time zone"},
		{"schedule:\n  cron: '@daily'\n  timezone: Local\n", "schedule.timezone", "IANA"},
		{"schedule:\n  cron: '@daily'\n  catch_up: always\n", "schedule.catch_up", "want once or skip"},
		{"schedule:\n  cron: '@daily'\n  catchup: once\n", "schedule.catchup", "did you mean catch_up?"},
		{"schedule:\n  - '@daily'\n", "schedule", "want a mapping"},
	} {
		t.Run(tc.key+" "+tc.says, func(t *testing.T) {
			c, err := parse(t, tc.yaml, nil)
			if err == nil {
				err = c.Validate(RoleFormatter)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error = %v, want a *config.Error", err)
			}
			if ce.Key != tc.key || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error = %q (key %q), want key %q saying %q", err, ce.Key, tc.key, tc.says)
			}
			if ce.Reason() != "bad_schedule" {
				t.Errorf("reason = %q, want bad_schedule", ce.Reason())
			}
		})
	}
}

func TestScheduleDefaults(t *testing.T) {
	c, err := parse(t, "schedule:\n  cron: '@every 30m'\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(RoleFormatter); err != nil {
		t.Fatal(err)
	}
	if c.Schedule == nil || c.Schedule.CatchUpPolicy() != CatchUpOnce {
		t.Errorf("schedule = %+v, want catch_up once by default", c.Schedule)
	}
	if loc, err := c.Schedule.Location(); err != nil || loc != time.UTC {
		t.Errorf("location = %v, %v; want UTC by default", loc, err)
	}
	if c, err := parse(t, "origin_parameters: {}\n", nil); err != nil || c.Schedule != nil {
		t.Errorf("no schedule section: schedule = %+v, %v; want nil", c.Schedule, err)
	}
}
