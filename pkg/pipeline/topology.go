package pipeline

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/boardindex"
	"github.com/pulljobs/pulljobs/pkg/declare"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
)

// Headers of the pipeline's own use; those readers rely on are in
// pkg/runstatus.
const (
	hdrEncoding = "Pulljobs-Encoding" // "s2" when the payload is compressed
	hdrSize     = "Pulljobs-Size"     // a dead letter's payload size, when it had to be left out
)

// declareAll creates or updates every stream, consumer and bucket, and
// returns the ledger on them. Every process calls it at start: the
// declarations are idempotent, so no process depends on another having
// started first.
func declareAll(ctx context.Context, js jetstream.JetStream, s Settings) (*ledger, error) {
	s = s.WithDefaults()
	l := &ledger{js: js, settings: s}
	streams := []struct {
		into *jetstream.Stream
		cfg  jetstream.StreamConfig
	}{
		{&l.offers, runStream(s, rs.OffersStream, "raw offers as fetched, per run; the record that replay reads", rs.OffersSubjectPrefix+"*")},
		// Formatted jobs are derived data: once pushed they are gone, and a
		// replay formats the offers again.
		{&l.jobs, workQueue(runStream(s, rs.JobsStream, "formatted jobs waiting for a pusher", rs.JobsSubjectPrefix+"*"))},
		{&l.records, runStream(s, rs.RecordsStream, "the final record of each item of a run (the first of an item counts)", rs.RecordsSubjectPrefix+"*")},
		{nil, runStream(s, rs.DeadLetterStream, "items that ended failed, with the stage and reason in headers", rs.DeadLetterSubjectPrefix+">")},
		// Kept across runs: what pulljobs knows of each job of each board.
		{&l.indexStream, boardindex.StreamConfig(s.Replicas)},
	}
	for _, st := range streams {
		stream, err := declare.Stream(ctx, js, st.cfg)
		if err != nil {
			return nil, err
		}
		if st.into != nil {
			*st.into = stream
		}
	}
	if err := declareConsumers(ctx, l, s); err != nil {
		return nil, err
	}
	if err := declareBuckets(ctx, l, s); err != nil {
		return nil, err
	}
	l.index = boardindex.New(js, l.indexStream)
	return l, nil
}

// runStream is the configuration of one of the streams that hold runs'
// messages for the retention.
func runStream(s Settings, name, description, subject string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Description: "pulljobs: " + description,
		Subjects:    []string{subject},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      s.Retention,
		Duplicates:  s.DuplicateWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    s.Replicas,
	}
}

// workQueue makes cfg a work queue: a message is gone once acknowledged.
func workQueue(cfg jetstream.StreamConfig) jetstream.StreamConfig {
	cfg.Retention = jetstream.WorkQueuePolicy
	return cfg
}

// declareConsumers declares the durable consumers of the two stages.
func declareConsumers(ctx context.Context, l *ledger, s Settings) error {
	for _, c := range []struct {
		stream jetstream.Stream
		name   string
		filter string
	}{{l.offers, rs.FormatterConsumer, rs.OffersSubjectPrefix + "*"}, {l.jobs, rs.PusherConsumer, rs.JobsSubjectPrefix + "*"}} {
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
			return err
		}
	}
	return nil
}

// declareBuckets declares the runs and leases buckets.
func declareBuckets(ctx context.Context, l *ledger, s Settings) error {
	for _, b := range []struct {
		kv  *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		{&l.runs, jetstream.KeyValueConfig{Bucket: rs.RunsBucket, Description: "pulljobs: run specs, seals, claims, sync triggers and reports", TTL: s.Retention}},
		{&l.leases, jetstream.KeyValueConfig{Bucket: rs.LeasesBucket, Description: "pulljobs: which run holds which board"}},
	} {
		b.cfg.Storage = jetstream.FileStorage
		b.cfg.Replicas = s.Replicas
		kv, err := declare.KeyValue(ctx, l.js, b.cfg)
		if err != nil {
			return err
		}
		*b.kv = kv
	}
	return nil
}

// runOfSubject returns the run id, the last token of a pipeline subject.
func runOfSubject(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}
