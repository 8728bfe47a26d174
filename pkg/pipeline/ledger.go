package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/retry"
)

// ledger is the pipeline's own state in JetStream, which every process
// shares: the runs (spec, seal, fetch and index claims, sync trigger,
// report), the items' final records, the board leases and the board index.
// Nothing a run needs lives in one process's memory.
type ledger struct {
	js       jetstream.JetStream
	settings Settings
	offers   jetstream.Stream
	jobs     jetstream.Stream
	records  jetstream.Stream
	runs     jetstream.KeyValue
	leases   jetstream.KeyValue
	// index is the board index (index.go).
	index jetstream.Stream
}

// ErrUnknownRun reports a run id with no spec in the runs bucket: never
// started, or older than the retention.
var ErrUnknownRun = errors.New("unknown run")

// Seal is the fetcher's last word on a run, stored as <run>.seal: how many
// items to expect, and whether the fetch was complete. It is written once,
// after every offer's publish was acknowledged.
type Seal struct {
	// Expected is the number of items of the run: distinct offers, each of
	// which gets exactly one final record (counted by offer id).
	Expected int `json:"expected"`
	// ReadSuccess counts the offers read from France Travail (or from the
	// replayed run), duplicates removed.
	ReadSuccess int `json:"read_success"`
	// ReadFailure is set when the search failed before its end; ReadError
	// is the failure. Sync is then refused.
	ReadFailure bool   `json:"read_failure"`
	ReadError   string `json:"read_error,omitempty"`
	// Truncated is set when the API's result cap hid offers that no split
	// of the query could reach; Unreached counts them. Sync is refused.
	Truncated bool `json:"truncated"`
	Unreached int  `json:"unreached,omitempty"`
	// Total is the number of offers the API announced for the query.
	Total int `json:"total"`
	// Duplicates counts the offers the search returned more than once
	// (removed before publishing).
	Duplicates int `json:"duplicates,omitempty"`
	// Windows and Requests count the creation-date windows the query was
	// split into and the search calls made.
	Windows  int `json:"windows,omitempty"`
	Requests int `json:"requests,omitempty"`
	// StartedAt is when the fetch started, SealedAt when it was sealed (UTC).
	StartedAt time.Time `json:"started_at"`
	SealedAt  time.Time `json:"sealed_at"`
}

// final is the exactly-once trigger of sync, stored as <run>.final:
// whoever creates it runs sync, and keeps its heartbeat fresh; a stale
// heartbeat lets another process take over.
type final struct {
	// Owner names the process (and attempt) that runs sync.
	Owner string `json:"owner"`
	// Heartbeat is the owner's last sign of life (UTC).
	Heartbeat time.Time `json:"heartbeat"`
	// Abandoned is set when a later run took the board: no sync for this one.
	Abandoned string `json:"abandoned,omitempty"`
}

func specKey(run string) string   { return run + ".spec" }
func sealKey(run string) string   { return run + ".seal" }
func fetchKey(run string) string  { return run + ".fetch" }
func indexKey(run string) string  { return run + ".index" }
func finalKey(run string) string  { return run + ".final" }
func reportKey(run string) string { return run + ".report" }

// Every call to a bucket goes through withRetry: a cluster that loses a
// node elects new leaders, and calls fail meanwhile with time-outs or "no
// response from stream". A call retried after its answer was lost may find
// its own write: callers of createJSON and updateJSON handle that.

// natsRetries labels the pipeline's retries of NATS operations in the
// pulljobs_retries_total metric.
const natsRetries = "nats"

// kvRetry keeps a bucket call trying through a fail-over.
var kvRetry = retry.Policy{Name: natsRetries, InitialInterval: 100 * time.Millisecond, MaxInterval: 2 * time.Second, MaxElapsed: time.Minute, MaxAttempts: -1}

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

// transient marks an error worth retrying whatever its type.
type transient struct{ err error }

func (t transient) Error() string   { return t.err.Error() }
func (t transient) Unwrap() error   { return t.err }
func (t transient) Retryable() bool { return true }

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

// updateJSON replaces key's value if its revision is still rev.
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

// putJSON stores v under key, whatever was there.
func putJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := withRetry(ctx, func(ctx context.Context) error { _, err := kv.Put(ctx, key, b); return err }); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// isConflict reports a compare-and-set that lost a race: read again and retry.
func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
		errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) ||
		errorsIsAPI(err, jetstream.JSErrCodeStreamWrongLastSequence) ||
		errorsIsAPI(err, jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func errorsIsAPI(err error, code jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == code
}

func (l *ledger) spec(ctx context.Context, run string) (RunSpec, error) {
	var s RunSpec
	if _, err := getJSON(ctx, l.runs, specKey(run), &s); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return s, fmt.Errorf("run %s: %w", run, ErrUnknownRun)
		}
		return s, fmt.Errorf("read spec of run %s: %w", run, err)
	}
	return s, nil
}

func (l *ledger) seal(ctx context.Context, run string) (Seal, bool, error) {
	var s Seal
	if _, err := getJSON(ctx, l.runs, sealKey(run), &s); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return s, false, nil
		}
		return s, false, fmt.Errorf("read seal of run %s: %w", run, err)
	}
	return s, true, nil
}

func (l *ledger) exists(ctx context.Context, kv jetstream.KeyValue, key string) (bool, error) {
	err := withRetry(ctx, func(ctx context.Context) error { _, err := kv.Get(ctx, key); return err })
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("read %s: %w", key, err)
}

// report returns the report of a finished run, or ok false while it runs.
func (l *ledger) report(ctx context.Context, run string) (r Report, ok bool, err error) {
	if _, err := getJSON(ctx, l.runs, reportKey(run), &r); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return r, false, nil
		}
		return r, false, fmt.Errorf("read report of run %s: %w", run, err)
	}
	return r, true, nil
}

// A run's final records are messages on one subject, pulljobs.records.<run>:
// a key per item would cost the server memory for every item of every run
// it keeps. An item may get more than one record (a redelivery after a
// crash, a worker that finishes after its item was given up): the first
// one on the subject is the item's, and readers skip the others (see
// recordReader).

// record appends an item's final record. It returns once the server
// stored it.
func (l *ledger) record(ctx context.Context, run string, r Record) error {
	r.At = time.Now().UTC()
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode record %s of run %s: %w", r.Offer, run, err)
	}
	if err := withRetry(ctx, func(ctx context.Context) error {
		_, err := l.js.Publish(ctx, RecordsSubjectPrefix+run, b)
		return err
	}); err != nil {
		return fmt.Errorf("record %s of run %s: %w", r.Offer, run, err)
	}
	return nil
}

// countRecords returns the number of records of run, duplicates included:
// a cheap upper bound of its finished items, which the server counts.
func (l *ledger) countRecords(ctx context.Context, run string) (int, error) {
	return countSubjectMsgs(ctx, l.records, RecordsSubjectPrefix+run)
}

func countSubjectMsgs(ctx context.Context, s jetstream.Stream, subject string) (int, error) {
	var info *jetstream.StreamInfo
	err := withRetry(ctx, func(ctx context.Context) error {
		var err error
		info, err = s.Info(ctx, jetstream.WithSubjectFilter(subject))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", subject, err)
	}
	return int(info.State.Subjects[subject]), nil
}

// recordReader reads the final records of one run in order, once each: it
// remembers the offer ids it met (francetravail.IDSet: about 8 bytes an
// item, exactly), and skips a later record of an offer it saw.
type recordReader struct {
	seen francetravail.IDSet
}

// first reports whether r is the first record of its offer.
func (rr *recordReader) first(r Record) bool { return rr.seen.Add(r.Offer) }

// distinct is the number of items whose record was read.
func (rr *recordReader) distinct() int { return rr.seen.Len() }

// readRecords calls fn with each item's first record of run, in order:
// every record stored, and at least want distinct items, waiting for late
// ones. It stops early with fn's error, or ctx's.
func (l *ledger) readRecords(ctx context.Context, run string, want int, fn func(Record) error) error {
	var rr recordReader
	subject := RecordsSubjectPrefix + run
	n, err := countSubjectMsgs(ctx, l.records, subject)
	if err != nil || (n == 0 && want == 0) {
		return err
	}
	cons, err := l.records.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return fmt.Errorf("read records of run %s: %w", run, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read records of run %s: %w", run, err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("read records of run %s: %w", run, err)
		}
		var r Record
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			return fmt.Errorf("read records of run %s: %w", run, err)
		}
		if rr.first(r) {
			if err := fn(r); err != nil {
				return err
			}
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		if meta.NumPending == 0 && rr.distinct() >= want {
			return nil
		}
	}
}

// readStream calls fn with each message of s on filters, in order, up to
// the last one stored when it started, and stops at fn's first error. It
// pulls them a few hundred at a time (a watcher would take them as fast as
// the server sends them, tens of megabytes for a nationwide board), and
// deletes its consumer when done: an ordered consumer stopped lingers on
// the server for minutes, and a refresh of the board index makes many.
func readStream(ctx context.Context, s jetstream.Stream, filters []string, headersOnly bool, fn func(jetstream.Msg) error) error {
	var si *jetstream.StreamInfo
	err := withRetry(ctx, func(ctx context.Context) error {
		var err error
		si, err = s.Info(ctx)
		return err
	})
	if err != nil {
		return err
	}
	last := si.State.LastSeq
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: filters, HeadersOnly: headersOnly})
	if err != nil {
		return err
	}
	defer func() {
		if ci := cons.CachedInfo(); ci != nil {
			_ = s.DeleteConsumer(context.WithoutCancel(ctx), ci.Name)
		}
	}()
	info, err := cons.Info(ctx)
	if err != nil {
		return err
	}
	if info.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(readBatch))
	if err != nil {
		return err
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return err
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		if meta.Sequence.Stream > last {
			return nil
		}
		if err := fn(m); err != nil {
			return err
		}
		if meta.NumPending == 0 || meta.Sequence.Stream == last {
			return nil
		}
	}
}

// readBatch is how many messages readStream pulls at once.
const readBatch = 256
