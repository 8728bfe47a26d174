package hrflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
)

// UpsertOptions are the target parameters that steer Upsert.
type UpsertOptions struct {
	// UpdateContent replaces a job already on the board (update_content);
	// off, such a job is left as it is (skipped).
	UpdateContent bool
	// EnrichWithParsing enriches a job being created with the entities that
	// text parsing finds in it (enrich_with_parsing); never an update.
	EnrichWithParsing bool
	// DryRun only reads: Upsert reports what it would do, and writes
	// nothing (no POST, PUT or PATCH, no parsing either).
	DryRun bool
	// MayHaveCreated says that an earlier attempt of the caller may have
	// created the job although its answer was lost (a crash between the
	// create and its record): a live job found on the board then counts as
	// created, as when Upsert's own create retried without an answer.
	MayHaveCreated bool
}

// Action is what Upsert did, or would do, to the board.
type Action string

// Actions of Upsert; their names are the run report's counters.
const (
	ActionCreated    Action = "created"
	ActionUpdated    Action = "updated"
	ActionUnarchived Action = "unarchived"
	ActionSkipped    Action = "skipped"
	// ActionUnchanged: on the board, its content unchanged since pulljobs
	// last wrote it: no call was made (see the pipeline's board index).
	ActionUnchanged Action = "unchanged"
)

// UpsertResult is the outcome of Upsert.
type UpsertResult struct {
	// Action is what was done (or, with Planned, would be done).
	Action Action
	// Key is the job's key on the board; "" for a planned creation.
	Key string
	// UpdatedAt is the job's updated_at as the board answered the last
	// write ("" when nothing was written or the answer did not say).
	UpdatedAt string
	// ParsingFailed reports a created job whose enrichment failed: it was
	// created without it. ParsingError says why.
	ParsingFailed bool
	ParsingError  string
	// Planned reports a dry run: nothing was written.
	Planned bool
}

// maxUpsertRounds bounds the re-reads after creates refused because the
// reference appeared meanwhile.
const maxUpsertRounds = 3

// ErrNoReference: Upsert needs the job's reference to find it.
var ErrNoReference = errors.New("hrflow: job without a reference")

// Upsert writes job to the board, as a run does for each job (run semantics,
// "Upsert, per job"):
//
//  1. GET by reference. Not found: create it (POST), enriched first when
//     opts.EnrichWithParsing; a parsing failure still creates the job,
//     without enrichment, and sets ParsingFailed.
//  2. Found and not archived: with opts.UpdateContent, replace it whole (PUT,
//     keeping its key): updated; without, leave it: skipped.
//  3. Found and archived: replace it (the API keeps it archived), then
//     unarchive it: unarchived. The spec says "unarchive, then replace";
//     the result is the same, and this order converges when a call fails
//     between the two (the job stays archived, so the next Upsert does both
//     again, where a live job with stale content would be skipped).
//  4. A create refused because the reference now exists (another writer won
//     the race): read it again and go on at 2. When an earlier attempt of
//     the same POST got no answer (a time-out, a reset, a 5xx), the job found
//     is most likely the one that attempt created: it counts as created
//     (replaced again with UpdateContent, left as it is without).
//
// Calls for the same board and reference are serialised within the client.
// Retryable failures are retried inside each call; a permanent one (a 4xx)
// is returned as an error carrying the API's message (*APIError), and the
// job counts as a write failure. A job without a reference gives
// ErrNoReference. With opts.DryRun only GETs are sent and the result, marked
// Planned, tells the action that would be taken. job is not modified.
func (c *Client) Upsert(ctx context.Context, boardKey string, job Job, opts UpsertOptions) (UpsertResult, error) {
	ref := job.Reference()
	if ref == "" {
		return UpsertResult{}, ErrNoReference
	}
	unlock, err := c.refs.lock(ctx, boardKey+"\x00"+ref)
	if err != nil {
		return UpsertResult{}, fmt.Errorf("hrflow: upsert job %q: %w", ref, err)
	}
	defer unlock()

	var enriched Job // the job to create, enriched once across rounds
	var parsingErr error
	lostCreate := opts.MayHaveCreated // a create refused after an attempt whose answer was lost
	for round := 0; round < maxUpsertRounds; round++ {
		found, err := c.head(ctx, boardKey, ref)
		if errors.Is(err, ErrNotFound) {
			if opts.DryRun {
				return UpsertResult{Action: ActionCreated, Planned: true}, nil
			}
			if enriched == nil {
				enriched, parsingErr = c.enrich(ctx, job, opts.EnrichWithParsing)
			}
			w, err := c.post(ctx, boardKey, enriched)
			if errors.Is(err, ErrReferenceExists) {
				// 4: someone created it meanwhile; when an earlier attempt
				// of this POST got no answer, most likely ourselves.
				lostCreate = lostCreate || w.Retried
				continue
			}
			if err != nil {
				return UpsertResult{}, err
			}
			res := UpsertResult{Action: ActionCreated, Key: w.Key, UpdatedAt: w.UpdatedAt}
			if parsingErr != nil {
				res.ParsingFailed, res.ParsingError = true, parsingErr.Error()
			}
			return res, nil
		}
		if err != nil {
			return UpsertResult{}, err
		}
		if lostCreate && found.ArchivedAt == "" {
			if enriched == nil {
				enriched = job // the caller's create (opts.MayHaveCreated), not ours
			}
			return c.createdUnanswered(ctx, boardKey, enriched, found, opts, parsingErr)
		}
		return c.update(ctx, boardKey, job, found, opts)
	}
	return UpsertResult{}, fmt.Errorf("hrflow: upsert job %q: created elsewhere but not found, %d times", ref, maxUpsertRounds)
}

// update handles a job found on the board: steps 2 and 3 of Upsert.
func (c *Client) update(ctx context.Context, boardKey string, job Job, found jobHead, opts UpsertOptions) (UpsertResult, error) {
	key := string(found.Key)
	res := UpsertResult{Key: key, Planned: opts.DryRun}
	switch {
	case found.ArchivedAt != "":
		res.Action = ActionUnarchived
	case opts.UpdateContent:
		res.Action = ActionUpdated
	default:
		res.Action = ActionSkipped
		return res, nil
	}
	if opts.DryRun {
		return res, nil
	}
	w, err := c.replace(ctx, boardKey, key, job) // a full replace, keeping the key
	if err != nil {
		return UpsertResult{}, err
	}
	res.UpdatedAt = w.UpdatedAt
	// Unarchive after the replace: should it fail, the job is still
	// archived, and the next Upsert of the job does both again. The other
	// order would leave a live job with stale content, which an Upsert
	// without UpdateContent then skips.
	if res.Action == ActionUnarchived {
		if err := c.SetArchivedKey(ctx, boardKey, key, false); err != nil {
			return UpsertResult{}, err
		}
	}
	return res, nil
}

// createdUnanswered ends an Upsert whose POST created the job (most
// likely) but lost its answer, the retry being refused because the
// reference exists: the job counts as created. With UpdateContent, the
// created job is written again, so that the board holds it even if another
// writer created the reference first; without, the job is left as an
// update would leave it.
func (c *Client) createdUnanswered(ctx context.Context, boardKey string, created Job, found jobHead, opts UpsertOptions, parsingErr error) (UpsertResult, error) {
	key := string(found.Key)
	res := UpsertResult{Action: ActionCreated, Key: key}
	if opts.UpdateContent {
		w, err := c.replace(ctx, boardKey, key, created)
		if err != nil {
			return UpsertResult{}, err
		}
		res.UpdatedAt = w.UpdatedAt
	}
	if parsingErr != nil {
		res.ParsingFailed, res.ParsingError = true, parsingErr.Error()
	}
	return res, nil
}

// PutOptions steer Put.
type PutOptions struct {
	// Key names the job to replace; "" creates the job.
	Key string
	// Enrich enriches a job being created with the entities text parsing
	// finds in it (enrich_with_parsing). A parsing failure still creates
	// the job, without enrichment, and sets Written.ParsingError.
	Enrich bool
	// Unarchive unarchives the replaced job after the replace (an archived
	// job stays archived through a replace).
	Unarchive bool
}

// Written is what the board answered to Put.
type Written struct {
	// Key is the job's key; UpdatedAt its updated_at as the board answered
	// the create or replace ("" when the answer did not say).
	Key, UpdatedAt string
	// Retried reports a create sent more than once: an earlier attempt may
	// have created the job although its answer was lost.
	Retried bool
	// ParsingError says why enrichment failed, when it did.
	ParsingError string
}

// Put writes a job to the board as the caller decided, without reading it
// first: a create (one POST, after a text parsing with opts.Enrich), or a
// full replace of the job opts.Key names (one PUT, then one PATCH with
// opts.Unarchive). It is for a caller that knows the board already (the
// pipeline's board index); Upsert reads first.
//
// job is the job's JSON object, as AppendJSON writes it, with reference
// ref and without "key" or "board_key" (Put sets them): it is sent as it
// is, not decoded, unless enrichment needs it. A create refused because the
// reference exists gives an error matching ErrReferenceExists: the caller
// may fall back on Upsert. Calls for the same board and reference are
// serialised within the client, as Upsert's are.
func (c *Client) Put(ctx context.Context, boardKey, ref string, job []byte, opts PutOptions) (Written, error) {
	if ref == "" {
		return Written{}, ErrNoReference
	}
	if len(job) < 2 || job[0] != '{' {
		return Written{}, fmt.Errorf("hrflow: put job %q: not a JSON object", ref)
	}
	unlock, err := c.refs.lock(ctx, boardKey+"\x00"+ref)
	if err != nil {
		return Written{}, fmt.Errorf("hrflow: put job %q: %w", ref, err)
	}
	defer unlock()
	if opts.Key != "" {
		w, err := c.writeRaw(ctx, http.MethodPut, boardKey, opts.Key, ref, job)
		if err == nil && opts.Unarchive {
			err = c.SetArchivedKey(ctx, boardKey, opts.Key, false)
		}
		return w, err
	}
	var parsingErr error
	if opts.Enrich {
		var decoded Job
		if err := json.Unmarshal(job, &decoded); err != nil {
			return Written{}, fmt.Errorf("hrflow: put job %q: %w", ref, err)
		}
		enriched, perr := c.enrich(ctx, decoded, true)
		if perr != nil && ctx.Err() != nil {
			return Written{}, perr
		}
		parsingErr = perr
		if job, err = AppendJSON(nil, enriched); err != nil {
			return Written{}, fmt.Errorf("hrflow: put job %q: %w", ref, err)
		}
	}
	w, err := c.writeRaw(ctx, http.MethodPost, boardKey, "", ref, job)
	if parsingErr != nil {
		w.ParsingError = parsingErr.Error()
	}
	return w, err
}

// writeRaw sends job, a JSON object, with board_key (and key, for a PUT)
// spliced in front of its fields: a create (POST, key "") or a replace.
func (c *Client) writeRaw(ctx context.Context, method, boardKey, key, ref string, job []byte) (Written, error) {
	pb := getBuf()
	defer putBuf(pb)
	pb.Grow(len(job) + len(boardKey) + len(key) + splicedFieldsSize)
	body := append(pb.AvailableBuffer(), `{"board_key":`...)
	body = appendString(body, boardKey)
	if key != "" {
		body = append(body, `,"key":`...)
		body = appendString(body, key)
	}
	if rest := bytes.TrimSpace(job[1:]); len(rest) > 0 && rest[0] != '}' {
		body = append(body, ',')
	}
	body = append(body, job[1:]...)
	it, _, attempts, err := send[*listItem](ctx, c, method, pathJob, nil, body)
	if err == nil && it == nil {
		err = errors.New("decode job: answer without data")
	}
	w := Written{Retried: attempts > 1, Key: key}
	if err != nil {
		verb := "create"
		if key != "" {
			verb = "edit"
		}
		return w, fmt.Errorf("hrflow: %s job %q: %w", verb, ref, err)
	}
	r := it.ref()
	if r.Key != "" {
		w.Key = r.Key
	}
	if w.Key == "" {
		return w, fmt.Errorf("hrflow: create job %q: decode job: answer without a key", ref)
	}
	w.UpdatedAt = r.UpdatedAt
	return w, nil
}

// splicedFieldsSize is room for what writeRaw adds around the two keys:
// the field names, quotes and separators, and a few escapes.
const splicedFieldsSize = 64

// post creates job (POST): the new key and updated_at, from the answer.
func (c *Client) post(ctx context.Context, boardKey string, job Job) (Written, error) {
	ref, retried, err := c.createRef(ctx, boardKey, job)
	return Written{Key: ref.Key, UpdatedAt: ref.UpdatedAt, Retried: retried}, err
}

// replace replaces the job with that key by job, whole (PUT).
func (c *Client) replace(ctx context.Context, boardKey, key string, job Job) (Written, error) {
	keyed := make(Job, len(job)+1)
	maps.Copy(keyed, job)
	keyed["key"] = key
	ref, err := c.ReplaceRef(ctx, boardKey, keyed)
	if err != nil {
		return Written{}, err
	}
	return Written{Key: key, UpdatedAt: ref.UpdatedAt}, nil
}

// enrich returns the job to create: job itself, or job enriched with the
// parsing of its EnrichmentText when on. A parsing failure returns job
// unchanged and the failure.
func (c *Client) enrich(ctx context.Context, job Job, on bool) (Job, error) {
	if !on {
		return job, nil
	}
	text := EnrichmentText(job)
	if text == "" {
		return job, nil
	}
	parsed, err := c.ParseTexts(ctx, []string{text})
	if err != nil {
		if ctx.Err() != nil {
			return job, err
		}
		c.log.Warn("hrflow: parsing failed, creating the job without enrichment", "reference", job.Reference(), "error", c.redact(err.Error()))
		return job, err
	}
	return ApplyParsing(job, parsed[0]), nil
}

// keyedMutex is a set of locks by name, each alive while someone holds or
// waits for it.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	ch    chan struct{} // holds a token while locked
	users int           // holders and waiters
}

// lock takes the lock named k, or returns ctx's error if ctx ends first.
// The returned func releases it.
func (m *keyedMutex) lock(ctx context.Context, k string) (func(), error) {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = make(map[string]*keyedLock)
	}
	l := m.locks[k]
	if l == nil {
		l = &keyedLock{ch: make(chan struct{}, 1)}
		m.locks[k] = l
	}
	l.users++
	m.mu.Unlock()

	release := func() {
		m.mu.Lock()
		l.users--
		if l.users == 0 {
			delete(m.locks, k)
		}
		m.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
