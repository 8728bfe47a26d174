// Package boardindex is what pulljobs knows of each job of each HrFlow
// board, kept in one JetStream stream across runs:
//
//   - where a run's listing saw the job (live or archived; its key and
//     updated_at), refreshed once per run, before the pushers start;
//   - what pulljobs last wrote to it: a hash of the job as formatted after
//     logics, and the updated_at the board answered to that write.
//
// With it a pusher decides each job without a read from the board (see
// Entry.Unchanged), and sync counts the board's live jobs without listing
// it again. A job edited on the board by someone else has a newer
// updated_at, so it counts as changed.
//
// Its API is narrow: Lookup one job, Log a write, Refresh from a listing,
// and range over a snapshot's Entries. It costs the NATS server next to
// nothing per job, so that a board of a million jobs fits an embedded
// server: it is not a key per job (the server keeps memory for every
// subject), but a few kinds of messages on few subjects, under
// pulljobs.index.<board>:
//
//   - snap.<gen>.<h>.<shard>: a snapshot, the board as of one run's
//     listing, in shards of a few entries each, written once by the
//     refresh that built generation gen, and read a shard at a time;
//   - log.<h>: the journal, an entry a write, which the next refresh
//     merges into the next snapshot;
//   - listed.<gen>.<h>: the listing of the refresh that builds gen,
//     spilled to the stream so that the merge can read it again;
//   - head: the snapshot in use, and how far the journal was merged.
//
// h is the top hexadecimal digit of a job's hash (hashID): the refresh of
// a large board merges it one digit at a time (passes), so that its
// memory is bounded whatever the board's size. Other subjects under a
// board's prefix are left to their writers (sync keeps its marks there).
package boardindex

import (
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
	"github.com/pulljobs/pulljobs/pkg/store"
)

// The index's stream and the prefix of its subjects (+ <board>.…).
const (
	Stream        = "PULLJOBS_INDEX"
	SubjectPrefix = "pulljobs.index."
)

// StreamConfig is the index stream's configuration, kept across runs.
// Direct gets let every replica read a shard, the leader or not.
func StreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Stream,
		Description: "pulljobs: the board index, snapshots of each board and what was written since (see pkg/boardindex)",
		Subjects:    []string{SubjectPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		AllowDirect: true,
	}
}

// Subject returns the subject rest of board's part of the index stream.
func Subject(board, rest string) string { return SubjectPrefix + board + "." + rest }

// State is where a job stands on the board as the listing saw it. A job
// the listing did not show is not in the snapshot: absent.
type State string

// Board states.
const (
	Live     State = "live"
	Archived State = "archived"
)

// Entry is one job of a board in the index. It is a wire format kept
// across runs.
type Entry struct {
	// Ref is the job's reference (the offer id); Key its key on the board.
	Ref string `json:"ref,omitempty"`
	Key string `json:"key,omitempty"`
	// State is where the job stands: live or archived.
	State State `json:"state"`
	// UpdatedAt is the job's updated_at as the board last told it (listing
	// or write answer).
	UpdatedAt string `json:"updated_at,omitempty"`
	// Hash identifies the content pulljobs last wrote (see JobHash);
	// WroteAt is the updated_at the board answered to that write.
	Hash    string `json:"hash,omitempty"`
	WroteAt string `json:"wrote_at,omitempty"`
	// Run is the run that wrote the entry, and Action what it did (created,
	// updated, unarchived in the journal; other writers use their own).
	// Snapshots leave them out.
	Run    string `json:"run,omitempty"`
	Action string `json:"action,omitempty"`
}

// Unchanged reports whether the board holds what pulljobs last wrote, and
// that was a job whose hash is hash.
func (e Entry) Unchanged(hash string) bool {
	return e.State == Live && e.Hash == hash && e.WroteAt != "" && e.WroteAt == e.UpdatedAt
}

// ID names the job of e in its board: its reference, or its key for a job
// without one (made on the board by hand).
func (e Entry) ID() string {
	if e.Ref == "" {
		return "\x00" + e.Key
	}
	return e.Ref
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

// JobHash identifies a job's content: a SHA-256 of its JSON as the
// formatter published it, which is canonical (hrflow.AppendJSON sorts
// object keys and writes numbers one way), so the same job hashes the same
// in any process and run.
func JobHash(job []byte) string {
	sum := sha256.Sum256(job)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// Snapshot names a snapshot of a board: its generation, and in how many
// shards its entries are spread (a power of two). The zero Snapshot holds
// no job. A snapshot never changes once built.
type Snapshot struct {
	Gen    string `json:"gen,omitempty"`
	Shards int    `json:"shards,omitempty"`
}

// shardOf returns the shard of the job whose id hashes to h.
func (s Snapshot) shardOf(h uint64) uint64 {
	return h >> (64 - bits.TrailingZeros(uint(s.Shards))) // a shift of 64 is 0
}

// shardSubject returns the subject of the shard that holds h.
func (s Snapshot) shardSubject(board string, h uint64) string {
	shard := s.shardOf(h)
	first := shard << (64 - bits.TrailingZeros(uint(s.Shards)))
	return Subject(board, "snap."+s.Gen+"."+hexDigit(first)+"."+strconv.FormatUint(shard, 10))
}

// Listing is what a Refresh saw of the board, and the snapshot it built
// from it.
type Listing struct {
	Snapshot
	// Live and Archived count the board's jobs the listing saw.
	Live     int `json:"live,omitempty"`
	Archived int `json:"archived,omitempty"`
	// ListedAt is when the listing ended (UTC).
	ListedAt time.Time `json:"listed_at,omitzero"`
}

// head is the last message of <board>.head: the snapshot in use, and the
// journal's last message merged into it.
type head struct {
	Snapshot
	// Entries counts the snapshot's entries.
	Entries int `json:"entries,omitempty"`
	// LogSeq is the stream sequence of the last journal entry the snapshot
	// holds: the next refresh merges those after it.
	LogSeq uint64 `json:"log_seq,omitempty"`
}

// Lister is what a Refresh needs of HrFlow; *hrflow.Client implements it.
type Lister interface {
	Jobs(ctx context.Context, boardKey string, opts hrflow.ListOptions) iter.Seq2[hrflow.JobRef, error]
}

// Index reads and writes the board index in its stream. Its methods are
// safe for concurrent use.
type Index struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	// shards, when not nil, keeps the shards Lookup read.
	shards *shardCache
	// shardEntries and passEntries replace, when not 0, the constants of
	// the same names: tests make them small, to build many shards and
	// passes from a small board.
	shardEntries, passEntries int
}

// New returns the index in stream (declared with StreamConfig), written
// through js.
func New(js jetstream.JetStream, stream jetstream.Stream) *Index {
	return &Index{js: js, stream: stream}
}

// Cached returns an index that keeps the snapshot shards its lookups read
// (at most shardCacheSize of them, about a megabyte): a pusher's, which
// looks up every job of a run in the same snapshot.
func (x *Index) Cached() *Index {
	c := *x
	c.shards = new(shardCache)
	return &c
}

// Lookup returns the entry of the job with that reference in snapshot s
// of board; ok is false when the snapshot holds none. It costs at most one
// direct get of a shard of a few entries.
func (x *Index) Lookup(ctx context.Context, board string, s Snapshot, ref string) (e Entry, ok bool, err error) {
	if s.Gen == "" || ref == "" {
		return e, false, nil
	}
	subject := s.shardSubject(board, hashID(ref))
	shard, cached := x.shards.get(subject)
	if !cached {
		m, err := store.Last(ctx, x.stream, subject)
		if err != nil {
			return e, false, fmt.Errorf("read the board index: %w", err)
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
// generation, so a shard read once answers every later lookup in it. It
// holds at most shardCacheSize shards and forgets one at random to take
// another. A nil cache keeps nothing.
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

// shardParsers parse the shards lookups read.
var shardParsers fastjson.ParserPool

// findInShard returns the entry of the job with that reference in shard, a
// JSON array of entries. It decodes that entry only: a lookup wants one of
// the shard's few.
func findInShard(shard []byte, ref string) (e Entry, ok bool, err error) {
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

// Log appends to board's journal what pulljobs wrote to a job: the next
// Refresh merges it into the snapshot. It returns once the server stored
// it.
func (x *Index) Log(ctx context.Context, board string, e Entry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := x.publish(ctx, Subject(board, "log."+hexDigit(hashID(e.ID()))), data); err != nil {
		return fmt.Errorf("write the board index: %w", err)
	}
	return nil
}

// publish publishes data on subject, through fail-overs.
func (x *Index) publish(ctx context.Context, subject string, data []byte) error {
	return store.Retry(ctx, func(ctx context.Context) error { _, err := x.js.Publish(ctx, subject, data); return err })
}

// errStop ends a read of a snapshot early, without an error.
var errStop = errors.New("stop")

// Entries calls fn with every entry of snapshot s of board, in no
// particular order, until fn returns false or an error. It reads the
// snapshot a shard at a time, so a board of a million jobs costs no
// memory.
func (x *Index) Entries(ctx context.Context, board string, s Snapshot, fn func(Entry) (bool, error)) error {
	if s.Gen == "" {
		return nil
	}
	err := store.ReadStream(ctx, x.stream, []string{Subject(board, "snap."+s.Gen+".>")}, false, func(m jetstream.Msg) error {
		var shard []Entry
		if err := json.Unmarshal(m.Data(), &shard); err != nil {
			return fmt.Errorf("board index shard %s: %w", m.Subject(), err)
		}
		for _, e := range shard {
			if more, err := fn(e); err != nil || !more {
				if err == nil {
					err = errStop
				}
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the board index of %s: %w", board, err)
	}
	return nil
}

// head returns the board's head, and its stream sequence (0 when the board
// has none yet).
func (x *Index) head(ctx context.Context, board string) (h head, seq uint64, err error) {
	m, err := store.Last(ctx, x.stream, Subject(board, "head"))
	if err != nil {
		return h, 0, fmt.Errorf("read the board index: %w", err)
	}
	if m == nil {
		return h, 0, nil
	}
	if err := json.Unmarshal(m.Data, &h); err != nil {
		return h, 0, fmt.Errorf("board index head of %s: %w", board, err)
	}
	return h, m.Sequence, nil
}

// batch publishes many messages to the index stream asynchronously, and
// checks every acknowledgement at flush; a publish that failed is made
// again, synchronously, through fail-overs.
type batch struct {
	x       *Index
	pending []pendingPub
}

type pendingPub struct {
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
	ack, err := b.x.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: data})
	if err != nil {
		return b.x.publish(ctx, subject, data)
	}
	b.pending = append(b.pending, pendingPub{subject, data, ack})
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
			if err := b.x.publish(ctx, p.subject, p.data); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
