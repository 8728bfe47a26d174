// Package store reads and writes pulljobs' own state in NATS JetStream:
// JSON values in key-value buckets, streams read in order, and claims (a
// key that says which process does a job that must be done once). Every
// call goes through Retry: a cluster that loses a node elects new leaders,
// and calls fail meanwhile with time-outs or "no response from stream".
//
// A write retried after its answer was lost may find its own write: Create
// then reports the key as existing, and Update as a conflict. Callers
// handle both (Claim does).
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/retry"
)

// RetryName labels the retries of NATS operations in the
// pulljobs_retries_total metric.
const RetryName = "nats"

// Policy is how Retry keeps a call trying through a fail-over: with
// backoff, for up to a minute.
var Policy = retry.Policy{Name: RetryName, InitialInterval: 100 * time.Millisecond, MaxInterval: 2 * time.Second, MaxElapsed: time.Minute, MaxAttempts: -1}

// CallTimeout bounds one attempt of a call.
const CallTimeout = 10 * time.Second

// Retry runs op again, with Policy's backoff, while it fails with an error
// that a fail-over explains (IsTransient), each attempt bounded by
// CallTimeout. It returns op's last error, or ctx's.
func Retry(ctx context.Context, op func(context.Context) error) error {
	return retry.Do(ctx, Policy, func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, CallTimeout)
		defer cancel()
		err := op(actx)
		if err != nil && ctx.Err() == nil && IsTransient(err) {
			return Transient(err)
		}
		return err
	}, nil)
}

// IsTransient reports errors that a leader election, a restart or a
// reconnection explains, and that the same call may not meet again.
func IsTransient(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, jetstream.ErrConsumerNotFound):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code == 503 || apiErr.Code == 408 || apiErr.ErrorCode == jsClusterNotAvailable
	}
	return false
}

// jsClusterNotAvailable is the server's "JetStream system temporarily
// unavailable" (no meta leader).
const jsClusterNotAvailable jetstream.ErrorCode = 10008

// Transient marks err as worth retrying whatever its type, for retry.Do.
// It is nil for a nil err.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return transient{err}
}

type transient struct{ err error }

func (t transient) Error() string   { return t.err.Error() }
func (t transient) Unwrap() error   { return t.err }
func (t transient) Retryable() bool { return true }

// IsConflict reports a compare-and-set that lost a race (or found its own
// earlier attempt): read again and decide again.
func IsConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
		errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) ||
		IsAPIError(err, jetstream.JSErrCodeStreamWrongLastSequence) ||
		IsAPIError(err, jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// IsAPIError reports whether err is the JetStream API error code.
func IsAPIError(err error, code jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == code
}

// Watch starts a watcher of keys in kv, trying again while a cluster fails
// over. The watcher lives until ctx ends or it is stopped; once started it
// recovers from fail-overs by itself.
func Watch(ctx context.Context, kv jetstream.KeyValue, keys string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	var w jetstream.KeyWatcher
	err := retry.Do(ctx, Policy, func(context.Context) error {
		var err error
		w, err = kv.Watch(ctx, keys, opts...)
		if err != nil && ctx.Err() == nil && IsTransient(err) {
			return Transient(err)
		}
		return err
	}, nil)
	return w, err
}

// Get decodes key's value into v, and returns its revision. A key that
// does not exist is not an error: found is false.
func Get(ctx context.Context, kv jetstream.KeyValue, key string, v any) (rev uint64, found bool, err error) {
	var e jetstream.KeyValueEntry
	err = Retry(ctx, func(ctx context.Context) error {
		var err error
		e, err = kv.Get(ctx, key)
		return err
	})
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("read %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, false, fmt.Errorf("decode %s: %w", key, err)
	}
	return e.Revision(), true, nil
}

// Exists reports whether key exists in kv.
func Exists(ctx context.Context, kv jetstream.KeyValue, key string) (bool, error) {
	err := Retry(ctx, func(ctx context.Context) error { _, err := kv.Get(ctx, key); return err })
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("read %s: %w", key, err)
}

// Create stores v under key unless the key exists; created says which.
func Create(ctx context.Context, kv jetstream.KeyValue, key string, v any, opts ...jetstream.KVCreateOpt) (created bool, err error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("encode %s: %w", key, err)
	}
	err = Retry(ctx, func(ctx context.Context) error { _, err := kv.Create(ctx, key, b, opts...); return err })
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("write %s: %w", key, err)
	}
	return true, nil
}

// Update replaces key's value with v if its revision is still rev; a lost
// race is an error for which IsConflict is true.
func Update(ctx context.Context, kv jetstream.KeyValue, key string, v any, rev uint64) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := Retry(ctx, func(ctx context.Context) error { _, err := kv.Update(ctx, key, b, rev); return err }); err != nil {
		return fmt.Errorf("update %s: %w", key, err)
	}
	return nil
}

// Put stores v under key, whatever was there.
func Put(ctx context.Context, kv jetstream.KeyValue, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := Retry(ctx, func(ctx context.Context) error { _, err := kv.Put(ctx, key, b); return err }); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// Bucket opens the bucket name. A bucket that does not exist is not an
// error: kv is nil.
func Bucket(ctx context.Context, js jetstream.JetStream, name string) (kv jetstream.KeyValue, err error) {
	err = Retry(ctx, func(ctx context.Context) error {
		var err error
		kv, err = js.KeyValue(ctx, name)
		return err
	})
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("open bucket %s: %w", name, err)
	}
	return kv, nil
}
