package pipeline

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math/bits"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fastjson"

	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// The board index is what pulljobs knows of each job of a board, in the
// index stream, kept across runs:
//
//   - where the run's listing saw it (live or archived; its key and
//     updated_at), refreshed once per run, before the pushers start;
//   - what pulljobs last wrote to it: a hash of the job as formatted after
//     logics, and the updated_at the board answered to that write.
//
// With it a pusher decides each job without a read: absent, create; live
// and unchanged since pulljobs wrote it (same hash, and the listing's
// updated_at is still the one the board answered to that write), no call;
// live and changed, replace (with update_content); archived, replace and
// unarchive. Sync reads it instead of listing the board again. A job
// edited on the board by someone else has a newer updated_at, so it counts
// as changed, and update_content restores it. Should the listing fail, the
// pushers read each job before writing it (hrflow.Client.Upsert), and sync
// tries the listing again.
//
// The index costs the NATS server next to nothing per job, so that a
// board of a million jobs fits an embedded server: it is not a key per job
// (the server keeps about 150 bytes of memory for each subject), but a few
// kinds of messages on few subjects, under pulljobs.index.<board>:
//
//   - snap.<gen>.<h>.<shard>: a snapshot, the board as of one run's
//     listing, in shards of a few entries each, written once by the
//     refresh of that run (generation gen) and read, a shard at a time, by
//     the pushers (one direct get a shard, kept in a shardCache);
//   - log.<h>: the journal, an entry a write, appended by the
//     pushers; the next refresh merges it into the next snapshot;
//   - listed.<gen>.<h>: the listing of the refresh that builds gen,
//     spilled to the stream so that the merge can read it again;
//   - marks.<run>: what sync did to each job it archived, so that a sync
//     taken over after a crash counts the archives made and checks the
//     board before archiving a job twice;
//   - head: the snapshot in use, and how far the journal was merged.
//
// h is the top hexadecimal digit of a job's hash (hashID): the refresh of
// a large board merges it one digit at a time (passes), so that its memory
// is bounded.

// Board states as the listing saw them. A job the listing did not show is
// not in the snapshot: absent.
const (
	boardLive     = "live"
	boardArchived = "archived"
)

// boardEntry is one job of a board in the index. It is a wire format kept
// across runs.
type boardEntry struct {
	// Ref is the job's reference (the offer id); Key its key on the board.
	Ref string `json:"ref,omitempty"`
	Key string `json:"key,omitempty"`
	// State is where the job stands: live or archived.
	State string `json:"state"`
	// UpdatedAt is the job's updated_at as the board last told it (listing
	// or write answer).
	UpdatedAt string `json:"updated_at,omitempty"`
	// Hash identifies the content pulljobs last wrote (see jobHash);
	// WroteAt is the updated_at the board answered to that write.
	Hash    string `json:"hash,omitempty"`
	WroteAt string `json:"wrote_at,omitempty"`
	// Run is the run that wrote the entry to the journal or the marks, and
	// Action what it did: created, updated or unarchived (journal);
	// archiving, while sync's call is in flight, then archived (marks).
	// Snapshots leave them out.
	Run    string `json:"run,omitempty"`
	Action string `json:"action,omitempty"`
}

// Actions of sync's marks.
const (
	actionArchiving = "archiving"
	actionArchived  = "archived"
)

// unchanged reports whether the board holds what pulljobs last wrote, and
// that was a job whose hash is hash.
func (e boardEntry) unchanged(hash string) bool {
	return e.State == boardLive && e.Hash == hash && e.WroteAt != "" && e.WroteAt == e.UpdatedAt
}

// id names the job of e in a board: its reference, or its key for a job
// without one (made on the board by hand).
func (e boardEntry) id() string { return entryID(e.Ref, e.Key) }

func entryID(ref, key string) string {
	if ref == "" {
		return "\x00" + key
	}
	return ref
}

// hashID spreads ids over 64 bits (FNV-1a: the same in every process).
func hashID(id string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * prime
	}
	return h
}

// hexDigit is the top hexadecimal digit of h.
func hexDigit(h uint64) string { return strconv.FormatUint(h>>60, 16) }

// jobHash identifies a job's content: a SHA-256 of its JSON as the
// formatter published it, which is canonical (hrflow.AppendJSON sorts
// object keys and writes numbers one way), so the same job hashes the same
// in any process and run.
func jobHash(job []byte) string {
	sum := sha256.Sum256(job)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// snapshot names a snapshot of a board: its generation, and in how many
// shards its entries are spread (a power of two). A zero snapshot holds
// no job.
type snapshot struct {
	Gen    string `json:"gen,omitempty"`
	Shards int    `json:"shards,omitempty"`
}

// shardOf returns the shard of the job whose id hashes to h.
func (s snapshot) shardOf(h uint64) uint64 {
	return h >> (64 - bits.TrailingZeros(uint(s.Shards))) // a shift of 64 is 0
}

// shardSubject returns the subject of the shard that holds h.
func (s snapshot) shardSubject(board string, h uint64) string {
	shard := s.shardOf(h)
	first := shard << (64 - bits.TrailingZeros(uint(s.Shards)))
	return indexSubject(board, "snap."+s.Gen+"."+hexDigit(first)+"."+strconv.FormatUint(shard, 10))
}

// indexHead is the last message of <board>.head: the snapshot in use, and
// the journal's last message merged into it.
type indexHead struct {
	snapshot
	// Entries counts the snapshot's entries.
	Entries int `json:"entries,omitempty"`
	// LogSeq is the stream sequence of the last journal entry the snapshot
	// holds: the next refresh merges those after it.
	LogSeq uint64 `json:"log_seq,omitempty"`
}

// indexState is a run's index as stored in <run>.index: who builds it,
// and whether it is ready.
type indexState struct {
	// Owner names the process building it; Heartbeat is its last sign of
	// life (UTC). A stale heartbeat lets another process build it again.
	Owner     string    `json:"owner"`
	Heartbeat time.Time `json:"heartbeat"`
	// Status is building, ready or failed (the listing failed: pushers read
	// each job before writing it).
	Status string `json:"status"`
	// Error says why the listing failed.
	Error string `json:"error,omitempty"`
	// snapshot is the one the run reads: built by its listing when ready,
	// the one before when the listing failed.
	snapshot
	// Live and Archived count the board's jobs the listing saw.
	Live     int `json:"live,omitempty"`
	Archived int `json:"archived,omitempty"`
	// ListedAt is when the listing ended (UTC).
	ListedAt time.Time `json:"listed_at,omitzero"`
}

// Statuses of a run's index.
const (
	indexBuilding = "building"
	indexReady    = "ready"
	indexFailed   = "failed"
)

// done reports whether the pushers may go on: the index is ready, or could
// not be built.
func (s indexState) done() bool { return s.Status == indexReady || s.Status == indexFailed }

// boardLister is what the index needs of HrFlow.
type boardLister interface {
	Jobs(ctx context.Context, boardKey string, opts hrflow.ListOptions) iter.Seq2[hrflow.JobRef, error]
}

// boardIndex reads and writes the board index.
type boardIndex struct {
	l *ledger
	// shards, when not nil, keeps the shards lookup read.
	shards *shardCache
	// shardEntries and passEntries replace, when not 0, the constants of
	// the same names: tests make them small, to build many shards and
	// passes from a small board.
	shardEntries, passEntries int
}

func indexSubject(board, rest string) string { return IndexSubjectPrefix + board + "." + rest }

// lookup returns the entry of the job with that reference in snapshot s
// of board; ok is false when the snapshot holds none. It costs one direct
// get of a shard of a few entries.
func (x boardIndex) lookup(ctx context.Context, board string, s snapshot, ref string) (e boardEntry, ok bool, err error) {
	if s.Gen == "" || ref == "" {
		return e, false, nil
	}
	subject := s.shardSubject(board, hashID(ref))
	shard, cached := x.shards.get(subject)
	if !cached {
		m, err := x.last(ctx, subject)
		if err != nil {
			return e, false, err
		}
		if m != nil {
			shard = m.Data
		}
		x.shards.put(subject, shard)
	}
	if shard == nil {
		return e, false, nil
	}
	e, ok, err = findInShard(shard, ref)
	if err != nil {
		return e, false, fmt.Errorf("board index shard %s: %w", subject, err)
	}
	return e, ok, nil
}

// shardCache keeps the snapshot shards a process looked jobs up in. A
// snapshot never changes once built, and its shards' subjects name its
// generation, so a shard read once answers every later lookup in it: a
// board of a few thousand jobs costs a direct get a shard, not one a job
// (a twenty-fifth of a sandbox run's CPU). It holds at most shardCacheSize
// shards, about a megabyte, and forgets one at random to take another. A
// nil cache keeps nothing.
type shardCache struct {
	mu     sync.Mutex
	shards map[string][]byte // subject → shard; nil: the shard has no message
}

// shardCacheSize bounds a shardCache: 256 shards of about shardEntries
// entries each.
const shardCacheSize = 256

func (c *shardCache) get(subject string) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	shard, ok := c.shards[subject]
	return shard, ok
}

func (c *shardCache) put(subject string, shard []byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shards == nil {
		c.shards = make(map[string][]byte, shardCacheSize)
	}
	if len(c.shards) >= shardCacheSize {
		for k := range c.shards { // map order: a random victim
			delete(c.shards, k)
			break
		}
	}
	c.shards[subject] = shard
}

// shardParsers parse the shards pushers look jobs up in.
var shardParsers fastjson.ParserPool

// findInShard returns the entry of the job with that reference in shard, a
// JSON array of entries. It decodes that entry only: a lookup wants one of
// the shard's few, and decoding them all was a twentieth of a run's CPU.
func findInShard(shard []byte, ref string) (e boardEntry, ok bool, err error) {
	p := shardParsers.Get()
	defer shardParsers.Put(p)
	v, err := p.ParseBytes(shard)
	if err != nil {
		return e, false, err
	}
	entries, err := v.Array()
	if err != nil {
		return e, false, err
	}
	for _, entry := range entries {
		if string(entry.GetStringBytes("ref")) == ref {
			err := json.Unmarshal(entry.MarshalTo(nil), &e)
			return e, err == nil, err
		}
	}
	return e, false, nil
}

// log appends to the journal what pulljobs wrote to a job: the next
// refresh merges it into the snapshot.
func (x boardIndex) log(ctx context.Context, board string, e boardEntry) error {
	if err := x.publish(ctx, indexSubject(board, "log."+hexDigit(hashID(e.id()))), e); err != nil {
		return fmt.Errorf("write the board index: %w", err)
	}
	return nil
}

// mark records what sync did to the job of e, as run.
func (x boardIndex) mark(ctx context.Context, spec RunSpec, e boardEntry, action string) error {
	e.Run, e.Action = spec.ID, action
	if err := x.publish(ctx, indexSubject(spec.BoardKey, "marks."+spec.ID), e); err != nil {
		return fmt.Errorf("write the board index: %w", err)
	}
	return nil
}

// marks returns what sync did, as run, to each job it touched: the last
// mark of each (entry id → action).
func (x boardIndex) marks(ctx context.Context, board, run string) (map[string]string, error) {
	done := map[string]string{}
	err := readStream(ctx, x.l.index, []string{indexSubject(board, "marks."+run)}, false, func(m jetstream.Msg) error {
		var e boardEntry
		if err := json.Unmarshal(m.Data(), &e); err != nil {
			return fmt.Errorf("board index mark: %w", err)
		}
		done[e.id()] = e.Action
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the sync marks of run %s: %w", run, err)
	}
	return done, nil
}

func (x boardIndex) publish(ctx context.Context, subject string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return x.publishRaw(ctx, subject, b)
}

// publishRaw publishes data on subject, through fail-overs.
func (x boardIndex) publishRaw(ctx context.Context, subject string, data []byte) error {
	return withRetry(ctx, func(ctx context.Context) error { _, err := x.l.js.Publish(ctx, subject, data); return err })
}

// entries calls fn with every entry of snapshot s of board, in no
// particular order, until fn returns false or an error. It reads the
// snapshot a shard at a time, so a board of a million jobs costs no
// memory. A snapshot does not change once built.
func (x boardIndex) entries(ctx context.Context, board string, s snapshot, fn func(boardEntry) (bool, error)) error {
	if s.Gen == "" {
		return nil
	}
	stop := errors.New("stop")
	err := readStream(ctx, x.l.index, []string{indexSubject(board, "snap."+s.Gen+".>")}, false, func(m jetstream.Msg) error {
		var shard []boardEntry
		if err := json.Unmarshal(m.Data(), &shard); err != nil {
			return fmt.Errorf("board index shard %s: %w", m.Subject(), err)
		}
		for _, e := range shard {
			if more, err := fn(e); err != nil || !more {
				return cmp.Or(err, stop)
			}
		}
		return nil
	})
	if errors.Is(err, stop) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the board index of %s: %w", board, err)
	}
	return nil
}

// head returns the board's head, and its stream sequence (0 when the board
// has none yet).
func (x boardIndex) head(ctx context.Context, board string) (h indexHead, seq uint64, err error) {
	m, err := x.last(ctx, indexSubject(board, "head"))
	if err != nil || m == nil {
		return h, 0, err
	}
	if err := json.Unmarshal(m.Data, &h); err != nil {
		return h, 0, fmt.Errorf("board index head of %s: %w", board, err)
	}
	return h, m.Sequence, nil
}

// last returns the last message of the index stream on subject, nil when
// there is none.
func (x boardIndex) last(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	var m *jetstream.RawStreamMsg
	err := withRetry(ctx, func(ctx context.Context) error {
		var err error
		m, err = x.l.index.GetLastMsgForSubject(ctx, subject)
		return err
	})
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read the board index %s: %w", subject, err)
	}
	return m, nil
}

// purge removes the messages of the index stream on filter (below seq,
// when seq is not 0).
func (x boardIndex) purge(ctx context.Context, filter string, seq uint64) error {
	opts := []jetstream.StreamPurgeOpt{jetstream.WithPurgeSubject(filter)}
	if seq > 0 {
		opts = append(opts, jetstream.WithPurgeSequence(seq))
	}
	return withRetry(ctx, func(ctx context.Context) error { return x.l.index.Purge(ctx, opts...) })
}

// batch publishes many messages to the index stream asynchronously, and
// checks every acknowledgement at flush; a publish that failed is made
// again, synchronously, through fail-overs.
type batch struct {
	x       boardIndex
	pending []pendingIndexPub
}

type pendingIndexPub struct {
	subject string
	data    []byte
	ack     jetstream.PubAckFuture
}

// batchWindow bounds the publishes of a batch waiting for their
// acknowledgement.
const batchWindow = 1024

func (b *batch) add(ctx context.Context, subject string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ack, err := b.x.l.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: data})
	if err != nil {
		return b.x.publishRaw(ctx, subject, data)
	}
	b.pending = append(b.pending, pendingIndexPub{subject, data, ack})
	if len(b.pending) >= batchWindow {
		return b.flush(ctx)
	}
	return nil
}

// flush returns once every publish added is stored.
func (b *batch) flush(ctx context.Context) error {
	defer func() { b.pending = b.pending[:0] }()
	for _, p := range b.pending {
		select {
		case <-p.ack.Ok():
		case <-p.ack.Err():
			if err := b.x.publishRaw(ctx, p.subject, p.data); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
