package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/boardindex"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/store"
)

// ledger is the pipeline's own state in JetStream, which every process
// shares: the runs (spec, seal, fetch and index claims, sync trigger,
// report), the items' final records, the board leases and the board index.
// Nothing a run needs lives in one process's memory. Its calls go through
// pkg/store, which retries them through a cluster's fail-overs.
type ledger struct {
	js       jetstream.JetStream
	settings Settings
	offers   jetstream.Stream
	jobs     jetstream.Stream
	records  jetstream.Stream
	runs     jetstream.KeyValue
	leases   jetstream.KeyValue
	boards   jetstream.KeyValue // rs.Board of each board
	// indexStream holds the board index, which index reads and writes.
	indexStream jetstream.Stream
	index       *boardindex.Index
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

func (l *ledger) spec(ctx context.Context, run string) (RunSpec, error) {
	var s RunSpec
	_, found, err := store.Get(ctx, l.runs, rs.SpecKey(run), &s)
	switch {
	case err != nil:
		return s, fmt.Errorf("read spec of run %s: %w", run, err)
	case !found:
		return s, fmt.Errorf("run %s: %w", run, rs.ErrUnknownRun)
	}
	return s, nil
}

func (l *ledger) seal(ctx context.Context, run string) (rs.Seal, bool, error) {
	var s rs.Seal
	_, found, err := store.Get(ctx, l.runs, rs.SealKey(run), &s)
	if err != nil {
		return s, false, fmt.Errorf("read seal of run %s: %w", run, err)
	}
	return s, found, nil
}

// report returns the report of a finished run, or ok false while it runs.
func (l *ledger) report(ctx context.Context, run string) (r rs.Report, ok bool, err error) {
	if _, ok, err = store.Get(ctx, l.runs, rs.ReportKey(run), &r); err != nil {
		return r, false, fmt.Errorf("read report of run %s: %w", run, err)
	}
	return r, ok, nil
}

// A run's final records are messages on one subject, pulljobs.records.<run>:
// a key per item would cost the server memory for every item of every run
// it keeps. An item may get more than one record (a redelivery after a
// crash, a worker that finishes after its item was given up): the first
// one on the subject is the item's, and readers skip the others (see
// recordReader).

// record appends an item's final record. It returns once the server
// stored it.
func (l *ledger) record(ctx context.Context, run string, r rs.Record) error {
	r.At = time.Now().UTC()
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode record %s of run %s: %w", r.Offer, run, err)
	}
	if err := store.Retry(ctx, func(ctx context.Context) error {
		_, err := l.js.Publish(ctx, rs.RecordsSubjectPrefix+run, b)
		return err
	}); err != nil {
		return fmt.Errorf("record %s of run %s: %w", r.Offer, run, err)
	}
	return nil
}

// countRecords returns the number of records of run, duplicates included:
// a cheap upper bound of its finished items, which the server counts.
func (l *ledger) countRecords(ctx context.Context, run string) (int, error) {
	return store.Count(ctx, l.records, rs.RecordsSubjectPrefix+run)
}

// recordReader reads the final records of one run in order, once each: it
// remembers the offer ids it met (francetravail.IDSet: about 8 bytes an
// item, exactly), and skips a later record of an offer it saw.
type recordReader struct {
	seen francetravail.IDSet
}

// first reports whether r is the first record of its offer.
func (rr *recordReader) first(r rs.Record) bool { return rr.seen.Add(r.Offer) }

// distinct is the number of items whose record was read.
func (rr *recordReader) distinct() int { return rr.seen.Len() }

// readRecords calls fn with each item's first record of run, in order:
// every record stored, and at least want distinct items, waiting for late
// ones. It stops early with fn's error, or ctx's.
func (l *ledger) readRecords(ctx context.Context, run string, want int, fn func(rs.Record) error) error {
	var rr recordReader
	subject := rs.RecordsSubjectPrefix + run
	n, err := store.Count(ctx, l.records, subject)
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
		var r rs.Record
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

// recordBoard records in the board's rs.Board what run r left on it; live
// is the board's live jobs after it, nil when unknown (the last count
// known is kept). A successful sync is kept until a later one replaces
// it.
func (l *ledger) recordBoard(ctx context.Context, r rs.Report, live *int) error {
	for {
		var b rs.Board
		rev, found, err := store.Get(ctx, l.boards, r.BoardKey, &b)
		if err != nil {
			return err
		}
		if found && b.LastFinishedAt.After(r.FinishedAt) {
			return nil // a later run wrote it already
		}
		b.BoardKey, b.LastRun, b.LastStatus, b.LastReason, b.LastFinishedAt = r.BoardKey, r.RunID, r.Status, r.Reason, r.FinishedAt
		if r.Sync.Performed && !r.DryRun && r.Status != rs.StatusFatal {
			at := r.FinishedAt
			b.LastSyncAt, b.LastSyncRun = &at, r.RunID
		}
		if live != nil {
			b.LiveJobs = live
		}
		if !found {
			created, err := store.Create(ctx, l.boards, r.BoardKey, b)
			if err != nil || created {
				return err
			}
			continue // another process created it: read again
		}
		err = store.Update(ctx, l.boards, r.BoardKey, b, rev)
		if store.IsConflict(err) {
			continue
		}
		return err
	}
}
