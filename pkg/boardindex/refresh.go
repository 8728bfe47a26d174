package boardindex

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/store"
)

// Sizes of a refresh.
const (
	// shardEntries is about how many entries a snapshot shard holds: a
	// lookup reads one shard a job, so few; but a shard is a subject, which
	// the server keeps in memory, so not one.
	shardEntries = 16
	// maxShards bounds a snapshot's shards, and so the subjects it costs the
	// server.
	maxShards = 1 << 16
	// passEntries is about how many entries one pass of the merge holds in
	// memory: beyond it, the merge makes maxPasses passes, one per
	// hexadecimal digit of the hashes. Each pass has the server scan the
	// journal and the listing once more (their subjects are interleaved),
	// so not more: past a million jobs a pass holds more.
	passEntries = 1 << 16
	maxPasses   = 16
	// listConcurrency is the listing's pages fetched at once (the client's
	// rate limit bounds them against the real API).
	listConcurrency = 8
)

// Refresh lists board once and builds from it a new snapshot of the
// board's index: the last snapshot, with the journal written since merged
// in, brought in line with the listing (each listed job's state, key and
// updated_at; a job the listing did not show is dropped). It keeps what
// pulljobs wrote. It then makes the new snapshot the board's, and removes
// what it merged.
//
// The Listing returned says what the listing saw and, without an error,
// which snapshot to read; should the listing fail, it names the snapshot
// before, with the error. Memory: a pass of at most about passEntries
// entries, whatever the board's size. Two refreshes of a board at once
// are safe: the second to commit fails, and its snapshot is removed.
func (x *Index) Refresh(ctx context.Context, board string, lister Lister) (Listing, error) {
	var st Listing
	old, oldSeq, err := x.head(ctx, board)
	if err != nil {
		return st, err
	}
	st.Snapshot = old.Snapshot
	gen := randomHex()
	listed := Subject(board, "listed."+gen)
	defer func() { _ = store.Purge(context.WithoutCancel(ctx), x.stream, listed+".>", 0) }() // merged, or of no use
	n, err := x.spill(ctx, board, listed, lister, &st)
	if err != nil {
		return st, err
	}
	st.ListedAt = time.Now().UTC()
	logged, logLast, err := x.journal(ctx, board)
	if err != nil {
		return st, err
	}
	// The snapshot holds the jobs listed; a pass, at most every entry read.
	perShard, perPass := cmp.Or(x.shardEntries, shardEntries), cmp.Or(x.passEntries, passEntries)
	next := head{Snapshot: Snapshot{Gen: gen, Shards: powerOfTwo(n/perShard, maxShards)}, LogSeq: max(old.LogSeq, logLast)}
	passes := 1
	if n+old.Entries+logged > perPass {
		passes = maxPasses
	}
	// A pass writes whole shards: none may straddle two.
	next.Shards = max(next.Shards, passes)
	committed := false
	defer func() {
		if !committed { // a snapshot nobody will read
			_ = store.Purge(context.WithoutCancel(ctx), x.stream, Subject(board, "snap."+gen+".>"), 0)
		}
	}()
	for p := range passes {
		k, err := x.merge(ctx, board, old, next, listed, passes, p)
		if err != nil {
			return st, err
		}
		next.Entries += k
	}
	if err := x.commit(ctx, board, next, oldSeq); err != nil {
		return st, err
	}
	committed = true
	st.Snapshot = next.Snapshot
	x.tidy(ctx, board, old, next)
	return st, nil
}

// randomHex returns 16 random hexadecimal digits: a snapshot's generation.
func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// powerOfTwo returns the least power of two at least n, within [1, most].
func powerOfTwo(n, most int) int {
	if n <= 1 {
		return 1
	}
	return min(1<<bits.Len(uint(n-1)), most)
}

// spill lists the board into the index stream, under prefix, and counts
// what it saw into st. It returns how many jobs it listed.
func (x *Index) spill(ctx context.Context, board, prefix string, lister Lister, st *Listing) (int, error) {
	b := batch{x: x}
	n := 0
	for job, err := range lister.Jobs(ctx, board, hrflow.ListOptions{Concurrency: listConcurrency}) {
		if err != nil {
			return n, fmt.Errorf("list board %s: %w", board, err)
		}
		e := Entry{Ref: job.Reference, Key: job.Key, State: Live, UpdatedAt: job.UpdatedAt}
		if job.ArchivedAt != "" {
			e.State = Archived
			st.Archived++
		} else {
			st.Live++
		}
		if err := b.add(ctx, prefix+"."+hexDigit(hashID(e.ID())), e); err != nil {
			return n, fmt.Errorf("store the listing of board %s: %w", board, err)
		}
		n++
	}
	if err := b.flush(ctx); err != nil {
		return n, fmt.Errorf("store the listing of board %s: %w", board, err)
	}
	return n, nil
}

// journal returns how many entries the board's journal holds, and the
// stream's last sequence: every one of them is at or below it.
func (x *Index) journal(ctx context.Context, board string) (n int, last uint64, err error) {
	var si *jetstream.StreamInfo
	err = store.Retry(ctx, func(ctx context.Context) error {
		si, err = x.stream.Info(ctx, jetstream.WithSubjectFilter(Subject(board, "log.>")))
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("read the board index journal of %s: %w", board, err)
	}
	for _, c := range si.State.Subjects {
		n += int(c)
	}
	return n, si.State.LastSeq, nil
}

// merge builds pass p of passes of snapshot next: the entries of the
// snapshot old and of the journal whose hash starts with p (in base 16),
// as the listing stored under listed says, and returns how many it wrote.
// It reads them in the order they were written (the snapshot, the journal
// since, the listing), so each says the last word on what it holds.
func (x *Index) merge(ctx context.Context, board string, old, next head, listed string, passes, p int) (int, error) {
	width := bits.TrailingZeros(uint(passes)) // 0 or 4 bits
	digit := "*"                              // the hexadecimal digit of the subjects
	if width > 0 {
		digit = hexDigit(uint64(p) << 60)
	}
	in := func(h uint64) bool { return width == 0 || h>>(64-width) == uint64(p) }
	snaps, logs := Subject(board, "snap."), Subject(board, "log.")
	filters := []string{logs + digit, listed + "." + digit}
	if old.Gen != "" {
		if old.Shards < passes {
			filters = append(filters, snaps+old.Gen+".>") // shards wider than a pass
		} else {
			filters = append(filters, snaps+old.Gen+"."+digit+".*")
		}
	}
	type merging struct {
		e      Entry
		listed bool
	}
	m := map[string]*merging{}
	entry := func(id string) *merging {
		c := m[id]
		if c == nil {
			c = &merging{}
			m[id] = c
		}
		return c
	}
	err := store.ReadStream(ctx, x.stream, filters, false, func(msg jetstream.Msg) error {
		subject := msg.Subject()
		if strings.HasPrefix(subject, snaps) {
			var shard []Entry
			if err := json.Unmarshal(msg.Data(), &shard); err != nil {
				return fmt.Errorf("board index shard %s: %w", subject, err)
			}
			for _, e := range shard {
				if id := e.ID(); in(hashID(id)) {
					entry(id).e = e
				}
			}
			return nil
		}
		var e Entry
		if err := json.Unmarshal(msg.Data(), &e); err != nil {
			return fmt.Errorf("board index %s: %w", subject, err)
		}
		c := entry(e.ID())
		if strings.HasPrefix(subject, logs) {
			e.Run, e.Action = "", ""
			c.e = e
			return nil
		}
		c.e.Ref, c.e.Key, c.e.State, c.e.UpdatedAt = e.Ref, e.Key, e.State, e.UpdatedAt
		c.listed = true
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read the board index of %s: %w", board, err)
	}
	shards := map[uint64][]Entry{}
	for id, c := range m {
		if c.listed {
			s := next.shardOf(hashID(id))
			shards[s] = append(shards[s], c.e)
		}
	}
	b := batch{x: x}
	n := 0
	for _, es := range shards {
		if err := b.add(ctx, next.shardSubject(board, hashID(es[0].ID())), es); err != nil {
			return 0, fmt.Errorf("write the board index of %s: %w", board, err)
		}
		n += len(es)
	}
	if err := b.flush(ctx); err != nil {
		return 0, fmt.Errorf("write the board index of %s: %w", board, err)
	}
	return n, nil
}

// ErrRebuilt reports a refresh that lost the race to make its snapshot the
// board's: another process built one meanwhile.
var ErrRebuilt = errors.New("the board index was rebuilt meanwhile by another process")

// commit makes next the board's snapshot, if the head is still at oldSeq.
func (x *Index) commit(ctx context.Context, board string, next head, oldSeq uint64) error {
	data, err := json.Marshal(next)
	if err != nil {
		return err
	}
	subject := Subject(board, "head")
	err = store.Retry(ctx, func(ctx context.Context) error {
		_, err := x.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data}, jetstream.WithExpectLastSequencePerSubject(oldSeq))
		return err
	})
	if err == nil {
		return nil
	}
	if store.IsConflict(err) {
		// Ours, from an attempt whose answer was lost? Or someone else's.
		if h, _, herr := x.head(ctx, board); herr == nil && h.Gen == next.Gen {
			return nil
		}
		return fmt.Errorf("board %s: %w", board, ErrRebuilt)
	}
	return fmt.Errorf("write the board index head of %s: %w", board, err)
}

// tidy removes, once next is the board's snapshot, what next holds or
// replaces: the snapshot before, the journal merged and the heads before.
// It is best effort: a journal left is merged again, harmlessly, by the
// next refresh.
func (x *Index) tidy(ctx context.Context, board string, old, next head) {
	if old.Gen != "" {
		_ = store.Purge(ctx, x.stream, Subject(board, "snap."+old.Gen+".>"), 0)
	}
	_ = store.Purge(ctx, x.stream, Subject(board, "log.>"), next.LogSeq+1)
	_ = store.Retry(ctx, func(ctx context.Context) error {
		return x.stream.Purge(ctx, jetstream.WithPurgeSubject(Subject(board, "head")), jetstream.WithPurgeKeep(1))
	})
}
