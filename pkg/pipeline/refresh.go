package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// Sizes of a refresh.
const (
	// shardEntries is about how many entries a snapshot shard holds: a
	// pusher reads one shard a job, so few; but a shard is a subject, which
	// the server keeps in memory, so not one.
	shardEntries = 16
	// maxShards bounds a snapshot's shards, and so the subjects it costs the
	// server.
	maxShards = 1 << 16
	// passEntries is about how many entries one pass of the merge holds in
	// memory (a few hundred bytes each): beyond it, the merge makes
	// maxPasses passes, one per hexadecimal digit of the hashes. Each pass
	// has the server scan the journal and the listing once more (their
	// subjects are interleaved), so not more: past a million jobs a pass
	// holds more.
	passEntries = 1 << 16
	maxPasses   = 16
)

// refresh lists the board once and builds from it a new snapshot of the
// board's index: the last snapshot, with the journal written since merged
// in, brought in line with the listing (each listed job's state, key and
// updated_at; a job the listing did not show is dropped). It keeps what
// pulljobs wrote. It then makes the new snapshot the board's, and removes
// what it merged. run names the run it refreshes for: its sync marks stay.
// A board's first refresh adopts what an earlier build's index knew of it
// (adopt).
//
// The state returned says what the listing saw and, once ready, which
// snapshot to read; should the listing fail, it names the snapshot before,
// with the error. Memory: a pass of at most about passEntries entries,
// whatever the board's size.
func (x boardIndex) refresh(ctx context.Context, board, run string, lister boardLister) (st indexState, err error) {
	old, oldSeq, err := x.head(ctx, board)
	if err != nil {
		return st, err
	}
	st.snapshot = old.snapshot
	adopted := false
	if oldSeq == 0 {
		if adopted, err = x.adopt(ctx, board); err != nil {
			return st, err
		}
	}
	gen := randomHex() + randomHex()
	listed := indexSubject(board, "listed."+gen)
	defer func() { _ = x.purge(context.WithoutCancel(ctx), listed+".>", 0) }() // merged, or of no use
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
	next := indexHead{snapshot: snapshot{Gen: gen, Shards: powerOfTwo(n/perShard, maxShards)}, LogSeq: max(old.LogSeq, logLast)}
	passes := 1
	if n+old.Entries+logged > perPass {
		passes = maxPasses
	}
	// A pass writes whole shards: none may straddle two.
	next.Shards = max(next.Shards, passes)
	committed := false
	defer func() {
		if !committed { // a snapshot nobody will read
			_ = x.purge(context.WithoutCancel(ctx), indexSubject(board, "snap."+gen+".>"), 0)
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
	st.snapshot = next.snapshot
	x.tidy(ctx, board, run, old, next)
	if adopted {
		x.dropLegacy(ctx, board)
	}
	return st, nil
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
func (x boardIndex) spill(ctx context.Context, board, prefix string, lister boardLister, st *indexState) (int, error) {
	b := batch{x: x}
	n := 0
	for job, err := range lister.Jobs(ctx, board, hrflow.ListOptions{Concurrency: listConcurrency}) {
		if err != nil {
			return n, fmt.Errorf("list board %s: %w", board, err)
		}
		e := boardEntry{Ref: job.Reference, Key: job.Key, State: boardLive, UpdatedAt: job.UpdatedAt}
		if job.ArchivedAt != "" {
			e.State = boardArchived
			st.Archived++
		} else {
			st.Live++
		}
		if err := b.add(ctx, prefix+"."+hexDigit(hashID(e.id())), e); err != nil {
			return n, fmt.Errorf("store the listing of board %s: %w", board, err)
		}
		n++
	}
	if err := b.flush(ctx); err != nil {
		return n, fmt.Errorf("store the listing of board %s: %w", board, err)
	}
	return n, nil
}

// listConcurrency is the listing's pages fetched at once (the shared rate
// limit bounds them against the real API).
const listConcurrency = 8

// journal returns how many entries the board's journal holds, and the
// stream's last sequence: every one of them is at or below it.
func (x boardIndex) journal(ctx context.Context, board string) (n int, last uint64, err error) {
	var si *jetstream.StreamInfo
	err = withRetry(ctx, func(ctx context.Context) error {
		si, err = x.l.index.Info(ctx, jetstream.WithSubjectFilter(indexSubject(board, "log.>")))
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
func (x boardIndex) merge(ctx context.Context, board string, old, next indexHead, listed string, passes, p int) (int, error) {
	width := bits.TrailingZeros(uint(passes)) // 0 or 4 bits
	digit := "*"                              // the hexadecimal digit of the subjects
	if width > 0 {
		digit = hexDigit(uint64(p) << 60)
	}
	in := func(h uint64) bool { return width == 0 || h>>(64-width) == uint64(p) }
	snaps, logs := indexSubject(board, "snap."), indexSubject(board, "log.")
	filters := []string{logs + digit, listed + "." + digit}
	if old.Gen != "" {
		if old.Shards < passes {
			filters = append(filters, snaps+old.Gen+".>") // shards wider than a pass
		} else {
			filters = append(filters, snaps+old.Gen+"."+digit+".*")
		}
	}
	type merging struct {
		e      boardEntry
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
	err := readStream(ctx, x.l.index, filters, false, func(msg jetstream.Msg) error {
		subject := msg.Subject()
		if strings.HasPrefix(subject, snaps) {
			var shard []boardEntry
			if err := json.Unmarshal(msg.Data(), &shard); err != nil {
				return fmt.Errorf("board index shard %s: %w", subject, err)
			}
			for _, e := range shard {
				if id := e.id(); in(hashID(id)) {
					entry(id).e = e
				}
			}
			return nil
		}
		var e boardEntry
		if err := json.Unmarshal(msg.Data(), &e); err != nil {
			return fmt.Errorf("board index %s: %w", subject, err)
		}
		c := entry(e.id())
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
	shards := map[uint64][]boardEntry{}
	for id, c := range m {
		if c.listed {
			s := next.shardOf(hashID(id))
			shards[s] = append(shards[s], c.e)
		}
	}
	b := batch{x: x}
	n := 0
	for _, es := range shards {
		if err := b.add(ctx, next.shardSubject(board, hashID(es[0].id())), es); err != nil {
			return 0, fmt.Errorf("write the board index of %s: %w", board, err)
		}
		n += len(es)
	}
	if err := b.flush(ctx); err != nil {
		return 0, fmt.Errorf("write the board index of %s: %w", board, err)
	}
	return n, nil
}

// errIndexRebuilt reports a refresh that lost the race to make its
// snapshot the board's: another process built one meanwhile.
var errIndexRebuilt = errors.New("the board index was rebuilt meanwhile by another process")

// commit makes next the board's snapshot, if the head is still at oldSeq.
func (x boardIndex) commit(ctx context.Context, board string, next indexHead, oldSeq uint64) error {
	data, err := json.Marshal(next)
	if err != nil {
		return err
	}
	subject := indexSubject(board, "head")
	err = withRetry(ctx, func(ctx context.Context) error {
		_, err := x.l.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data}, jetstream.WithExpectLastSequencePerSubject(oldSeq))
		return err
	})
	if err == nil {
		return nil
	}
	if isConflict(err) {
		// Ours, from an attempt whose answer was lost? Or someone else's.
		if h, _, herr := x.head(ctx, board); herr == nil && h.Gen == next.Gen {
			return nil
		}
		return fmt.Errorf("board %s: %w", board, errIndexRebuilt)
	}
	return fmt.Errorf("write the board index head of %s: %w", board, err)
}

// tidy removes, once next is the board's snapshot, what next holds or
// replaces: the snapshot before, the journal merged, the heads before, and
// the sync marks of runs other than run (over: the board is run's). It is
// best effort: a journal left is merged again, harmlessly, by the next.
func (x boardIndex) tidy(ctx context.Context, board, run string, old, next indexHead) {
	if old.Gen != "" {
		_ = x.purge(ctx, indexSubject(board, "snap."+old.Gen+".>"), 0)
	}
	_ = x.purge(ctx, indexSubject(board, "log.>"), next.LogSeq+1)
	_ = withRetry(ctx, func(ctx context.Context) error {
		return x.l.index.Purge(ctx, jetstream.WithPurgeSubject(indexSubject(board, "head")), jetstream.WithPurgeKeep(1))
	})
	marks := indexSubject(board, "marks.")
	si, err := x.l.index.Info(ctx, jetstream.WithSubjectFilter(marks+"*"))
	if err != nil {
		return
	}
	for subject := range si.State.Subjects {
		if strings.TrimPrefix(subject, marks) != run {
			_ = x.purge(ctx, subject, 0)
		}
	}
}
