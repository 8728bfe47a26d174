package pipeline

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

// ErrUnknownRun reports a run id with no spec in the runs bucket: never
// started, or older than the retention.
var ErrUnknownRun = errors.New("unknown run")

// Seal is the fetcher's last word on a run: how many items to expect, and
// whether the fetch was complete.
type Seal struct {
	Expected    int       `json:"expected"`
	ReadSuccess int       `json:"read_success"`
	ReadFailure bool      `json:"read_failure"`
	ReadError   string    `json:"read_error,omitempty"`
	Truncated   bool      `json:"truncated"`
	Total       int       `json:"total"`
	Unreached   int       `json:"unreached,omitempty"`
	Windows     int       `json:"windows,omitempty"`
	Requests    int       `json:"requests,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	SealedAt    time.Time `json:"sealed_at"`
}

// final is the exactly-once trigger of sync: whoever creates it runs sync,
// and keeps its heartbeat fresh; a stale heartbeat lets another take over.
type final struct {
	Owner     string    `json:"owner"`
	Heartbeat time.Time `json:"heartbeat"`
	// Abandoned is set when a later run took the board: no sync for this one.
	Abandoned string `json:"abandoned,omitempty"`
}

func specKey(run string) string   { return run + ".spec" }
func sealKey(run string) string   { return run + ".seal" }
func finalKey(run string) string  { return run + ".final" }
func reportKey(run string) string { return run + ".report" }

// Every call to a bucket goes through withRetry: a cluster that loses a
// node elects new leaders, and calls fail meanwhile with time-outs or "no
// response from stream". A call retried after its answer was lost may find
// its own write: callers of createJSON and updateJSON handle that.

// kvRetry keeps a bucket call trying through a fail-over.
var kvRetry = retry.Policy{InitialInterval: 100 * time.Millisecond, MaxInterval: 2 * time.Second, MaxElapsed: time.Minute, MaxAttempts: -1}

// kvCallTimeout bounds one attempt.
const kvCallTimeout = 10 * time.Second

func withRetry(ctx context.Context, op func(context.Context) error) error {
	return retry.Do(ctx, kvRetry, func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, kvCallTimeout)
		defer cancel()
		err := op(actx)
		if err != nil && ctx.Err() == nil && transientNATS(err) {
			return transient{err}
		}
		return err
	}, nil)
}

// transientNATS reports errors that a leader election, a restart or a
// reconnection explains, and that the same call may not meet again.
func transientNATS(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code == 503 || apiErr.Code == 408 || apiErr.ErrorCode == jsClusterNotAvailable
	}
	return false
}

// jsClusterNotAvailable is the server's "JetStream system temporarily
// unavailable" (no meta leader).
const jsClusterNotAvailable jetstream.ErrorCode = 10008

// watch starts a watcher of keys in kv, trying again while a cluster fails
// over. The watcher lives until ctx ends or it is stopped; once started it
// recovers from fail-overs by itself.
func watch(ctx context.Context, kv jetstream.KeyValue, keys string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	var w jetstream.KeyWatcher
	err := retry.Do(ctx, kvRetry, func(context.Context) error {
		var err error
		w, err = kv.Watch(ctx, keys, opts...)
		if err != nil && ctx.Err() == nil && transientNATS(err) {
			return transient{err}
		}
		return err
	}, nil)
	return w, err
}

func getJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	var e jetstream.KeyValueEntry
	err := withRetry(ctx, func(ctx context.Context) error {
		var err error
		e, err = kv.Get(ctx, key)
		return err
	})
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return e.Revision(), nil
}

// createJSON stores v under key unless the key exists; created says which.
func createJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) (created bool, err error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("encode %s: %w", key, err)
	}
	if err := withRetry(ctx, func(ctx context.Context) error { _, err := kv.Create(ctx, key, b); return err }); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil
		}
		return false, fmt.Errorf("write %s: %w", key, err)
	}
	return true, nil
}

func updateJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any, rev uint64) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := withRetry(ctx, func(ctx context.Context) error { _, err := kv.Update(ctx, key, b, rev); return err }); err != nil {
		return fmt.Errorf("update %s: %w", key, err)
	}
	return nil
}

func (t *topology) spec(ctx context.Context, run string) (RunSpec, error) {
	var s RunSpec
	if _, err := getJSON(ctx, t.runs, specKey(run), &s); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return s, fmt.Errorf("run %s: %w", run, ErrUnknownRun)
		}
		return s, fmt.Errorf("read spec of run %s: %w", run, err)
	}
	return s, nil
}

func (t *topology) seal(ctx context.Context, run string) (Seal, bool, error) {
	var s Seal
	if _, err := getJSON(ctx, t.runs, sealKey(run), &s); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return s, false, nil
		}
		return s, false, fmt.Errorf("read seal of run %s: %w", run, err)
	}
	return s, true, nil
}

func (t *topology) exists(ctx context.Context, kv jetstream.KeyValue, key string) (bool, error) {
	err := withRetry(ctx, func(ctx context.Context) error { _, err := kv.Get(ctx, key); return err })
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("read %s: %w", key, err)
}

// Report returns the report of a finished run, or ok false while it runs.
func (t *topology) report(ctx context.Context, run string) (r Report, ok bool, err error) {
	if _, err := getJSON(ctx, t.runs, reportKey(run), &r); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return r, false, nil
		}
		return r, false, fmt.Errorf("read report of run %s: %w", run, err)
	}
	return r, true, nil
}

// record writes an item's final record, unless it has one: the first stage
// to end an item decides, and a redelivered message changes nothing.
func (t *topology) record(ctx context.Context, run string, r Record) error {
	r.At = time.Now().UTC()
	_, err := createJSON(ctx, t.items, itemKey(run, r.Offer), r)
	if err != nil {
		return fmt.Errorf("record %s of run %s: %w", r.Offer, run, err)
	}
	return nil
}

// hasRecord reports whether the item already ended: a redelivered message
// for it needs no work.
func (t *topology) hasRecord(ctx context.Context, run, offer string) (bool, error) {
	return t.exists(ctx, t.items, itemKey(run, offer))
}
