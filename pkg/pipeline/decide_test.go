package pipeline

import (
	"errors"
	"testing"

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
		{"disabled", with(func(f *syncFacts) { f.spec.Sync = false }), syncPlan{guard: GuardDisabled}},
		{"lease lost", with(func(f *syncFacts) { f.leaseLost = true }), syncPlan{guard: GuardLeaseLost}},
		{"read failure", with(func(f *syncFacts) { f.seal.ReadFailure = true }), syncPlan{guard: GuardRead}},
		{"truncated", with(func(f *syncFacts) { f.seal.Truncated = true }), syncPlan{guard: GuardTruncated}},
		{"no job on the board", with(func(f *syncFacts) { f.onBoard = 0 }), syncPlan{guard: GuardNoJob}},
		{"board unreadable", with(func(f *syncFacts) { f.boardErr = errors.New("503") }), syncPlan{guard: GuardUnreadable}},
		{"share over the limit", with(func(f *syncFacts) { f.doomed = 51 }), syncPlan{guard: GuardMaxShare}},
		{"share at the limit", with(func(f *syncFacts) { f.doomed = 50 }), syncPlan{archive: true}},
		{"forced past the share", with(func(f *syncFacts) { f.doomed = 90; f.spec.ForceSync = true }), syncPlan{archive: true}},
		{"force lifts only the share guard", with(func(f *syncFacts) { f.spec.ForceSync = true; f.seal.Truncated = true }), syncPlan{guard: GuardTruncated}},
		{"dry run", with(func(f *syncFacts) { f.spec.DryRun = true }), syncPlan{wouldArchive: 10}},
		{"dry run counts its planned creations as live", with(func(f *syncFacts) { f.spec.DryRun = true; f.live, f.planned, f.doomed = 10, 10, 10 }), syncPlan{wouldArchive: 10}},
		{"the guards' order: disabled first", with(func(f *syncFacts) { f.spec.Sync = false; f.leaseLost = true }), syncPlan{guard: GuardDisabled}},
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

// TestSyncRefusedStatus checks the status of a run whose sync a guard
// refused: success_with_failures with reason sync_refused when it left jobs
// it would have archived, unchanged otherwise, and a fatal run stays fatal.
func TestSyncRefusedStatus(t *testing.T) {
	tests := []struct {
		name        string
		events      Events
		sync        SyncReport
		status, why string
	}{
		{"refused with jobs to archive", Events{ReadSuccess: 5, Created: 5}, SyncReport{Guard: GuardMaxShare, WouldArchive: 3}, StatusSuccessWithFailures, ReasonSyncRefused},
		{"refused with nothing to archive", Events{ReadSuccess: 5, Created: 5}, SyncReport{Guard: GuardTruncated}, StatusSuccess, ""},
		{"disabled", Events{ReadSuccess: 5, Created: 5}, SyncReport{Guard: GuardDisabled, WouldArchive: 3}, StatusSuccess, ""},
		{"board unreadable", Events{ReadSuccess: 5, Created: 5}, SyncReport{Guard: GuardUnreadable}, StatusSuccessWithFailures, ReasonSyncRefused},
		{"fatal stays fatal", Events{ReadFailure: 1}, SyncReport{Guard: GuardRead, WouldArchive: 3}, StatusFatal, "read_failure"},
		{"performed", Events{ReadSuccess: 5, Created: 5}, SyncReport{Performed: true, Archived: 3}, StatusSuccess, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Report{Events: tt.events, Sync: tt.sync}
			r.finish(r.StartedAt)
			if r.Status != tt.status || r.Reason != tt.why {
				t.Errorf("status = %s (%s), want %s (%s)", r.Status, r.Reason, tt.status, tt.why)
			}
			if got, want := ExitCode(r.Status), map[string]int{StatusSuccess: 0, StatusSuccessWithFailures: 3, StatusFatal: 1}[tt.status]; got != want {
				t.Errorf("exit code %d, want %d", got, want)
			}
		})
	}
}

// TestDecidePush is a table test of the pusher's decision from the board
// index: the run semantics' upsert without a read.
func TestDecidePush(t *testing.T) {
	const hash = "h-new"
	live := boardEntry{Ref: "1", Key: "k1", State: boardLive, UpdatedAt: "t1", Hash: hash, WroteAt: "t1"}
	with := func(mod func(*boardEntry)) boardEntry { e := live; mod(&e); return e }
	tests := []struct {
		name          string
		entry         boardEntry
		ok            bool
		updateContent bool
		want          pushPlan
	}{
		{"not in the index: create", boardEntry{}, false, false, pushPlan{call: callCreate, action: hrflow.ActionCreated}},
		{"archived: replace and unarchive", with(func(e *boardEntry) { e.State = boardArchived }), true, false, pushPlan{call: callReplaceUnarchive, action: hrflow.ActionUnarchived, key: "k1"}},
		{"unchanged, update_content: no call", live, true, true, pushPlan{call: callNone, action: hrflow.ActionUnchanged}},
		{"unchanged, no update_content: skipped", live, true, false, pushPlan{call: callNone, action: hrflow.ActionSkipped}},
		{"new content, update_content: replace", with(func(e *boardEntry) { e.Hash = "h-old" }), true, true, pushPlan{call: callReplace, action: hrflow.ActionUpdated, key: "k1"}},
		{"new content, no update_content: skipped", with(func(e *boardEntry) { e.Hash = "h-old" }), true, false, pushPlan{call: callNone, action: hrflow.ActionSkipped}},
		{"edited by hand since: replace", with(func(e *boardEntry) { e.UpdatedAt = "t9" }), true, true, pushPlan{call: callReplace, action: hrflow.ActionUpdated, key: "k1"}},
		{"on the board, never written by pulljobs: replace", with(func(e *boardEntry) { e.Hash, e.WroteAt = "", "" }), true, true, pushPlan{call: callReplace, action: hrflow.ActionUpdated, key: "k1"}},
		{"archived, never written by pulljobs: replace and unarchive", with(func(e *boardEntry) { e.State, e.Hash, e.WroteAt = boardArchived, "", "" }), true, true, pushPlan{call: callReplaceUnarchive, action: hrflow.ActionUnarchived, key: "k1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decidePush(tt.entry, tt.ok, hash, tt.updateContent); got != tt.want {
				t.Errorf("decidePush = %+v, want %+v", got, tt.want)
			}
		})
	}
}
