package config

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	// A time zone must resolve the same on every replica, containers
	// without a zoneinfo database included.
	_ "time/tzdata"
)

// Schedule is a profile's top-level schedule section: when `fetcher serve`
// starts a run of the profile by itself.
type Schedule struct {
	// Cron is five fields (minute, hour, day of month, month, day of
	// week), or @hourly, @daily, @weekly, @monthly, @yearly, or
	// "@every <duration>" (1s or more).
	Cron string `yaml:"cron"`
	// Timezone is the IANA name (Europe/Paris) the five fields read in;
	// empty means UTC.
	Timezone string `yaml:"timezone"`
	// CatchUp says what a tick missed while no replica was up becomes:
	// CatchUpOnce (the default) fires the latest missed tick once at start,
	// CatchUpSkip forgets it.
	CatchUp string `yaml:"catch_up"`
}

// Values of Schedule.CatchUp.
const (
	CatchUpOnce = "once"
	CatchUpSkip = "skip"
)

// SectionSchedule names the schedule section; its errors' reason is
// bad_schedule.
const SectionSchedule = "schedule"

// cronParser reads the five standard fields and the descriptors: robfig's
// standard parser, no seconds field.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Ticks returns when the schedule fires, or an *Error naming the key at
// fault. Every replica computes the same ticks from the same schedule: the
// five fields in the schedule's time zone, and "@every D" at the multiples
// of D since the Unix epoch (@every 30m fires at :00 and :30 UTC), not D
// after whenever a process happened to start.
func (s Schedule) Ticks() (cron.Schedule, error) {
	if s.CatchUp != "" && s.CatchUp != CatchUpOnce && s.CatchUp != CatchUpSkip {
		return nil, errorf(SectionSchedule+".catch_up", "%q: want %s or %s", s.CatchUp, CatchUpOnce, CatchUpSkip)
	}
	loc, err := s.Location()
	if err != nil {
		return nil, err
	}
	expr := strings.TrimSpace(s.Cron)
	key := SectionSchedule + ".cron"
	switch {
	case expr == "":
		return nil, errorf(key, "required (five fields such as \"0 6 * * 1-5\", or @hourly, @daily, @every 30m)")
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		return nil, errorf(key, "%q: set the time zone with %s.timezone", expr, SectionSchedule)
	}
	sched, err := cronParser.Parse(expr)
	if err != nil {
		return nil, errorf(key, "%q: %v", expr, err)
	}
	switch c := sched.(type) {
	case *cron.SpecSchedule:
		c.Location = loc // the parser defaults to the process's local zone
		return c, nil
	case cron.ConstantDelaySchedule:
		if d, _ := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(expr, "@every"))); d < time.Second {
			return nil, errorf(key, "%q: want an interval of 1s or more", expr)
		}
		return every(c.Delay), nil
	}
	return nil, errorf(key, "%q: unsupported schedule", expr)
}

// Location returns the schedule's time zone: UTC when unset.
func (s Schedule) Location() (*time.Location, error) {
	key := SectionSchedule + ".timezone"
	switch s.Timezone {
	case "":
		return time.UTC, nil
	case "Local":
		return nil, errorf(key, "%q: replicas may run in different zones; want an IANA name such as Europe/Paris", s.Timezone)
	}
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil {
		return nil, errorf(key, "%q: unknown time zone (want an IANA name such as Europe/Paris)", s.Timezone)
	}
	return loc, nil
}

// CatchUpPolicy returns CatchUp with its default.
func (s Schedule) CatchUpPolicy() string {
	if s.CatchUp == "" {
		return CatchUpOnce
	}
	return s.CatchUp
}

// every fires at the multiples of its interval since the Unix epoch.
type every time.Duration

func (e every) Next(t time.Time) time.Time {
	d := int64(e)
	n := t.UnixNano()
	next := (n/d + 1) * d
	if n < 0 && n%d != 0 {
		next -= d
	}
	return time.Unix(0, next).In(t.Location())
}

// validateSchedule checks the schedule section, when there is one.
func (c Config) validateSchedule() error {
	if c.Schedule == nil {
		return nil
	}
	_, err := c.Schedule.Ticks()
	return err
}
