package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// The board index is what pulljobs knows of each job of a board, in the
// boards bucket (one key a job, kept across runs):
//
//   - where the run's listing saw it (live, archived, absent; its key and
//     updated_at), refreshed once per run, before the pushers start;
//   - what pulljobs last wrote to it: a hash of the job as formatted after
//     logics, the updated_at the board answered, the run and the action.
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

// Board states as the listing saw them.
const (
	boardLive     = "live"
	boardArchived = "archived"
	boardAbsent   = "absent"
)

// boardEntry is one job of a board in the index. It is a wire format kept
// across runs.
type boardEntry struct {
	// Ref is the job's reference (the offer id); Key its key on the board.
	Ref string `json:"ref,omitempty"`
	Key string `json:"key,omitempty"`
	// State is where the job stands: live, archived or absent, as the last
	// listing saw it and pulljobs' writes since changed it.
	State string `json:"state"`
	// UpdatedAt is the job's updated_at as the board last told it (listing
	// or write answer).
	UpdatedAt string `json:"updated_at,omitempty"`
	// Hash identifies the content pulljobs last wrote (see jobHash);
	// WroteAt is the updated_at the board answered to that write.
	Hash    string `json:"hash,omitempty"`
	WroteAt string `json:"wrote_at,omitempty"`
	// Run is the run that last wrote the job (or archived it), and Action
	// what it did: created, updated, unarchived or archived; "archiving"
	// while sync's call is in flight, so that a sync taken over after a
	// crash knows the call may have been made.
	Run    string `json:"run,omitempty"`
	Action string `json:"action,omitempty"`
}

// In-flight actions of a boardEntry.
const (
	actionArchiving = "archiving"
	actionArchived  = "archived"
)

// unchanged reports whether the board holds what pulljobs last wrote, and
// that was a job whose hash is hash.
func (e boardEntry) unchanged(hash string) bool {
	return e.State == boardLive && e.Hash == hash && e.WroteAt != "" && e.WroteAt == e.UpdatedAt
}

// boardKey returns the index key of a job: by reference, or by key for a
// job without one (made on the board by hand).
func entryKey(board, ref, key string) string {
	if ref == "" {
		return board + ".k." + key
	}
	return board + ".r." + token(ref)
}

// jobHash identifies a job's content: a SHA-256 of its JSON as the
// formatter published it, which is canonical (hrflow.AppendJSON sorts
// object keys and writes numbers one way), so the same job hashes the same
// in any process and run.
func jobHash(job []byte) string {
	sum := sha256.Sum256(job)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
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
}

// lookup returns the index entry of the job with that reference; ok is
// false when the index holds none.
func (x boardIndex) lookup(ctx context.Context, board, ref string) (e boardEntry, ok bool, err error) {
	if _, err := getJSON(ctx, x.l.boards, entryKey(board, ref, ""), &e); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return e, false, nil
		}
		return e, false, fmt.Errorf("read the board index of %q: %w", ref, err)
	}
	return e, true, nil
}

// put stores e.
func (x boardIndex) put(ctx context.Context, board string, e boardEntry) error {
	if err := putJSON(ctx, x.l.boards, entryKey(board, e.Ref, e.Key), e); err != nil {
		return fmt.Errorf("write the board index: %w", err)
	}
	return nil
}

// markArchived records in the index that run archived the job of e.
func (x boardIndex) markArchived(ctx context.Context, spec RunSpec, e boardEntry) error {
	e.State, e.Run, e.Action = boardArchived, spec.ID, actionArchived
	return x.put(ctx, spec.BoardKey, e)
}

// entries calls fn with every entry of board, in no particular order,
// until fn returns false or an error. It pulls them from the server a few
// hundred at a time (a watcher would take them as fast as the server sends
// them, tens of megabytes for a nationwide board), so a board of a million
// jobs costs no memory. It sees the index as it stood when called: an
// entry written meanwhile, by fn or anyone, is not handed to fn a second
// time (an entry rewritten before fn saw it may be missed, which leaves its
// job as it is).
func (x boardIndex) entries(ctx context.Context, board string, fn func(boardEntry) (bool, error)) error {
	subject := "$KV." + BoardsBucket + "." + board + ".>"
	// The consumer hands out the last entry of each key in stream order, then
	// whatever is written after it started: stop at the first of those.
	si, err := x.l.boardsStream.Info(ctx)
	if err != nil {
		return fmt.Errorf("read the board index of %s: %w", board, err)
	}
	last := si.State.LastSeq
	cons, err := x.l.boardsStream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return fmt.Errorf("read the board index of %s: %w", board, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read the board index of %s: %w", board, err)
	}
	if info.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(entriesBatch))
	if err != nil {
		return fmt.Errorf("read the board index of %s: %w", board, err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("read the board index of %s: %w", board, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		if meta.Sequence.Stream > last {
			return nil
		}
		if op := m.Headers().Get("KV-Operation"); op == "" {
			var e boardEntry
			if err := json.Unmarshal(m.Data(), &e); err != nil {
				return fmt.Errorf("board index entry %s: %w", m.Subject(), err)
			}
			if more, err := fn(e); err != nil || !more {
				return err
			}
		}
		if meta.NumPending == 0 {
			return nil
		}
	}
}

// entriesBatch is how many index entries entries pulls at once.
const entriesBatch = 256

// indexConcurrency bounds the index reads and writes in flight while the
// listing is read in; listConcurrency, the listing's pages fetched at once
// (the shared rate limit bounds them against the real API).
const (
	indexConcurrency = 32
	listConcurrency  = 8
)

// refresh lists the board once and brings its index in line with what the
// listing says: each listed job's state, key and updated_at, and "absent"
// for jobs of the index the listing did not show (deleted by hand). It
// keeps what pulljobs wrote. It writes only entries that changed: on a
// board nobody touched, a refresh costs the listing and a read per job.
// Memory: about 8 bytes per listed job, while it runs.
func (x boardIndex) refresh(ctx context.Context, board string, lister boardLister) (st indexState, err error) {
	var listed listedSet
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, indexConcurrency)
	for job, lerr := range lister.Jobs(ctx, board, hrflow.ListOptions{Concurrency: listConcurrency}) {
		if lerr != nil {
			err = fmt.Errorf("list board %s: %w", board, lerr)
			break
		}
		listed.add(job.Reference, job.Key)
		if job.ArchivedAt == "" {
			st.Live++
		} else {
			st.Archived++
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := x.reconcile(ctx, board, job); err != nil {
				mu.Lock()
				firstErr = cmpOr(firstErr, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err = cmpOr(err, firstErr); err != nil {
		return st, err
	}
	err = x.entries(ctx, board, func(e boardEntry) (bool, error) {
		if e.State == boardAbsent {
			return true, nil
		}
		if listed.has(e.Ref, e.Key) {
			return true, nil
		}
		e.State = boardAbsent
		return true, x.put(ctx, board, e)
	})
	st.ListedAt = time.Now().UTC()
	return st, err
}

// listedSet holds the jobs a listing showed: by reference, and by key for
// the rare job without one.
type listedSet struct {
	refs francetravail.IDSet
	keys map[string]struct{}
}

func (s *listedSet) add(ref, key string) {
	if ref != "" {
		s.refs.Add(ref)
		return
	}
	if s.keys == nil {
		s.keys = map[string]struct{}{}
	}
	s.keys[key] = struct{}{}
}

func (s *listedSet) has(ref, key string) bool {
	if ref != "" {
		return s.refs.Has(ref)
	}
	_, ok := s.keys[key]
	return ok
}

// reconcile makes the index entry of a listed job say what the listing saw.
func (x boardIndex) reconcile(ctx context.Context, board string, job hrflow.JobRef) error {
	var e boardEntry
	found := true
	if job.Reference != "" {
		var err error
		if e, found, err = x.lookup(ctx, board, job.Reference); err != nil {
			return err
		}
	} else {
		found = false
	}
	state := boardLive
	if job.ArchivedAt != "" {
		state = boardArchived
	}
	if found && e.State == state && e.Key == job.Key && e.UpdatedAt == job.UpdatedAt {
		return nil
	}
	e.Ref, e.Key, e.State, e.UpdatedAt = job.Reference, job.Key, state, job.UpdatedAt
	return x.put(ctx, board, e)
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
