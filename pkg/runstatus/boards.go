package runstatus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/store"
)

// Buckets of the boards' state, beside the runs'.
const (
	// BoardsBucket holds a Board under each board's key: what the last run
	// of each board left, kept across runs (not subject to the retention).
	BoardsBucket = "pulljobs_board_status"
	// SchedulesBucket holds the schedules' state (pkg/service): the run of
	// each tick, the last tick fired, and the next tick of each scheduled
	// profile (NextTickKey).
	SchedulesBucket = "pulljobs_schedules"
)

// Board is what the fleet keeps of one HrFlow board, written by the sync
// of each of its runs.
type Board struct {
	BoardKey string `json:"board_key"`
	// LastRun is the last run that ended on the board, with its status
	// and reason, and when it ended.
	LastRun        string    `json:"last_run"`
	LastStatus     Status    `json:"last_status"`
	LastReason     string    `json:"last_reason,omitempty"`
	LastFinishedAt time.Time `json:"last_finished_at"`
	// LastSyncAt is when a sync of the board last archived what its run
	// did not keep (a sync performed, not refused nor disabled, of a run
	// that was not a dry run): the board was in step with France Travail,
	// deletions included. LastSyncRun is that run. Both are kept when a
	// later run does not sync.
	LastSyncAt  *time.Time `json:"last_sync_at,omitempty"`
	LastSyncRun string     `json:"last_sync_run,omitempty"`
	// LiveJobs counts the board's live jobs as the board index knows them
	// after the last run that could tell (not a dry run, its listing read):
	// those its listing saw, with what it created, unarchived and archived.
	// Nil until then.
	LiveJobs *int `json:"live_jobs,omitempty"`
}

// NextTick is a scheduled profile's next tick (the value of NextTickKey in
// SchedulesBucket), kept by the replicas that serve the schedule.
type NextTick struct {
	BoardKey string    `json:"board_key"`
	At       time.Time `json:"at"`
}

// NextTickKey is the key of profile's next tick in SchedulesBucket.
func NextTickKey(profile string) string { return profile + ".next" }

// BoardStatus is where one board stands: what `pulljobs status --boards`
// lists, what the service's pulljobs.boards.list answers and what the
// status page shows.
type BoardStatus struct {
	Board
	// SyncAgeSeconds is how long ago the last successful sync was; nil
	// when the board never synced.
	SyncAgeSeconds *float64 `json:"sync_age_seconds,omitempty"`
	// Running names the run in flight on the board, if one holds it.
	Running string `json:"running,omitempty"`
	// NextRunAt is the next tick of the schedules that start runs on the
	// board, and NextProfile their profile; nil when none is scheduled.
	NextRunAt   *time.Time `json:"next_run_at,omitempty"`
	NextProfile string     `json:"next_profile,omitempty"`
}

// BoardList is the boards, by key, as `pulljobs status --boards --json`
// prints them and the service's pulljobs.boards.list answers them.
type BoardList struct {
	Boards []BoardStatus `json:"boards"`
}

// ListBoards returns every board the fleet knows, by key: those a run
// ended on, those a run holds, and those a schedule will start a run on.
// A NATS system where no run ever ended has none: an empty list, never
// nil.
func ListBoards(ctx context.Context, js jetstream.JetStream) ([]BoardStatus, error) {
	now := time.Now()
	byKey := map[string]*BoardStatus{}
	board := func(key string) *BoardStatus {
		b := byKey[key]
		if b == nil {
			b = &BoardStatus{Board: Board{BoardKey: key}}
			byKey[key] = b
		}
		return b
	}
	if err := eachValue(ctx, js, BoardsBucket, "*", func(_ string, get func(any) (bool, error)) error {
		var b Board
		if found, err := get(&b); err != nil || !found || b.BoardKey == "" {
			return err
		}
		st := board(b.BoardKey)
		st.Board = b
		if b.LastSyncAt != nil {
			age := now.Sub(*b.LastSyncAt).Seconds()
			st.SyncAgeSeconds = &age
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := eachValue(ctx, js, LeasesBucket, "*", func(key string, get func(any) (bool, error)) error {
		var l Lease
		if found, err := get(&l); err != nil || !found {
			return err
		}
		board(key).Running = l.Run
		return nil
	}); err != nil {
		return nil, err
	}
	if err := eachValue(ctx, js, SchedulesBucket, NextTickKey("*"), func(key string, get func(any) (bool, error)) error {
		var n NextTick
		if found, err := get(&n); err != nil || !found || n.BoardKey == "" {
			return err
		}
		b := board(n.BoardKey)
		if b.NextRunAt == nil || n.At.Before(*b.NextRunAt) {
			at := n.At
			b.NextRunAt, b.NextProfile = &at, strings.TrimSuffix(key, NextTickKey(""))
		}
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]BoardStatus, 0, len(byKey))
	for _, b := range byKey {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b BoardStatus) int { return cmp.Compare(a.BoardKey, b.BoardKey) })
	return out, nil
}

// eachValue calls fn with each key of bucket matching filter, and a
// function that decodes its value; a bucket that does not exist has none.
func eachValue(ctx context.Context, js jetstream.JetStream, bucket, filter string, fn func(key string, get func(any) (bool, error)) error) error {
	kv, err := store.Bucket(ctx, js, bucket)
	if err != nil || kv == nil {
		return err
	}
	var keys []string
	err = store.Retry(ctx, func(ctx context.Context) error {
		keys = keys[:0]
		l, err := kv.ListKeysFiltered(ctx, filter)
		if err != nil {
			return err
		}
		for k := range l.Keys() {
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("list %s: %w", bucket, err)
	}
	for _, k := range keys {
		get := func(v any) (bool, error) { _, found, err := store.Get(ctx, kv, k, v); return found, err }
		if err := fn(k, get); err != nil {
			return err
		}
	}
	return nil
}

// MaxSyncAge is how old a board's last successful sync may grow: France
// Travail's licence asks re-users to refresh their copy of the offers at
// least every 24 hours, deletions included.
const MaxSyncAge = 24 * time.Hour

// Stale reports a board that a run ended on and whose last successful
// sync is older than MaxSyncAge at now, or that never synced: it drifts
// from France Travail's offers.
func (b BoardStatus) Stale(now time.Time) bool {
	return b.LastRun != "" && (b.LastSyncAt == nil || now.Sub(*b.LastSyncAt) > MaxSyncAge)
}
