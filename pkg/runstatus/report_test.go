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

// TestQueues checks what a run in flight is told of the runs it shares the
// fleet with: the items of the others, its share at its weight, and when
// it should end at that share of the fleet's rate.
func TestQueues(t *testing.T) {
	inFlight := func(id string, done, expected int) RunStatus {
		return RunStatus{RunID: id, Progress: &RunProgress{Sealed: true, Expected: expected, Fetched: expected, Done: done}}
	}
	tests := []struct {
		name      string
		runs      []RunStatus
		weights   map[string]float64
		lags      map[string]int
		rate      float64
		want      map[string]Queue
		wantEnds  map[string]float64
		finishedQ bool
	}{
		{"alone", []RunStatus{inFlight("a", 100, 300)}, nil, map[string]int{"a": 200}, 10,
			map[string]Queue{"a": {Waiting: 200, Weight: 1, Share: 1, FleetRate: 10}}, map[string]float64{"a": 20}, false},
		{"behind a big run", []RunStatus{inFlight("small", 0, 194), inFlight("big", 2000, 20000)}, nil,
			map[string]int{"small": 194, "big": 18000}, 10,
			map[string]Queue{"small": {Waiting: 194, Ahead: 18000, Runs: 1, Weight: 1, Share: 0.5, FleetRate: 10},
				"big": {Waiting: 18000, Ahead: 194, Runs: 1, Weight: 1, Share: 0.5, FleetRate: 10}},
			map[string]float64{"small": 38.8, "big": 3600}, false},
		{"weighted, a third run finished", []RunStatus{inFlight("a", 0, 90), inFlight("b", 0, 90)}, map[string]float64{"a": 2},
			map[string]int{"a": 90, "b": 90, "done": 0}, 0,
			map[string]Queue{"a": {Waiting: 90, Ahead: 90, Runs: 1, Weight: 2, Share: 2.0 / 3},
				"b": {Waiting: 90, Ahead: 90, Runs: 1, Weight: 1, Share: 1.0 / 3}}, nil, false},
		{"nothing waiting yet", []RunStatus{inFlight("new", 0, 50), inFlight("other", 0, 10)}, nil, map[string]int{"other": 10}, 5,
			map[string]Queue{"new": {Ahead: 10, Runs: 1, Weight: 1, Share: 0.5, FleetRate: 5}}, map[string]float64{"new": 20}, false},
		{"finished runs get none", []RunStatus{{RunID: "over"}}, nil, map[string]int{"x": 3}, 1, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			queues(tt.runs, tt.weights, Backlog{Runs: tt.lags}, tt.rate)
			for _, st := range tt.runs {
				if tt.finishedQ {
					if st.Queue != nil {
						t.Errorf("%s: queue %+v for a finished run", st.RunID, *st.Queue)
					}
					continue
				}
				want, ok := tt.want[st.RunID]
				if !ok {
					continue
				}
				got := *st.Queue
				ends := got.EndsInSeconds
				got.EndsInSeconds = nil
				if got != want {
					t.Errorf("%s: queue %+v, want %+v", st.RunID, got, want)
				}
				switch w, ok := tt.wantEnds[st.RunID]; {
				case !ok && ends != nil:
					t.Errorf("%s: ends in %v, want no estimate", st.RunID, *ends)
				case ok && (ends == nil || *ends < w-0.01 || *ends > w+0.01):
					t.Errorf("%s: ends in %v, want %v", st.RunID, ends, w)
				}
			}
		})
	}
}
