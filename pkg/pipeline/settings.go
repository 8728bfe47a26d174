package pipeline

import (
	"fmt"
	"runtime"
	"time"
)

// Settings are the pipeline's knobs (the configuration's "pipeline:" section).
// The zero value of each field means its default.
type Settings struct {
	// Retention is how long fetched offers, records and reports are kept:
	// the window in which a run can be replayed or audited. Default 7 days.
	Retention time.Duration `yaml:"retention" json:"retention"`
	// Replicas of every stream and bucket: 1 on one server, 3 on a cluster.
	Replicas int `yaml:"replicas" json:"replicas"`
	// Concurrency is the number of jobs one pusher process writes at once:
	// with HrFlow answering in 50 ms, 64 in flight allow about 1 000 calls a
	// second, more than any quota. Default 64.
	Concurrency int `yaml:"concurrency" json:"concurrency"`
	// FormatConcurrency is the number of offers one formatter process
	// formats at once. Default: 8 per CPU (GOMAXPROCS), so that the
	// formatter keeps its CPUs busy while some offers wait on NATS.
	FormatConcurrency int `yaml:"format_concurrency" json:"format_concurrency"`
	// AckWait is how long a worker may hold a message without a sign of life
	// before the server gives it to another worker. Workers extend it while
	// they work. Default 60 s.
	AckWait time.Duration `yaml:"ack_wait" json:"ack_wait"`
	// MaxDeliver bounds the attempts at one item; the last failure ends it as
	// "failed" and on the dead-letter stream. Default 6.
	MaxDeliver int `yaml:"max_deliver" json:"max_deliver"`
	// MaxAckPending bounds the items of one run in flight at one stage
	// (its consumer there), across all replicas. Default 1024.
	MaxAckPending int `yaml:"max_ack_pending" json:"max_ack_pending"`
	// JobsBacklog bounds the formatted jobs of a run waiting for the
	// pushers: the formatters stop pulling the run's offers while more
	// wait, and start again at half (backlog.go). Default 4 000; negative
	// for no bound.
	JobsBacklog int `yaml:"jobs_backlog" json:"jobs_backlog"`
	// OffersBacklog bounds a run's offers waiting for the formatters while
	// they take them: its fetcher stops reading while more wait, and starts again
	// at half, or as soon as the formatters take nothing (held by the
	// pushers, or none running): it never waits for a stage that does not
	// move (backlog.go). Default 20 000; negative for no bound.
	OffersBacklog int `yaml:"offers_backlog" json:"offers_backlog"`
	// DuplicateWindow is how long the streams deduplicate a publish by its
	// message id (triggers carry one). Items carry none: the server would
	// hold every id of a run in memory, and the stages are idempotent
	// instead. Default 1 hour.
	DuplicateWindow time.Duration `yaml:"duplicate_window" json:"duplicate_window"`
	// LeaseTTL is how long a board stays held by a run whose processes all
	// stopped showing signs of life. Default 2 minutes.
	LeaseTTL time.Duration `yaml:"lease_ttl" json:"lease_ttl"`
	// StallAfter is how long a sealed run may go without progress before the
	// watchdog reports it. Default 10 minutes.
	StallAfter time.Duration `yaml:"stall_after" json:"stall_after"`
	// DrainTimeout bounds how long a stopping worker finishes its in-flight
	// items; what is left is redelivered to another worker. Default 30 s.
	DrainTimeout time.Duration `yaml:"drain_timeout" json:"drain_timeout"`
}

// Defaults of Settings.
const (
	DefaultRetention       = 7 * 24 * time.Hour
	DefaultConcurrency     = 64
	DefaultAckWait         = 60 * time.Second
	DefaultMaxDeliver      = 6
	DefaultMaxAckPending   = 1024
	DefaultJobsBacklog     = 4000
	DefaultOffersBacklog   = 20000
	DefaultDuplicateWindow = time.Hour
	DefaultLeaseTTL        = 2 * time.Minute
	DefaultStallAfter      = 10 * time.Minute
	DefaultDrainTimeout    = 30 * time.Second
)

// WithDefaults returns s with every zero field set to its default.
func (s Settings) WithDefaults() Settings {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.Retention, DefaultRetention)
	def(&s.AckWait, DefaultAckWait)
	def(&s.DuplicateWindow, DefaultDuplicateWindow)
	def(&s.LeaseTTL, DefaultLeaseTTL)
	def(&s.StallAfter, DefaultStallAfter)
	def(&s.DrainTimeout, DefaultDrainTimeout)
	if s.Replicas <= 0 {
		s.Replicas = 1
	}
	if s.Concurrency <= 0 {
		s.Concurrency = DefaultConcurrency
	}
	if s.FormatConcurrency <= 0 {
		s.FormatConcurrency = 8 * runtime.GOMAXPROCS(0)
	}
	if s.MaxDeliver <= 0 {
		s.MaxDeliver = DefaultMaxDeliver
	}
	if s.MaxAckPending <= 0 {
		s.MaxAckPending = DefaultMaxAckPending
	}
	if s.JobsBacklog == 0 {
		s.JobsBacklog = DefaultJobsBacklog
	}
	if s.OffersBacklog == 0 {
		s.OffersBacklog = DefaultOffersBacklog
	}
	if s.DuplicateWindow > s.Retention {
		s.DuplicateWindow = s.Retention
	}
	return s
}

// Validate reports settings that cannot work together.
func (s Settings) Validate() error {
	s = s.WithDefaults()
	if s.Replicas > 5 {
		return fmt.Errorf("replicas %d: JetStream allows at most 5", s.Replicas)
	}
	if s.AckWait < time.Second {
		return fmt.Errorf("ack_wait %v: want at least 1s", s.AckWait)
	}
	if s.LeaseTTL < s.AckWait {
		return fmt.Errorf("lease_ttl %v: want at least ack_wait (%v), or a board could be taken from a run whose message is only waiting for redelivery", s.LeaseTTL, s.AckWait)
	}
	return nil
}
