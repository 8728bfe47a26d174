// Package hrflowtest is an emulator of the HrFlow.ai API, in the spirit of
// net/http/httptest: tests and the sandbox serve it with an httptest.Server
// or an http.Server, and point an hrflow.Client at BaseURL(server.URL).
// Production code imports it only from the sandbox.
//
// It implements the calls pulljobs makes, under APIPath ("/v1") as in
// production:
//
//	GET   /v1/job/indexing?board_key=…&reference=…|key=…   200 "Job details"
//	POST  /v1/job/indexing          flat or {"board_key","job":{…}}  201 "Job created"
//	PUT   /v1/job/indexing          flat or nested, full replace   200 "Job edited"
//	PATCH /v1/job/indexing/archive  {"board_key","reference"|"key","is_archive"}
//	                                200 "Job archived" / "Job unarchived", data {"key"}
//	GET   /v1/storing/jobs?board_keys=["…"]&page=&limit=&order_by=&sort_by=&return_job=
//	          &name=&key=&reference=&location_lat=&location_lon=&location_dist=
//	          &created_at_min=&created_at_max=&archived=
//	                                200 "List of jobs", meta {page, maxPage, count, total}
//	POST  /v1/text/parsing          {"texts":[…]} (fewer than 32)  200 "Text parsed"
//
// Every answer is a JSON object {"code","message","data","meta"} with the
// HTTP status equal to code and Content-Type exactly "application/json";
// errors carry "data": null and "meta": {}. Requests need X-API-KEY and
// X-USER-EMAIL. A job or board that does not exist answers 400 "Invalid
// parameters. Unable to find object: job" (or "board"); an unknown key 401
// "Unauthorized. Invalid secret key: <key>" (the API echoes the key; a client
// must not). Stored jobs have every field of the Job object: those not
// supplied are null after a create and [] after an edit; a supplied
// created_at is kept verbatim; keys are 40 lowercase hex digits; dates the
// emulator sets look like 2023-06-20T15:50:32+0000. Answers about a job
// (create, get, edit, listing with return_job) also carry "id", an integer
// that stays the job's, and "board" {key, name, type, subtype, environment}
// with board.key the board's key. A PUT replaces the whole job and leaves its
// archived state alone. Listings are 1-based; a page past the end answers
// 200 with []; archived jobs are listed, with archived_at; without
// return_job each job shows key, board_key, reference, created_at,
// updated_at and archived_at (null where it has none). Every parameter the
// SDK's JobStoring.list sends is honoured as a filter, and any other
// parameter, or one that does not read, is a 400 naming it: a client that
// relies on a filter the emulator ignored would pass here and fail there.
//
// updated_at (UNVERIFIED: whether the API keeps a client's value or sets its
// own is not documented): a create or an edit that sends updated_at stores
// it verbatim, as created_at is; one that does not gets the clock, and an
// edit moves it at least one second past the job's previous updated_at
// (unless that is more than a minute ahead of the clock, as a client's
// value may be), so that every edit changes it although dates have a
// one-second resolution. Archiving and unarchiving leave updated_at as it
// is: archived_at records them (UNVERIFIED too).
//
// Choices no source settles (UNVERIFIED), made here so that clients are
// tested against something definite:
//   - a missing X-API-KEY or X-USER-EMAIL answers 401 "Unauthorized. Missing
//     secret key" / "Unauthorized. Missing user email"; a user other than the
//     key's answers 401 "Unauthorized. Invalid user email: <email>";
//   - permissions come from the secret's prefix: ask_ reads and writes, askr_
//     only reads, askw_ only writes; reads are the GETs and text parsing,
//     writes the POST, PUT and PATCH on jobs; a call outside the permission
//     answers 403 "Forbidden. Insufficient permissions: <read|write> access
//     required";
//   - a create of a reference already on the board answers 400 "Invalid
//     parameters. Reference already exists: <ref>"; a create with a non-null
//     key answers 400 (the API may ignore it: the emulator proves that clients
//     never send one); fields outside the Job object are dropped; "geopoint"
//     in a location is dropped; [] is accepted for any field;
//   - invalid fields answer 400 "Invalid parameters. <field>: <problem>";
//     name is required;
//   - is_archive takes 0, 1, true, false (also as strings) and is required;
//     archiving an archived job keeps its archived_at;
//   - /storing/jobs takes limit 1 to MaxListLimit (Config.MaxPage serves
//     smaller pages, or refuses larger limits), sort_by created_at or
//     updated_at, order_by desc (default) or asc, return_job true/false in any
//     case or 1/0, and a filter of the emulator's own, archived=false (live
//     jobs only) or archived=true (archived only); maxPage is
//     ceil(total/limit), 0 for an empty board; an empty value is an absent
//     parameter;
//   - its filters: key, reference and name match exactly (the API may match
//     names loosely); created_at_min and created_at_max take a day
//     (YYYY-MM-DD, the SDK's format, in UTC) or a date and time, both bounds
//     included, a day as the upper bound including the whole day;
//     location_lat, location_lon and location_dist (km) come together and
//     select the jobs whose location's lat and lng lie within that distance
//     along a great circle;
//   - job answers show board {"name": "pulljobs emulator board", "type":
//     "api", "subtype": "api", "environment": "production"}; ids count the
//     jobs the emulator created, from 1;
//   - /text/parsing also takes {"text": "…"} (one text, as the SDK allows);
//     entities come from a fixed dictionary of French and English terms
//     (Extract), with start and end in Unicode code points (Python's
//     text[start:end]); "entities" is [] when nothing is found, never null;
//     "parsing" holds the 18 plural keys of the spec (certifications,
//     companies, …, skills_hard, skills_soft, tasks), each a list of the
//     matched texts, empty lists included. The dictionary knows only some
//     labels: names, emails, phones, dates, companies… are never found.
//
// Admin routes, outside the API paths: GET /_emulator/stats (requests by
// route, such as RouteCreateJob, and status), GET and PUT /_emulator/faults
// (package emulator). Injected 502s are HTML gateway pages; other injected
// errors are answers in the API's shape.
//
// Storage is made for a nationwide board, a million jobs, in the sandbox's
// process: each job keeps its content fields as JSON compressed with s2 and
// a dictionary the first jobs make (a synthetic job of 3.1 KB takes about
// 360 bytes), and an entry of about 90 bytes in a slab. Jobs are indexed by
// reference and by key, and sorted by created_at in counted B-trees, so that
// storing a job costs O(log n) and a page of a listing by created_at costs
// O(log n) plus its length, whatever the size of the board. The indexes hold
// slots rather than pointers, so that the collector of the emulator's
// process does not scan them: a job costs it one pointer, its data.
package hrflowtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// Sandbox defaults.
const (
	// APIPath is where the emulator serves the API, as production does.
	APIPath = "/v1"
	// DefaultAPISecret is the key a zero Config accepts, with read and
	// write permission.
	DefaultAPISecret = "ask_00000000000000000000000000000000"
	// DefaultAPIUser is the user of DefaultAPISecret.
	DefaultAPIUser = "sandbox@example.com"
	// DefaultBoardKey is the board a zero Config creates.
	DefaultBoardKey = "0000000000000000000000000000000000000000"
)

// Routes, as the request counters (Stats) name them.
const (
	RouteGetJob     = "GET /job/indexing"
	RouteCreateJob  = "POST /job/indexing"
	RouteEditJob    = "PUT /job/indexing"
	RouteArchiveJob = "PATCH /job/indexing/archive"
	RouteListJobs   = "GET /storing/jobs"
	RouteParseTexts = "POST /text/parsing"
	RouteOther      = "other" // any other path or method
)

// Limits of the emulated API.
const (
	// MaxTexts is the number of texts /text/parsing refuses: a call takes
	// fewer.
	MaxTexts = 32
	// MaxListLimit is the largest page /storing/jobs serves (UNVERIFIED: the
	// API's maximum is not documented; HrFlow's own code asks for 30).
	MaxListLimit = 100
	// DefaultListLimit is the page size when limit is absent.
	DefaultListLimit = 30
	// maxBody bounds a request body.
	maxBody = 16 << 20
)

// Config configures an Emulator. The zero value is the sandbox: one key
// (DefaultAPISecret for DefaultAPIUser), one board (DefaultBoardKey), no
// faults, the real clock.
type Config struct {
	// Keys are the API keys accepted; default DefaultAPISecret for
	// DefaultAPIUser.
	Keys []APIKey
	// Boards are the boards that exist, by key; default DefaultBoardKey.
	Boards []string
	// Faults is the fault injection in force at start; it can change while
	// the emulator runs (Faults().Set, or PUT /_emulator/faults).
	Faults emulator.Config
	// Now is the clock of created_at, updated_at and archived_at; nil means
	// time.Now.
	Now func() time.Time
	// Quota, when > 0, is the number of job creations the account may make
	// (SeedJob included); past it, a create answers 402 "Over quota"
	// (UNVERIFIED: what the API counts is not documented).
	Quota int64
	// MaxPage, when > 0, is the largest page GET /storing/jobs serves, at
	// most MaxListLimit: a larger limit gets MaxPage jobs a page, and meta
	// counts pages of MaxPage (as an API that caps its pages silently
	// would). With RefuseLargePage, a larger limit is a 400 naming it
	// instead.
	MaxPage         int
	RefuseLargePage bool
}

// APIKey is a key the emulator accepts. Its permission comes from the
// secret's prefix: ask_ (read and write), askr_ (read), askw_ (write).
type APIKey struct {
	Secret, User string
}

type permission uint8

const (
	permRead permission = 1 << iota
	permWrite
)

func permissionOf(secret string) (permission, bool) {
	switch {
	case strings.HasPrefix(secret, hrflow.SecretPrefixRead):
		return permRead, len(secret) > len(hrflow.SecretPrefixRead)
	case strings.HasPrefix(secret, hrflow.SecretPrefixWrite):
		return permWrite, len(secret) > len(hrflow.SecretPrefixWrite)
	case strings.HasPrefix(secret, hrflow.SecretPrefixReadWrite):
		return permRead | permWrite, len(secret) > len(hrflow.SecretPrefixReadWrite)
	}
	return 0, false
}

type apiKey struct {
	user string
	perm permission
}

// Emulator is an emulated HrFlow.ai API. It is an http.Handler, safe for
// concurrent use.
type Emulator struct {
	faults  *emulator.Faults
	handler http.Handler
	admin   http.Handler
	now     func() time.Time
	keys    map[string]apiKey // fixed after New
	seq     atomic.Uint32     // the last job id given
	codec   codec
	quota   int64
	creates atomic.Int64
	maxPage int  // 0: MaxListLimit
	refuse  bool // a limit above maxPage is a 400

	mu     sync.RWMutex
	boards map[string]*board
}

// New returns an emulator configured by cfg. It refuses a key without a
// permission prefix or a user, a board key that is not 40 lowercase hex
// digits, and a MaxPage outside 0 to MaxListLimit.
func New(cfg Config) (*Emulator, error) {
	e := &Emulator{now: cfg.Now, keys: make(map[string]apiKey), boards: make(map[string]*board), quota: cfg.Quota,
		maxPage: cfg.MaxPage, refuse: cfg.RefuseLargePage}
	if e.now == nil {
		e.now = time.Now
	}
	if cfg.MaxPage < 0 || cfg.MaxPage > MaxListLimit {
		return nil, fmt.Errorf("hrflowtest: max page %d: want 1 to %d, or 0 for %d", cfg.MaxPage, MaxListLimit, MaxListLimit)
	}
	keys := cfg.Keys
	if len(keys) == 0 {
		keys = []APIKey{{Secret: DefaultAPISecret, User: DefaultAPIUser}}
	}
	for i, k := range keys {
		perm, ok := permissionOf(k.Secret)
		if !ok {
			return nil, fmt.Errorf("hrflowtest: key %d: the secret must start with ask_, askr_ or askw_", i)
		}
		if k.User == "" {
			return nil, fmt.Errorf("hrflowtest: key %d: empty user", i)
		}
		e.keys[k.Secret] = apiKey{user: k.User, perm: perm}
	}
	boards := cfg.Boards
	if len(boards) == 0 {
		boards = []string{DefaultBoardKey}
	}
	for _, b := range boards {
		if !IsKey(b) {
			return nil, fmt.Errorf("hrflowtest: board key %q: want 40 lowercase hex digits", b)
		}
		e.boards[b] = newBoard(b, &e.codec)
	}
	f, err := emulator.NewFaults(cfg.Faults, errorBody)
	if err != nil {
		return nil, fmt.Errorf("hrflowtest: %w", err)
	}
	e.faults = f
	e.admin = f.AdminHandler()
	e.handler = f.Wrap(route, http.HandlerFunc(e.serve))
	return e, nil
}

// IsKey reports whether s has the shape of an HrFlow key: 40 lowercase hex
// digits.
func IsKey(s string) bool {
	if len(s) != 2*keyBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// BaseURL is the base URL of an hrflow.Client talking to an emulator served
// at serverURL (such as httptest.Server.URL): serverURL + APIPath.
func BaseURL(serverURL string) string { return strings.TrimRight(serverURL, "/") + APIPath }

// Faults returns the fault injection, to change it while the emulator runs.
func (e *Emulator) Faults() *emulator.Faults { return e.faults }

// Stats returns the request counters by route (RouteCreateJob…) and status.
func (e *Emulator) Stats() emulator.Stats { return e.faults.Stats() }

// AddBoard creates an empty board; adding one that exists changes nothing.
// It panics if key is not 40 lowercase hex digits (see IsKey): validate
// keys from users first.
func (e *Emulator) AddBoard(key string) {
	if !IsKey(key) {
		panic(fmt.Sprintf("hrflowtest: AddBoard(%q): want 40 lowercase hex digits", key))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.boards[key] == nil {
		e.boards[key] = newBoard(key, &e.codec)
	}
}

func (e *Emulator) board(key string) *board {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.boards[key]
}

// ServeHTTP serves the API under APIPath and the admin routes under
// /_emulator/.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.handler.ServeHTTP(w, r) }

// route names a request for the counters.
func route(r *http.Request) string {
	p, ok := strings.CutPrefix(r.URL.Path, APIPath)
	if !ok {
		return RouteOther
	}
	switch name := r.Method + " " + p; name {
	case RouteGetJob, RouteCreateJob, RouteEditJob, RouteArchiveJob, RouteListJobs, RouteParseTexts:
		return name
	}
	return RouteOther
}

// errorBody renders an injected error in the API's shape.
func errorBody(status int) (string, []byte) {
	return "application/json", envelopeBytes(status, http.StatusText(status), nil, nil)
}

// envelopeBytes encodes an answer; nil data is null, nil meta is {}.
func envelopeBytes(code int, message string, data, meta []byte) []byte {
	b := make([]byte, 0, len(data)+len(meta)+len(message)+64)
	b = fmt.Appendf(b, `{"code":%d,"message":`, code)
	b = appendString(b, message)
	b = append(b, `,"data":`...)
	if data == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, data...)
	}
	b = append(b, `,"meta":`...)
	if meta == nil {
		b = append(b, "{}"...)
	} else {
		b = append(b, meta...)
	}
	return append(b, '}')
}

// answer writes an answer with the HTTP status equal to its code; nil data
// is null, nil meta is {}. It writes data as is, without copying it into
// the envelope.
func answer(w http.ResponseWriter, code int, message string, data, meta []byte) {
	head := make([]byte, 0, 64+len(message))
	head = append(head, `{"code":`...)
	head = strconv.AppendInt(head, int64(code), 10)
	head = append(head, `,"message":`...)
	head = appendString(head, message)
	head = append(head, `,"data":`...)
	if data == nil {
		data = []byte("null")
	}
	if meta == nil {
		meta = []byte("{}")
	}
	const metaKey, end = `,"meta":`, "}"
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(head)+len(data)+len(metaKey)+len(meta)+len(end)))
	w.WriteHeader(code)
	w.Write(head)
	w.Write(data)
	io.WriteString(w, metaKey)
	w.Write(meta)
	io.WriteString(w, end)
}

// answerBufs recycles the buffers answers are built in.
var answerBufs = sync.Pool{New: func() any { return new([]byte) }}

// apiError is an error answer.
type apiError struct {
	code    int
	message string
}

func (e *apiError) Error() string { return e.message }

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "Invalid parameters. " + fmt.Sprintf(format, args...)}
}

var (
	errJobNotFound   = badRequest("Unable to find object: job")
	errBoardNotFound = badRequest("Unable to find object: board")
	errOverQuota     = &apiError{http.StatusPaymentRequired, "Over quota"}
)

func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		var inv *invalidField
		if errors.As(err, &inv) {
			ae = badRequest("%s: %s", inv.field, inv.problem)
		} else {
			ae = &apiError{http.StatusInternalServerError, err.Error()}
		}
	}
	answer(w, ae.code, ae.message, nil, nil)
}

// serve dispatches a request that went through fault injection.
func (e *Emulator) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, emulator.AdminPrefix) {
		e.admin.ServeHTTP(w, r)
		return
	}
	name := route(r)
	if name == RouteOther {
		if p, ok := strings.CutPrefix(r.URL.Path, APIPath); ok {
			switch p {
			case "/job/indexing", "/job/indexing/archive", "/storing/jobs", "/text/parsing":
				answer(w, http.StatusMethodNotAllowed, "Method not allowed", nil, nil)
				return
			}
		}
		answer(w, http.StatusNotFound, "Not found", nil, nil)
		return
	}
	need := permRead
	switch name {
	case RouteCreateJob, RouteEditJob, RouteArchiveJob:
		need = permWrite
	}
	if err := e.authorize(r, need); err != nil {
		writeError(w, err)
		return
	}
	var (
		code       int
		message    string
		data, meta []byte
		err        error
	)
	bp := answerBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	switch name {
	case RouteGetJob:
		code, message, data, err = e.getJob(r, buf)
	case RouteCreateJob:
		code, message, data, err = e.createJob(r, buf)
	case RouteEditJob:
		code, message, data, err = e.editJob(r, buf)
	case RouteArchiveJob:
		code, message, data, err = e.archiveJob(r)
	case RouteListJobs:
		code, message, data, meta, err = e.listJobs(r, buf)
	case RouteParseTexts:
		code, message, data, err = e.parseTexts(r)
	}
	if err != nil {
		writeError(w, err)
	} else {
		answer(w, code, message, data, meta)
	}
	if cap(data) <= maxPooled && cap(data) >= cap(buf) {
		*bp = data[:0]
	}
	answerBufs.Put(bp)
}

// authorize checks both auth headers and the key's permission.
func (e *Emulator) authorize(r *http.Request, need permission) error {
	secret := r.Header.Get("X-API-KEY")
	user := r.Header.Get("X-USER-EMAIL")
	if secret == "" {
		return &apiError{http.StatusUnauthorized, "Unauthorized. Missing secret key"}
	}
	k, ok := e.keys[secret]
	if !ok {
		return &apiError{http.StatusUnauthorized, "Unauthorized. Invalid secret key: " + secret}
	}
	if user == "" {
		return &apiError{http.StatusUnauthorized, "Unauthorized. Missing user email"}
	}
	if !strings.EqualFold(user, k.user) {
		return &apiError{http.StatusUnauthorized, "Unauthorized. Invalid user email: " + user}
	}
	if k.perm&need == 0 {
		access := "read"
		if need == permWrite {
			access = "write"
		}
		return &apiError{http.StatusForbidden, "Forbidden. Insufficient permissions: " + access + " access required"}
	}
	return nil
}

// readBody reads the JSON object of a request's body, field by field.
func readBody(r *http.Request) (map[string]json.RawMessage, error) {
	body, err := readObject(r)
	if err != nil {
		return nil, badRequest("The body must be a JSON object.")
	}
	return body, nil
}

// jobBody splits a job request's body into its board key and its job: the
// SDK's flat body, or the reference's {"board_key", "job": {…}}.
func jobBody(body map[string]json.RawMessage) (string, jobInput, error) {
	boardKey, err := stringField(body, "board_key")
	if err != nil {
		return "", nil, err
	}
	if boardKey == "" {
		return "", nil, badRequest("board_key: Missing data for required field.")
	}
	if raw, ok := body["job"]; ok && firstByte(raw) == '{' {
		job, err := splitObject(raw)
		if err != nil {
			return "", nil, badRequest("job: Not a valid mapping type.")
		}
		return boardKey, job, nil
	}
	delete(body, "board_key")
	return boardKey, body, nil
}

func (e *Emulator) getJob(r *http.Request, buf []byte) (int, string, []byte, error) {
	q := r.URL.Query()
	b := e.board(q.Get("board_key"))
	if b == nil {
		return 0, "", nil, errBoardNotFound
	}
	key, ref := q.Get("key"), q.Get("reference")
	if key == "" && ref == "" {
		return 0, "", nil, badRequest("key or reference: Missing data for required field.")
	}
	b.mu.RLock()
	ent := b.find(key, ref)
	var archived int64
	if ent != nil {
		archived = ent.archived
	}
	b.mu.RUnlock()
	if ent == nil {
		return 0, "", nil, errJobNotFound
	}
	return http.StatusOK, "Job details", ent.appendJob(buf, b, archived), nil
}

func (e *Emulator) createJob(r *http.Request, buf []byte) (int, string, []byte, error) {
	body, err := readBody(r)
	if err != nil {
		return 0, "", nil, err
	}
	boardKey, in, err := jobBody(body)
	if err != nil {
		return 0, "", nil, err
	}
	ent, b, err := e.create(boardKey, in, false)
	if err != nil {
		return 0, "", nil, err
	}
	return http.StatusCreated, "Job created", ent.appendJob(buf, b, 0), nil
}

// create stores a new job, archived when asked (SeedJob), and returns it
// with its board. created_at and updated_at not supplied are the clock's.
func (e *Emulator) create(boardKey string, in jobInput, archived bool) (*entry, *board, error) {
	b := e.board(boardKey)
	if b == nil {
		return nil, nil, errBoardNotFound
	}
	if v, ok := in["key"]; ok && !isNull(v) {
		return nil, nil, badRequest("key: Must be null on creation.")
	}
	now := e.now()
	stamp := quoteTime(now)
	ent, err := buildEntry(&e.codec, in, "null", jobDates{created: stamp, updated: stamp})
	if err != nil {
		return nil, nil, err
	}
	ent.key = newKey()
	ent.id = e.seq.Add(1)
	if archived {
		ent.archived = now.Unix()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if ref := ent.reference(); ref != "" && b.byReference(ref) != nil {
		return nil, nil, badRequest("Reference already exists: %s", ref)
	}
	if e.quota > 0 && e.creates.Add(1) > e.quota {
		e.creates.Add(-1)
		return nil, nil, errOverQuota
	}
	return b.insert(ent), b, nil
}

// quoteTime is a date the emulator sets, as a JSON string.
func quoteTime(t time.Time) string {
	b := append(make([]byte, 0, len(TimeLayout)+2), '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return string(append(b, '"'))
}

func (e *Emulator) editJob(r *http.Request, buf []byte) (int, string, []byte, error) {
	body, err := readBody(r)
	if err != nil {
		return 0, "", nil, err
	}
	boardKey, in, err := jobBody(body)
	if err != nil {
		return 0, "", nil, err
	}
	b := e.board(boardKey)
	if b == nil {
		return 0, "", nil, errBoardNotFound
	}
	key, ref, err := jobID(in)
	if err != nil {
		return 0, "", nil, err
	}
	now := e.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.find(key, ref)
	if old == nil {
		return 0, "", nil, errJobNotFound
	}
	dates := jobDates{created: old.createdRaw(), updated: quoteTime(editTime(now, old.updated))}
	ent, err := buildEntry(&e.codec, in, "[]", dates)
	if err != nil {
		return 0, "", nil, err
	}
	if r := ent.reference(); r != "" && r != old.reference() && b.byReference(r) != nil {
		return 0, "", nil, badRequest("Reference already exists: %s", r)
	}
	ent.key, ent.id, ent.archived = old.key, old.id, old.archived
	b.remove(old)
	ent = b.insert(ent)
	return http.StatusOK, "Job edited", ent.appendJob(buf, b, ent.archived), nil
}

// maxEditLead is how far ahead of the clock a job's updated_at may be for
// an edit to set it one second past it rather than to the clock.
const maxEditLead = time.Minute

// editTime is the updated_at of an edit that does not supply one: the
// clock, or one second past the job's updated_at (prev, in µs) when the
// clock has not passed it and it is at most maxEditLead ahead. Dates have a
// one-second resolution: without this, two writes within a second would
// show the same updated_at, and a client comparing updated_at to notice a
// change would miss the second. An updated_at far ahead (a client's) is
// not followed.
func editTime(now time.Time, prev int64) time.Time {
	p := time.UnixMicro(prev).Truncate(time.Second)
	if !now.Truncate(time.Second).After(p) && p.Sub(now) <= maxEditLead {
		return p.Add(time.Second)
	}
	return now
}

// jobID reads how a request names a job: its key or its reference, one of
// them at least.
func jobID(body jobInput) (key, ref string, err error) {
	if key, err = stringField(body, "key"); err != nil {
		return "", "", err
	}
	if ref, err = stringField(body, "reference"); err != nil {
		return "", "", err
	}
	if key == "" && ref == "" {
		return "", "", badRequest("key or reference: Missing data for required field.")
	}
	return key, ref, nil
}

func (e *Emulator) archiveJob(r *http.Request) (int, string, []byte, error) {
	body, err := readBody(r)
	if err != nil {
		return 0, "", nil, err
	}
	boardKey, err := stringField(body, "board_key")
	if err != nil {
		return 0, "", nil, err
	}
	b := e.board(boardKey)
	if b == nil {
		return 0, "", nil, errBoardNotFound
	}
	key, ref, err := jobID(body)
	if err != nil {
		return 0, "", nil, err
	}
	archive, err := parseArchiveFlag(body["is_archive"])
	if err != nil {
		return 0, "", nil, err
	}
	now := e.now().Unix()
	b.mu.Lock()
	defer b.mu.Unlock()
	ent := b.find(key, ref)
	if ent == nil {
		return 0, "", nil, errJobNotFound
	}
	message := "Job unarchived"
	if archive {
		message = "Job archived"
		b.setArchived(ent, now)
	} else {
		b.setArchived(ent, 0)
	}
	return http.StatusOK, message, append(appendString([]byte(`{"key":`), ent.keyString()), '}'), nil
}

// parseArchiveFlag reads is_archive: 0, 1, true or false (also as strings).
func parseArchiveFlag(raw json.RawMessage) (bool, error) {
	if raw == nil {
		return false, badRequest("is_archive: Missing data for required field.")
	}
	var v any
	json.Unmarshal(raw, &v)
	switch v := v.(type) {
	case bool:
		return v, nil
	case float64:
		switch v {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
	case string:
		switch strings.ToLower(v) {
		case "0", "false":
			return false, nil
		case "1", "true":
			return true, nil
		}
	}
	return false, badRequest("is_archive: Not a valid boolean.")
}

// SeedJob stores job on a board without going through HTTP, as the sandbox
// does for stale jobs; it is not counted in Stats. The job is validated and
// stored as a create would (a key in job is refused), archived when asked
// (archived_at = now). It returns the stored job.
func (e *Emulator) SeedJob(boardKey string, job hrflow.Job, archived bool) (hrflow.Job, error) {
	raw, err := json.Marshal(job)
	if err != nil {
		return nil, fmt.Errorf("hrflowtest: seed job: %w", err)
	}
	in, err := splitObject(raw)
	if err != nil {
		return nil, fmt.Errorf("hrflowtest: seed job: %w", err)
	}
	ent, b, err := e.create(boardKey, in, archived)
	if err != nil {
		return nil, fmt.Errorf("hrflowtest: seed job %q: %w", job.Reference(), err)
	}
	return decodeJob(ent.appendJob(nil, b, ent.archived))
}

func decodeJob(b []byte) (hrflow.Job, error) {
	var j hrflow.Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("hrflowtest: decode stored job: %w", err)
	}
	return j, nil
}

// Jobs returns a snapshot of every job of the board, archived ones
// included (with archived_at), sorted by reference then key; nil for a
// board that does not exist.
func (e *Emulator) Jobs(boardKey string) []hrflow.Job {
	b := e.board(boardKey)
	if b == nil {
		return nil
	}
	b.mu.RLock()
	items := make([]listed, 0, b.all.Len())
	b.scan(b.all, func(ent *entry) bool {
		items = append(items, listed{ent, b, ent.archived})
		return true
	})
	b.mu.RUnlock()
	slices.SortFunc(items, func(x, y listed) int {
		if c := strings.Compare(x.ent.reference(), y.ent.reference()); c != 0 {
			return c
		}
		return bytes.Compare(x.ent.key[:], y.ent.key[:])
	})
	out := make([]hrflow.Job, 0, len(items))
	for _, it := range items {
		j, err := decodeJob(it.ent.appendJob(nil, b, it.archived))
		if err != nil {
			panic(err) // the emulator stores only valid JSON
		}
		out = append(out, j)
	}
	return out
}

// seed is SeedJob without the decoding of the stored job.
func (e *Emulator) seed(boardKey string, job hrflow.Job) (*entry, error) {
	raw, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	in, err := splitObject(raw)
	if err != nil {
		return nil, err
	}
	ent, _, err := e.create(boardKey, in, false)
	return ent, err
}
