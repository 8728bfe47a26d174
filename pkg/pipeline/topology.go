package pipeline

import (
	"context"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/declare"
)

// Names of the streams, subjects, consumers and buckets. Subjects end with
// the run id, so that one fleet of workers serves many runs and boards and a
// run's records can be read on their own.
const (
	OffersStream      = "PULLJOBS_OFFERS"  // pulljobs.offers.<run>: raw offers, the record replay reads
	JobsStream        = "PULLJOBS_JOBS"    // pulljobs.jobs.<run>: formatted jobs, work for the pushers
	RecordsStream     = "PULLJOBS_RECORDS" // pulljobs.records.<run>: the final record of each item
	DeadLetterStream  = "PULLJOBS_DLQ"     // pulljobs.dlq.<run>.<stage>: items that ended failed
	IndexStream       = "PULLJOBS_INDEX"   // pulljobs.index.<board>.…: the board index
	RunsBucket        = "pulljobs_runs"    // <run>.spec, .seal, .fetch, .index, .final, .report
	LeasesBucket      = "pulljobs_leases"  // <board>: the run that holds the board
	FormatterConsumer = "formatter"
	PusherConsumer    = "pusher"

	// Subjects and headers that readers of the pipeline's streams rely on.
	OffersSubjectPrefix     = "pulljobs.offers."  // + <run>
	RecordsSubjectPrefix    = "pulljobs.records." // + <run>
	DeadLetterSubjectPrefix = "pulljobs.dlq."     // + <run>.<stage>
	IndexSubjectPrefix      = "pulljobs.index."   // + <board>.…
	HeaderOfferID           = "Pulljobs-Offer-Id" // nats.Header keys are case-sensitive
	HeaderStage             = "Pulljobs-Stage"
	HeaderReason            = "Pulljobs-Reason"

	jobsPrefix   = "pulljobs.jobs."
	eventsPrefix = "pulljobs.events." // core NATS, <run>: progress notes for waiting fetchers

	// Headers of the pipeline's own use.
	hdrEncoding = "Pulljobs-Encoding" // "s2" when the payload is compressed
	hdrSize     = "Pulljobs-Size"     // a dead letter's payload size, when it had to be left out
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
	// MaxAckPending bounds the items in flight per consumer across all
	// replicas. Default 1024.
	MaxAckPending int `yaml:"max_ack_pending" json:"max_ack_pending"`
	// JobsBacklog bounds the formatted jobs waiting for the pushers: the
	// formatters stop pulling offers while more wait, and start again at
	// half (backlog.go). Default 4 000; negative for no bound.
	JobsBacklog int `yaml:"jobs_backlog" json:"jobs_backlog"`
	// OffersBacklog bounds the offers waiting for the formatters while they
	// take them: the fetcher stops reading while more wait, and starts again
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

// declareAll creates or updates every stream, consumer and bucket, and
// returns the ledger on them. Every process calls it at start: the
// declarations are idempotent, so no process depends on another having
// started first.
func declareAll(ctx context.Context, js jetstream.JetStream, s Settings) (*ledger, error) {
	s = s.WithDefaults()
	t := &ledger{js: js, settings: s}
	var err error
	t.offers, err = declare.Stream(ctx, js, jetstream.StreamConfig{
		Name:        OffersStream,
		Description: "pulljobs: raw offers as fetched, per run; the record that replay reads",
		Subjects:    []string{OffersSubjectPrefix + "*"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      s.Retention,
		Duplicates:  s.DuplicateWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    s.Replicas,
	})
	if err != nil {
		return nil, err
	}
	// Formatted jobs are derived data: once pushed they are gone, and a replay
	// formats the offers again.
	t.jobs, err = declare.Stream(ctx, js, jetstream.StreamConfig{
		Name:        JobsStream,
		Description: "pulljobs: formatted jobs waiting for a pusher",
		Subjects:    []string{jobsPrefix + "*"},
		Retention:   jetstream.WorkQueuePolicy,
		MaxAge:      s.Retention,
		Duplicates:  s.DuplicateWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    s.Replicas,
	})
	if err != nil {
		return nil, err
	}
	t.records, err = declare.Stream(ctx, js, jetstream.StreamConfig{
		Name:        RecordsStream,
		Description: "pulljobs: the final record of each item of a run (the first of an item counts)",
		Subjects:    []string{RecordsSubjectPrefix + "*"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      s.Retention,
		Storage:     jetstream.FileStorage,
		Replicas:    s.Replicas,
	})
	if err != nil {
		return nil, err
	}
	if _, err := declare.Stream(ctx, js, jetstream.StreamConfig{
		Name:        DeadLetterStream,
		Description: "pulljobs: items that ended failed, with the stage and reason in headers",
		Subjects:    []string{DeadLetterSubjectPrefix + ">"},
		MaxAge:      s.Retention,
		Storage:     jetstream.FileStorage,
		Replicas:    s.Replicas,
	}); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		stream jetstream.Stream
		name   string
		filter string
	}{{t.offers, FormatterConsumer, OffersSubjectPrefix + "*"}, {t.jobs, PusherConsumer, jobsPrefix + "*"}} {
		if _, err := declare.Consumer(ctx, c.stream, jetstream.ConsumerConfig{
			Durable:       c.name,
			Description:   "pulljobs " + c.name + " workers",
			FilterSubject: c.filter,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       s.AckWait,
			MaxDeliver:    s.MaxDeliver,
			MaxAckPending: s.MaxAckPending,
		}); err != nil {
			return nil, err
		}
	}
	for _, b := range []struct {
		kv  *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		{&t.runs, jetstream.KeyValueConfig{Bucket: RunsBucket, Description: "pulljobs: run specs, seals, claims, sync triggers and reports", TTL: s.Retention}},
		{&t.leases, jetstream.KeyValueConfig{Bucket: LeasesBucket, Description: "pulljobs: which run holds which board"}},
	} {
		b.cfg.Storage = jetstream.FileStorage
		b.cfg.Replicas = s.Replicas
		kv, err := declare.KeyValue(ctx, js, b.cfg)
		if err != nil {
			return nil, err
		}
		*b.kv = kv
	}
	// Kept across runs: what pulljobs knows of each job of each board. Direct
	// gets let every replica read a shard, the leader or not.
	t.index, err = declare.Stream(ctx, js, jetstream.StreamConfig{
		Name:        IndexStream,
		Description: "pulljobs: the board index, snapshots of each board and what was written since (see pkg/pipeline/index.go)",
		Subjects:    []string{IndexSubjectPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    s.Replicas,
		AllowDirect: true,
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// token turns an offer id into a subject and key token. France Travail ids
// (letters and digits) stay as they are; anything else is base64url-encoded
// behind "=", which no plain id contains.
func token(id string) string {
	plain := id != ""
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			plain = false
			break
		}
	}
	if plain {
		return id
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// untoken reverses token.
func untoken(tok string) (string, error) {
	if !strings.HasPrefix(tok, "=") {
		return tok, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok[1:])
	if err != nil {
		return "", fmt.Errorf("offer token %q: %w", tok, err)
	}
	return string(b), nil
}

// runOfSubject returns the run id, the last token of a pipeline subject.
func runOfSubject(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}
