// Package declare makes sure JetStream streams, consumers and key-value
// buckets exist with a given configuration. Every pulljobs process declares
// what it uses at start, so none depends on another having started first.
//
// Each function reads first, and writes only what is missing or different:
// when every worker of a fleet starts at once on a cluster, a stampede of
// identical create-or-update proposals can stall the meta layer for tens of
// seconds, while reads are cheap.
package declare

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream returns the stream cfg names, created or updated to match cfg in
// the fields the pipeline sets.
func Stream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Name)
	switch {
	case err == nil:
		if sameStream(s.CachedInfo().Config, cfg) {
			return s, nil
		}
		s, err = js.UpdateStream(ctx, cfg)
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // created meanwhile
			return Stream(ctx, js, cfg)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("declare stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) &&
		have.Retention == want.Retention &&
		have.MaxAge == want.MaxAge &&
		(want.Duplicates == 0 || have.Duplicates == want.Duplicates) &&
		have.Storage == want.Storage &&
		max(have.Replicas, 1) == max(want.Replicas, 1) &&
		have.AllowMsgCounter == want.AllowMsgCounter &&
		(want.MaxMsgsPerSubject == 0 || have.MaxMsgsPerSubject == want.MaxMsgsPerSubject) &&
		have.Compression == want.Compression &&
		have.Description == want.Description
}

// Consumer returns the durable consumer cfg names on s, created or updated
// to match cfg in the fields the pipeline sets.
func Consumer(ctx context.Context, s jetstream.Stream, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := s.Consumer(ctx, cfg.Durable)
	switch {
	case err == nil:
		if sameConsumer(c.CachedInfo().Config, cfg) {
			return c, nil
		}
		c, err = s.CreateOrUpdateConsumer(ctx, cfg)
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		c, err = s.CreateOrUpdateConsumer(ctx, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("declare consumer %s: %w", cfg.Durable, err)
	}
	return c, nil
}

func sameConsumer(have, want jetstream.ConsumerConfig) bool {
	return have.FilterSubject == want.FilterSubject &&
		have.AckPolicy == want.AckPolicy &&
		have.AckWait == want.AckWait &&
		have.MaxDeliver == want.MaxDeliver &&
		have.MaxAckPending == want.MaxAckPending &&
		have.DeliverPolicy == want.DeliverPolicy &&
		have.Description == want.Description
}

// KeyValue returns the bucket cfg names, created or updated to match cfg's
// time-to-live, storage and replicas.
func KeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	switch {
	case err == nil:
		st, serr := kv.Status(ctx)
		if serr == nil && sameBucket(st.Config(), cfg) {
			return kv, nil
		}
		kv, err = js.CreateOrUpdateKeyValue(ctx, cfg)
	case errors.Is(err, jetstream.ErrBucketNotFound):
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) { // created meanwhile
			return KeyValue(ctx, js, cfg)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("declare bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

func sameBucket(have, want jetstream.KeyValueConfig) bool {
	return have.TTL == want.TTL && have.Storage == want.Storage &&
		max(have.Replicas, 1) == max(want.Replicas, 1) && have.Description == want.Description
}
