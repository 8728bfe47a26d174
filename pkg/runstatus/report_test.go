package runstatus

import "testing"

// TestStatusRules checks the historic connector's rules on the counters.
func TestStatusRules(t *testing.T) {
	tests := []struct {
		e      Events
		status Status
		why    string
	}{
		{Events{}, StatusSuccess, ""},
		{Events{ReadFailure: 1}, StatusFatal, "read_failure"},
		{Events{ReadSuccess: 3, FormatFailure: 3}, StatusFatal, "format_failure"},
		{Events{ReadSuccess: 3, FormatFailure: 1, LogicsFailure: 2}, StatusFatal, "logics_failure"},
		{Events{ReadSuccess: 3, LogicsDiscard: 1, WriteFailure: 2}, StatusFatal, "write_failure"},
		{Events{ReadSuccess: 3, LogicsDiscard: 3}, StatusSuccess, ""},
		{Events{ReadSuccess: 3, WriteFailure: 1, Created: 2}, StatusSuccessWithFailures, ""},
		{Events{ReadSuccess: 3, ReadFailure: 1, Created: 3}, StatusSuccessWithFailures, ""},
		{Events{ReadSuccess: 1, Created: 1, ParsingFailure: 1}, StatusSuccessWithFailures, ""},
	}
	for _, tt := range tests {
		status, why := tt.e.Status()
		if status != tt.status || why != tt.why {
			t.Errorf("%+v: got %s (%s), want %s (%s)", tt.e, status, why, tt.status, tt.why)
		}
	}
}

// TestSyncRefusedStatus checks the status of a run whose sync a guard
// refused: success_with_failures with reason sync_refused when it left jobs
// it would have archived, unchanged otherwise, and a fatal run stays fatal.
func TestSyncRefusedStatus(t *testing.T) {
	tests := []struct {
		name   string
		events Events
		sync   SyncReport
		status Status
		why    string
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
			r.Finish(r.StartedAt)
			if r.Status != tt.status || r.Reason != tt.why {
				t.Errorf("status = %s (%s), want %s (%s)", r.Status, r.Reason, tt.status, tt.why)
			}
		})
	}
}

// TestDecidePush is a table test of the pusher's decision from the board
