package pipeline

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/pulljobs/pulljobs/pkg/fairshare"
	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
)

// DefaultSyncMaxShare is the largest share of a board's live jobs one sync
// may archive unless forced: one bad filter must not wipe a board.
const DefaultSyncMaxShare = 0.5

// RunSpec is what a run does: every parameter but the secrets, which each
// process reads from its own configuration. It travels with the run (in the
// runs bucket), so that one fleet of workers serves many runs and boards.
type RunSpec struct {
	ID       string `json:"run_id"`
	BoardKey string `json:"board_key"`
	// Query is the France Travail search; ignored when ReplayOf is set.
	Query francetravail.Query `json:"query"`
	// ReplayOf names an earlier run whose stored offers this run reads
	// instead of calling France Travail.
	ReplayOf          string      `json:"replay_of,omitempty"`
	Sync              bool        `json:"sync"`
	UpdateContent     bool        `json:"update_content"`
	EnrichWithParsing bool        `json:"enrich_with_parsing"`
	SyncMaxShare      float64     `json:"sync_max_share"`
	ForceSync         bool        `json:"force_sync,omitempty"`
	DryRun            bool        `json:"dry_run,omitempty"`
	Action            format.Spec `json:"action"`
	CreatedAt         time.Time   `json:"created_at"`
	// Trigger says what started the run. Empty reads as rs.TriggerCLI.
	Trigger rs.Trigger `json:"trigger,omitempty"`
	// Profile names the configuration a service started the run from
	// (the profile file's name without .yaml); empty for a --config run.
	Profile string `json:"profile,omitempty"`
	// TraceParent is the W3C trace context of the run's span: sync, in
	// whichever process, is a span of the run's trace.
	TraceParent string `json:"traceparent,omitempty"`
	// Weight is the run's share of the workers, and of the HrFlow quota
	// their calls wait for, against the other runs in flight: a run of
	// weight 2 is served twice as fast as one of weight 1 while both have
	// items waiting. Zero reads as 1.
	Weight float64 `json:"weight,omitempty"`
}

// weight is the spec's Weight, fairshare.DefaultWeight when unset.
func (s RunSpec) weight() float64 {
	if s.Weight <= 0 {
		return fairshare.DefaultWeight
	}
	return s.Weight
}

// trigger is the spec's Trigger, rs.TriggerCLI when unset.
func (s RunSpec) trigger() rs.Trigger {
	if s.Trigger == "" {
		return rs.TriggerCLI
	}
	return s.Trigger
}

// Validate checks what every stage relies on, before anything is written.
func (s RunSpec) Validate() error {
	if !isBoardKey(s.BoardKey) {
		return fmt.Errorf("board_key %q: want 40 lowercase hexadecimal characters", s.BoardKey)
	}
	if s.Weight < 0 || math.IsNaN(s.Weight) || math.IsInf(s.Weight, 0) {
		return fmt.Errorf("weight %v: want a positive number (1 by default)", s.Weight)
	}
	if s.SyncMaxShare < 0 || s.SyncMaxShare > 1 {
		return fmt.Errorf("sync_max_share %v: want a share in [0, 1]", s.SyncMaxShare)
	}
	if s.ReplayOf == "" {
		if err := s.Query.Validate(); err != nil {
			return err
		}
	}
	if _, err := s.Action.Compile(); err != nil {
		return err
	}
	return nil
}

// hash identifies what the run does, not when: a fetcher that finds an
// unfinished run with the same hash resumes it instead of starting another.
//
// What started the run is not part of it, nor its weight: a scheduled run
// and a command run of the same profile are the same run, and one attaches
// to the other.
func (s RunSpec) hash() string {
	s.ID, s.CreatedAt, s.Trigger, s.TraceParent, s.Weight = "", time.Time{}, "", "", 0
	b, _ := json.Marshal(s) // a RunSpec always marshals
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func isBoardKey(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// NewRunID returns a run id that sorts by creation time and is a valid
// subject token and key: "20261128T180302123Z-9f86d081".
func NewRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	t := now.UTC()
	return fmt.Sprintf("%s%03dZ-%s", t.Format("20060102T150405"), t.Nanosecond()/int(time.Millisecond), hex.EncodeToString(b[:]))
}
