package deploy_test

import (
	"bytes"
	"testing"
	"time"
	_ "time/tzdata" // schedules name time zones; the image ships tzdata too

	"go.yaml.in/yaml/v3"
)

// schedule is the top-level "schedule:" of a fetcher serve profile (issue
// 9): the rest of the profile is a configuration like --config takes.
type schedule struct {
	Cron     string `yaml:"cron"`
	Timezone string `yaml:"timezone"`
	CatchUp  string `yaml:"catch_up"`
}

// checkSchedule checks the schedule of a profile, when it has one, and
// returns the profile without it: the configuration part alone.
func checkSchedule(t *testing.T, where string, profile []byte) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(profile, &doc); err != nil {
		t.Errorf("%s: %v", where, err)
		return profile
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Errorf("%s: want a mapping at the top", where)
		return profile
	}
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "schedule" {
			continue
		}
		var s schedule
		dec := yaml.NewDecoder(bytes.NewReader(mustMarshal(t, top.Content[i+1])))
		dec.KnownFields(true)
		if err := dec.Decode(&s); err != nil {
			t.Errorf("%s: schedule: %v", where, err)
		}
		if s.Cron == "" {
			t.Errorf("%s: schedule.cron is empty", where)
		}
		if _, err := time.LoadLocation(s.Timezone); err != nil {
			t.Errorf("%s: schedule.timezone: %v", where, err)
		}
		if s.CatchUp != "" && s.CatchUp != "skip" && s.CatchUp != "once" {
			t.Errorf("%s: schedule.catch_up %q: want skip or once", where, s.CatchUp)
		}
		top.Content = append(top.Content[:i], top.Content[i+2:]...)
		return mustMarshal(t, &doc)
	}
	return profile
}

func mustMarshal(t *testing.T, n *yaml.Node) []byte {
	t.Helper()
	b, err := yaml.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
