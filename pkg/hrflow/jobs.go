package hrflow

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"sync"
)

// API paths, relative to the base URL.
const (
	pathJob     = "/job/indexing"
	pathArchive = "/job/indexing/archive"
	pathList    = "/storing/jobs"
	pathParsing = "/text/parsing"
)

// Page sizes of Jobs. The API's largest is not documented: HrFlow's own
// code asks for 30. A client asks for DefaultListLimit (or
// Config.ListLimit), and falls back to FallbackListLimit for good when the
// API refuses that (400) or serves fewer jobs a page.
const (
	DefaultListLimit  = 100
	FallbackListLimit = 30
)

// GetJob returns the job with that reference on the board, archived or not
// (an archived job carries "archived_at"). A job that is not there gives an
// error matching ErrNotFound.
func (c *Client) GetJob(ctx context.Context, boardKey, reference string) (Job, error) {
	if reference == "" {
		return nil, errors.New("hrflow: get job: empty reference")
	}
	job, err := c.getJob(ctx, url.Values{"board_key": {boardKey}, "reference": {reference}})
	if err != nil {
		return nil, fmt.Errorf("hrflow: get job %q: %w", reference, err)
	}
	return job, nil
}

// GetJobByKey is GetJob for a job known by its key.
func (c *Client) GetJobByKey(ctx context.Context, boardKey, key string) (Job, error) {
	if key == "" {
		return nil, errors.New("hrflow: get job: empty key")
	}
	job, err := c.getJob(ctx, url.Values{"board_key": {boardKey}, "key": {key}})
	if err != nil {
		return nil, fmt.Errorf("hrflow: get job key %s: %w", key, err)
	}
	return job, nil
}

func (c *Client) getJob(ctx context.Context, q url.Values) (Job, error) {
	job, _, err := call[Job](ctx, c, http.MethodGet, pathJob, q, nil)
	if err != nil {
		return nil, err
	}
	return checkJob(job)
}

// checkJob refuses a success without a job.
func checkJob(job Job) (Job, error) {
	if job == nil {
		return nil, errors.New("decode job: answer without data")
	}
	return job, nil
}

// jobHead is what Upsert reads of a job: decoding it costs no map.
type jobHead struct {
	Key        flexString `json:"key"`
	ArchivedAt flexString `json:"archived_at"`
}

// head is GetJob reading only the key and archived_at.
func (c *Client) head(ctx context.Context, boardKey, reference string) (jobHead, error) {
	h, _, err := call[*jobHead](ctx, c, http.MethodGet, pathJob, url.Values{"board_key": {boardKey}, "reference": {reference}}, nil)
	if err == nil && h == nil {
		err = errors.New("decode job: answer without data")
	}
	if err != nil {
		return jobHead{}, fmt.Errorf("hrflow: get job %q: %w", reference, err)
	}
	return *h, nil
}

// CreateJob stores job on the board and returns the stored job, with its
// key. It sends the SDK's flat body (board_key beside the job's fields) and
// never sends a key: one set in job is left out. A reference already on the
// board gives an error matching ErrReferenceExists. job is not modified.
func (c *Client) CreateJob(ctx context.Context, boardKey string, job Job) (Job, error) {
	created, _, err := call[Job](ctx, c, http.MethodPost, pathJob, nil, createBody(job, boardKey))
	if err == nil {
		created, err = checkJob(created)
	}
	if err != nil {
		return nil, fmt.Errorf("hrflow: create job %q: %w", job.Reference(), err)
	}
	return created, nil
}

// createBody is the body of a create: the job and its board, without key.
func createBody(job Job, boardKey string) map[string]any {
	body := withBoard(job, boardKey)
	delete(body, "key")
	return body
}

// CreateRef is CreateJob reading from the answer only what a listing shows
// of the stored job (JobRef: key, reference, created_at, updated_at,
// archived_at), without decoding the job into a map: for a caller that
// keeps its own index of the board, and compares the updated_at of a later
// listing with the one its own write got. A field the answer lacks is ""
// (UNVERIFIED: whether the API's answer carries the dates; the emulator's
// does); an answer without a key is an error.
func (c *Client) CreateRef(ctx context.Context, boardKey string, job Job) (JobRef, error) {
	ref, _, err := c.createRef(ctx, boardKey, job)
	return ref, err
}

// createRef is CreateRef also reporting whether the POST was tried more
// than once (an earlier attempt may have created the job although its
// answer was lost).
func (c *Client) createRef(ctx context.Context, boardKey string, job Job) (ref JobRef, retried bool, err error) {
	it, _, attempts, err := callN[*listItem](ctx, c, http.MethodPost, pathJob, nil, createBody(job, boardKey))
	if err == nil && (it == nil || it.Key == "") {
		err = errors.New("decode job: answer without a key")
	}
	if err != nil {
		return JobRef{}, attempts > 1, fmt.Errorf("hrflow: create job %q: %w", job.Reference(), err)
	}
	return it.ref(), attempts > 1, nil
}

// EditJob replaces the job on the board with job, whole: fields job does
// not carry are emptied. job names the job to replace by its key (preferred)
// or, without a key, its reference. Editing an archived job leaves it
// archived. It returns the stored job; job is not modified.
func (c *Client) EditJob(ctx context.Context, boardKey string, job Job) (Job, error) {
	body, id, err := editBody(job, boardKey)
	if err != nil {
		return nil, err
	}
	edited, _, err := call[Job](ctx, c, http.MethodPut, pathJob, nil, body)
	if err == nil {
		edited, err = checkJob(edited)
	}
	if err != nil {
		return nil, fmt.Errorf("hrflow: edit job %q: %w", id, err)
	}
	return edited, nil
}

// ReplaceRef is EditJob reading from the answer only what a listing shows
// of the stored job, as CreateRef does. An answer without a key gives the
// key job names the job by, if any.
func (c *Client) ReplaceRef(ctx context.Context, boardKey string, job Job) (JobRef, error) {
	body, id, err := editBody(job, boardKey)
	if err != nil {
		return JobRef{}, err
	}
	it, _, err := call[*listItem](ctx, c, http.MethodPut, pathJob, nil, body)
	if err == nil && it == nil {
		err = errors.New("decode job: answer without data")
	}
	if err != nil {
		return JobRef{}, fmt.Errorf("hrflow: edit job %q: %w", id, err)
	}
	ref := it.ref()
	if ref.Key == "" {
		ref.Key = job.Key()
	}
	return ref, nil
}

// editBody is the body of an edit, and what names the job in errors: its
// key, or its reference when it has no key.
func editBody(job Job, boardKey string) (map[string]any, string, error) {
	id := job.Key()
	if id == "" {
		id = job.Reference()
	}
	if id == "" {
		return nil, "", errors.New("hrflow: edit job: the job has neither key nor reference")
	}
	body := withBoard(job, boardKey)
	if job.Key() == "" {
		delete(body, "key") // a null key would not name the job
	}
	return body, id, nil
}

// withBoard returns a shallow copy of job with board_key set.
func withBoard(job Job, boardKey string) map[string]any {
	body := make(map[string]any, len(job)+1)
	for k, v := range job {
		body[k] = v
	}
	body["board_key"] = boardKey
	return body
}

// SetArchived archives (true) or unarchives (false) the job with that
// reference. Archiving an archived job, or unarchiving a live one, succeeds
// and changes nothing. A job that is not there gives ErrNotFound.
func (c *Client) SetArchived(ctx context.Context, boardKey, reference string, archived bool) error {
	if reference == "" {
		return errors.New("hrflow: archive job: empty reference")
	}
	if err := c.setArchived(ctx, boardKey, "reference", reference, archived); err != nil {
		return fmt.Errorf("hrflow: %s job %q: %w", archiveVerb(archived), reference, err)
	}
	return nil
}

// SetArchivedKey is SetArchived for a job known by its key, such as a job
// without a reference found by Jobs.
func (c *Client) SetArchivedKey(ctx context.Context, boardKey, key string, archived bool) error {
	if key == "" {
		return errors.New("hrflow: archive job: empty key")
	}
	if err := c.setArchived(ctx, boardKey, "key", key, archived); err != nil {
		return fmt.Errorf("hrflow: %s job key %s: %w", archiveVerb(archived), key, err)
	}
	return nil
}

func archiveVerb(archived bool) string {
	if archived {
		return "archive"
	}
	return "unarchive"
}

func (c *Client) setArchived(ctx context.Context, boardKey, idField, id string, archived bool) error {
	flag := 0
	if archived {
		flag = 1
	}
	body := map[string]any{"board_key": boardKey, idField: id, "is_archive": flag}
	_, _, err := call[json.RawMessage](ctx, c, http.MethodPatch, pathArchive, nil, body)
	return err
}

// JobRef is a job as Jobs lists it, and as CreateRef and ReplaceRef read it
// from the answer to a write.
type JobRef struct {
	// Key is the job's key; Reference its reference ("" when it has none).
	Key, Reference string
	// CreatedAt and UpdatedAt are the job's dates as the API writes them.
	CreatedAt, UpdatedAt string
	// ArchivedAt is when the job was archived, "" when it is not.
	ArchivedAt string
}

// ListOptions tunes Jobs. The zero value lists every job, archived ones
// included, at the client's page size.
type ListOptions struct {
	// Limit is the page size to ask for; 0 means the client's:
	// Config.ListLimit, or less once the API refused it.
	Limit int
	// ExcludeArchived leaves archived jobs out (the "archived=false" filter,
	// which the real API may not know: UNVERIFIED).
	ExcludeArchived bool
	// Concurrency is how many pages are fetched at once once their number is
	// known; 0 means DefaultListConcurrency. The client's limiter applies to
	// each call.
	Concurrency int
}

// DefaultListConcurrency is the pages Jobs fetches at once by default: a
// board of 20 000 jobs is 667 pages of 30, so one at a time is slow.
const DefaultListConcurrency = 4

// listMeta is the "meta" of a listing page.
type listMeta struct {
	Page    int `json:"page"`
	MaxPage int `json:"maxPage"`
	Count   int `json:"count"`
	Total   int `json:"total"`
}

// listItem is a listed job, or the part of a written job a JobRef holds;
// dates and reference may be null.
type listItem struct {
	Key        flexString `json:"key"`
	Reference  flexString `json:"reference"`
	CreatedAt  flexString `json:"created_at"`
	UpdatedAt  flexString `json:"updated_at"`
	ArchivedAt flexString `json:"archived_at"`
}

func (it *listItem) ref() JobRef {
	return JobRef{Key: string(it.Key), Reference: string(it.Reference), CreatedAt: string(it.CreatedAt),
		UpdatedAt: string(it.UpdatedAt), ArchivedAt: string(it.ArchivedAt)}
}

// flexString reads a JSON string, or null as "", or any other value as its
// JSON text.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = ""
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		*s = flexString(b)
		return nil
	}
	*s = flexString(v)
	return nil
}

// Jobs lists every job of the board, page after page (1-based, newest
// first by created_at), archived ones included unless opts excludes them.
// It asks for ListOptions.Limit jobs a page, and counts pages from what the
// API serves: the first page's size when it serves at least that, and
// meta.total (else meta.maxPage). When the API refuses the page size (a
// 400 that is not about the board) or serves fewer jobs than asked while
// more remain, it goes on with pages of FallbackListLimit (or of what was
// served, if fewer), and the client asks for that size from then on. It
// stops after the last page, or at the first empty page, or at the first
// error, which it yields with a zero JobRef. Each page is one call, retried
// like any other; once the first page tells how many there are, up to
// ListOptions.Concurrency pages are fetched at once, and still yielded in
// order. A job is yielded once even when a change of the board between two
// pages, or pages of two sizes, show it twice; jobs created or removed
// from the listing while it runs may be missed, so collect the list before
// archiving from it.
func (c *Client) Jobs(ctx context.Context, boardKey string, opts ListOptions) iter.Seq2[JobRef, error] {
	return func(yield func(JobRef, error) bool) {
		limit, own := opts.Limit, opts.Limit <= 0
		if own {
			limit = c.ListLimit()
		}
		concurrency := opts.Concurrency
		if concurrency <= 0 {
			concurrency = DefaultListConcurrency
		}
		boards, err := json.Marshal([]string{boardKey})
		if err != nil {
			yield(JobRef{}, fmt.Errorf("hrflow: list board %s: %w", boardKey, err))
			return
		}
		fetchOf := func(limit int) func(context.Context, int) pageResult {
			return func(ctx context.Context, page int) pageResult {
				q := url.Values{
					"board_keys": {string(boards)},
					"page":       {strconv.Itoa(page)},
					"limit":      {strconv.Itoa(limit)},
					"order_by":   {"desc"},
					"sort_by":    {"created_at"},
					"return_job": {"false"},
				}
				if opts.ExcludeArchived {
					q.Set("archived", "false")
				}
				items, meta, err := c.listPage(ctx, q)
				if err != nil {
					err = fmt.Errorf("hrflow: list board %s, page %d: %w", boardKey, page, err)
				}
				return pageResult{items, meta, err}
			}
		}
		var seen keySet
		// emit yields a page's jobs; it reports whether to go on.
		emit := func(r pageResult) bool {
			if r.err != nil {
				yield(JobRef{}, r.err)
				return false
			}
			for _, it := range r.items {
				if it.Key != "" && !seen.add(string(it.Key)) {
					continue
				}
				if !yield(it.ref(), nil) {
					return false
				}
			}
			return len(r.items) > 0
		}
		first := fetchOf(limit)(ctx, 1)
		if refusedLimit(first.err) && limit > FallbackListLimit {
			if first = fetchOf(FallbackListLimit)(ctx, 1); first.err == nil {
				c.fallBack(own, limit, FallbackListLimit, "refused")
			}
			limit = FallbackListLimit
		}
		if !emit(first) {
			return
		}
		next, per := 2, max(limit, len(first.items))
		m := first.meta
		if m != nil && len(first.items) < limit && (m.Total > len(first.items) || m.MaxPage > 1) {
			// Fewer than asked while more remain: the API serves smaller
			// pages. Go on with pages it serves whole, past those the
			// first page covered.
			per = min(FallbackListLimit, len(first.items))
			c.fallBack(own, limit, per, "served "+strconv.Itoa(len(first.items)))
			next = len(first.items)/per + 1
		}
		fetch := fetchOf(per)
		last := lastPage(m, per, len(first.items))
		if last < 0 {
			// No page count: go on one page at a time until an empty page.
			for page := next; emit(fetch(ctx, page)); page++ {
			}
			return
		}
		c.fetchAhead(ctx, next, last, concurrency, fetch, emit)
	}
}

// lastPage returns the number of pages of per jobs that a listing whose
// first page served served jobs holds, from its meta: meta.total when it
// says, else meta.maxPage (counted in pages of what was served); -1 when
// the meta does not tell.
func lastPage(m *listMeta, per, served int) int {
	switch {
	case m == nil:
		return -1
	case m.Total > 0:
		return (m.Total + per - 1) / per
	case m.MaxPage > 0:
		return (m.MaxPage*max(served, 1) + per - 1) / per
	}
	return -1
}

// refusedLimit reports an error that may be the API refusing a page size:
// a 400 (or 422) that is not about a missing board.
func refusedLimit(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusUnprocessableEntity) && ae.kind == nil
}

// ListLimit returns the page size Jobs asks for when ListOptions.Limit is
// 0: Config.ListLimit, or the smaller size a listing fell back to.
func (c *Client) ListLimit() int { return int(c.listLimit.Load()) }

// fallBack notes that a listing asked for pages of asked and goes on with
// pages of per, because the API did what why says; when the listing used
// the client's page size (own), the client asks for per from then on.
func (c *Client) fallBack(own bool, asked, per int, why string) {
	if own && c.listLimit.CompareAndSwap(int64(asked), int64(per)) {
		c.log.Info("hrflow: the listing serves smaller pages than asked; asking for less from now on",
			"asked", asked, "answer", why, "limit", per)
	}
}

// keySet is a set of job keys. A key of the usual shape, 40 hex digits,
// is kept as its 20 bytes, half what the key as a string costs.
type keySet struct {
	bin   map[[keyBytes]byte]struct{}
	other map[string]struct{} // keys of another shape
}

// keyBytes is the size of a key of the usual shape.
const keyBytes = 20

// add adds k, and reports whether it was not there yet.
func (s *keySet) add(k string) bool {
	var b [keyBytes]byte
	if len(k) == 2*keyBytes && isLowerHex(k) {
		hex.Decode(b[:], []byte(k))
		if s.bin == nil {
			s.bin = make(map[[keyBytes]byte]struct{})
		}
		n := len(s.bin)
		s.bin[b] = struct{}{}
		return len(s.bin) > n
	}
	if s.other == nil {
		s.other = make(map[string]struct{})
	}
	n := len(s.other)
	s.other[k] = struct{}{}
	return len(s.other) > n
}

// isLowerHex reports whether s holds lowercase hex digits only: the keys
// that hex.Decode maps one to one.
func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// pageResult is one fetched page of a listing.
type pageResult struct {
	items []listItem
	meta  *listMeta
	err   error
}

// fetchAhead fetches pages next to last, up to concurrency at once, and
// hands them to emit in order until it returns false. The goroutines it
// starts end before it returns.
func (c *Client) fetchAhead(ctx context.Context, next, last, concurrency int, fetch func(context.Context, int) pageResult, emit func(pageResult) bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	pending := make([]chan pageResult, 0, concurrency)
	launch := func() {
		ch := make(chan pageResult, 1)
		page := next
		next++
		wg.Go(func() { ch <- fetch(ctx, page) })
		pending = append(pending, ch)
	}
	for next <= last && len(pending) < concurrency {
		launch()
	}
	for len(pending) > 0 {
		r := <-pending[0]
		pending = pending[1:]
		if !emit(r) {
			return
		}
		if next <= last {
			launch()
		}
	}
}

func (c *Client) listPage(ctx context.Context, q url.Values) ([]listItem, *listMeta, error) {
	items, rawMeta, err := call[[]listItem](ctx, c, http.MethodGet, pathList, q, nil)
	if err != nil {
		return nil, nil, err
	}
	var meta *listMeta
	if len(rawMeta) > 0 && string(rawMeta) != "null" {
		meta = new(listMeta)
		if err := json.Unmarshal(rawMeta, meta); err != nil {
			return nil, nil, fmt.Errorf("decode page meta: %w", err)
		}
	}
	return items, meta, nil
}
