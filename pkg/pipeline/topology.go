package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/boardindex"
	"github.com/pulljobs/pulljobs/pkg/declare"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/store"
)

// declareAll creates or updates the streams, consumers and buckets that
// stages use, and returns the ledger on them; what no stage of the process
// uses stays nil in it. Every process calls it at start: the declarations
// are idempotent, so no process depends on another having started first.
// Who uses what: the offers stream, fetch and format; the jobs stream,
// every stage (the fetcher makes each run's consumers at both stages); the
// board index, push; the boards bucket, fetch and push (a run's end); the
// records, dead letters and the other buckets, every stage.
func declareAll(ctx context.Context, js jetstream.JetStream, s Settings, stages Stages) (*ledger, error) {
	s = s.WithDefaults()
	l := &ledger{js: js, settings: s}
	streams := []struct {
		into *jetstream.Stream
		cfg  jetstream.StreamConfig
		by   Stages // the stages that use it
	}{
		{&l.offers, runStream(s, rs.OffersStream, "raw offers as fetched, per run; the record that replay reads", rs.OffersSubjectPrefix+"*"), StageFetch | StageFormat},
		// Formatted jobs are derived data: once pushed they are gone, and a
		// replay formats the offers again.
		{&l.jobs, workQueue(runStream(s, rs.JobsStream, "formatted jobs waiting for a pusher", rs.JobsSubjectPrefix+"*")), AllStages},
		{&l.records, runStream(s, rs.RecordsStream, "the final record of each item of a run (the first of an item counts)", rs.RecordsSubjectPrefix+"*"), AllStages},
		{nil, runStream(s, rs.DeadLetterStream, "items that ended failed, with the stage and reason in headers", rs.DeadLetterSubjectPrefix+">"), AllStages},
		// Kept across runs: what pulljobs knows of each job of each board.
		{&l.indexStream, boardindex.StreamConfig(s.Replicas), StagePush},
	}
	for _, st := range streams {
		if stages&st.by == 0 {
			continue
		}
		stream, err := declare.Stream(ctx, js, st.cfg)
		if err != nil {
			return nil, err
		}
		if st.into != nil {
			*st.into = stream
		}
	}
	if err := dropLegacyConsumers(ctx, l); err != nil {
		return nil, err
	}
	if err := declareBuckets(ctx, l, s, stages); err != nil {
		return nil, err
	}
	if l.indexStream != nil {
		l.index = boardindex.New(js, l.indexStream)
	}
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

// legacyConsumers are the consumers of builds before fair dispatch, one a
// stage for every run: on the jobs' work queue, that one would keep the
// runs' own consumers from being created.
var legacyConsumers = []struct{ stream, name string }{
	{rs.OffersStream, rs.FormatterConsumer},
	{rs.JobsStream, rs.PusherConsumer},
}

// dropLegacyConsumers removes the consumers of earlier builds on the
// streams l has; the runs they were serving are served by their own
// consumers instead.
func dropLegacyConsumers(ctx context.Context, l *ledger) error {
	for _, c := range legacyConsumers {
		stream := l.offers
		if c.stream == rs.JobsStream {
			stream = l.jobs
		}
		if stream == nil {
			continue
		}
		if err := deleteConsumer(ctx, stream, c.name); err != nil {
			return fmt.Errorf("remove the consumer %s of an earlier build: %w", c.name, err)
		}
	}
	return nil
}

// ensureRunConsumers creates the consumers of run at both stages, unless
// they exist.
func (l *ledger) ensureRunConsumers(ctx context.Context, run string) error {
	for _, c := range []stageConsumers{l.formatterConsumers(), l.pusherConsumers()} {
		if _, err := c.ensure(ctx, l.settings, run); err != nil {
			return err
		}
	}
	return nil
}

// deleteConsumer deletes the consumer name of stream, through fail-overs;
// one that does not exist is deleted already.
func deleteConsumer(ctx context.Context, stream jetstream.Stream, name string) error {
	return store.Retry(ctx, func(ctx context.Context) error {
		err := stream.DeleteConsumer(ctx, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil
		}
		return err
	})
}

// formatterConsumers are the formatters' consumers, one a run.
func (l *ledger) formatterConsumers() stageConsumers {
	return stageConsumers{name: rs.FormatterConsumer, stream: l.offers, prefix: rs.OffersSubjectPrefix}
}

// pusherConsumers are the pushers' consumers, one a run.
func (l *ledger) pusherConsumers() stageConsumers {
	return stageConsumers{name: rs.PusherConsumer, stream: l.jobs, prefix: rs.JobsSubjectPrefix}
}

// declareBuckets declares the runs and leases buckets, and for the stages
// that end runs (fetch, which abandons a dead one, and push) the boards
// bucket.
func declareBuckets(ctx context.Context, l *ledger, s Settings, stages Stages) error {
	for _, b := range []struct {
		kv  *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
		by  Stages
	}{
		{&l.runs, jetstream.KeyValueConfig{Bucket: rs.RunsBucket, Description: "pulljobs: run specs, seals, claims, sync triggers and reports", TTL: s.Retention}, AllStages},
		{&l.leases, jetstream.KeyValueConfig{Bucket: rs.LeasesBucket, Description: "pulljobs: which run holds which board"}, AllStages},
		{&l.boards, jetstream.KeyValueConfig{Bucket: rs.BoardsBucket, Description: "pulljobs: what the last run of each board left: its status, last successful sync, live jobs"}, StageFetch | StagePush},
	} {
		if stages&b.by == 0 {
			continue
		}
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
