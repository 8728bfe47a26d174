package pipeline

import (
	"errors"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/boardindex"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"

	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// TestDecideSync is a table test of the guards, one row per guard and the
// cases between them: sync's decision is a pure function of its facts.
func TestDecideSync(t *testing.T) {
	base := syncFacts{spec: RunSpec{Sync: true, SyncMaxShare: 0.5}, onBoard: 10, live: 100, doomed: 10}
	with := func(mod func(*syncFacts)) syncFacts { f := base; mod(&f); return f }
	tests := []struct {
		name  string
		facts syncFacts
		want  syncPlan
	}{
		{"safe: archive", base, syncPlan{archive: true}},
		{"nothing to archive", with(func(f *syncFacts) { f.doomed = 0 }), syncPlan{}},
		{"disabled", with(func(f *syncFacts) { f.spec.Sync = false }), syncPlan{guard: rs.GuardDisabled}},
		{"lease lost", with(func(f *syncFacts) { f.leaseLost = true }), syncPlan{guard: rs.GuardLeaseLost}},
		{"read failure", with(func(f *syncFacts) { f.seal.ReadFailure = true }), syncPlan{guard: rs.GuardRead}},
		{"truncated", with(func(f *syncFacts) { f.seal.Truncated = true }), syncPlan{guard: rs.GuardTruncated}},
		{"no job on the board", with(func(f *syncFacts) { f.onBoard = 0 }), syncPlan{guard: rs.GuardNoJob}},
		{"board unreadable", with(func(f *syncFacts) { f.boardErr = errors.New("503") }), syncPlan{guard: rs.GuardUnreadable}},
		{"share over the limit", with(func(f *syncFacts) { f.doomed = 51 }), syncPlan{guard: rs.GuardMaxShare}},
		{"share at the limit", with(func(f *syncFacts) { f.doomed = 50 }), syncPlan{archive: true}},
		{"forced past the share", with(func(f *syncFacts) { f.doomed = 90; f.spec.ForceSync = true }), syncPlan{archive: true}},
		{"force lifts only the share guard", with(func(f *syncFacts) { f.spec.ForceSync = true; f.seal.Truncated = true }), syncPlan{guard: rs.GuardTruncated}},
		{"dry run", with(func(f *syncFacts) { f.spec.DryRun = true }), syncPlan{wouldArchive: 10}},
		{"dry run counts its planned creations as live", with(func(f *syncFacts) { f.spec.DryRun = true; f.live, f.planned, f.doomed = 10, 10, 10 }), syncPlan{wouldArchive: 10}},
		{"the guards' order: disabled first", with(func(f *syncFacts) { f.spec.Sync = false; f.leaseLost = true }), syncPlan{guard: rs.GuardDisabled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decideSync(tt.facts)
			if got.archive != tt.want.archive || got.guard != tt.want.guard || got.wouldArchive != tt.want.wouldArchive {
				t.Errorf("decideSync = %+v, want %+v", got, tt.want)
			}
			if (got.guard == "") != (got.refused == "") {
				t.Errorf("guard %q with reason %q: want both or neither", got.guard, got.refused)
			}
		})
	}
}

// index: the run semantics' upsert without a read.
func TestDecidePush(t *testing.T) {
	const hash = "h-new"
	live := boardindex.Entry{Ref: "1", Key: "k1", State: boardindex.Live, UpdatedAt: "t1", Hash: hash, WroteAt: "t1"}
	with := func(mod func(*boardindex.Entry)) boardindex.Entry { e := live; mod(&e); return e }
	tests := []struct {
		name          string
		entry         boardindex.Entry
		ok            bool
		updateContent bool
		want          pushPlan
	}{
		{"not in the index: create", boardindex.Entry{}, false, false, pushPlan{call: callCreate, action: hrflow.ActionCreated}},
		{"archived: replace and unarchive", with(func(e *boardindex.Entry) { e.State = boardindex.Archived }), true, false, pushPlan{call: callReplaceUnarchive, action: hrflow.ActionUnarchived, key: "k1"}},
		{"unchanged, update_content: no call", live, true, true, pushPlan{call: callNone, action: hrflow.ActionUnchanged}},
		{"unchanged, no update_content: skipped", live, true, false, pushPlan{call: callNone, action: hrflow.ActionSkipped}},
		{"new content, update_content: replace", with(func(e *boardindex.Entry) { e.Hash = "h-old" }), true, true, pushPlan{call: callReplace, action: hrflow.ActionUpdated, key: "k1"}},
		{"new content, no update_content: skipped", with(func(e *boardindex.Entry) { e.Hash = "h-old" }), true, false, pushPlan{call: callNone, action: hrflow.ActionSkipped}},
		{"edited by hand since: replace", with(func(e *boardindex.Entry) { e.UpdatedAt = "t9" }), true, true, pushPlan{call: callReplace, action: hrflow.ActionUpdated, key: "k1"}},
		{"on the board, never written by pulljobs: replace", with(func(e *boardindex.Entry) { e.Hash, e.WroteAt = "", "" }), true, true, pushPlan{call: callReplace, action: hrflow.ActionUpdated, key: "k1"}},
		{"archived, never written by pulljobs: replace and unarchive", with(func(e *boardindex.Entry) { e.State, e.Hash, e.WroteAt = boardindex.Archived, "", "" }), true, true, pushPlan{call: callReplaceUnarchive, action: hrflow.ActionUnarchived, key: "k1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decidePush(tt.entry, tt.ok, hash, tt.updateContent); got != tt.want {
				t.Errorf("decidePush = %+v, want %+v", got, tt.want)
			}
		})
	}
}
