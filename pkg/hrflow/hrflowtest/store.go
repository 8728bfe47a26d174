package hrflowtest

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
)

// TimeLayout is how the emulator writes the dates it sets
// ("2023-06-20T15:50:32+0000"), as the API does.
const TimeLayout = "2006-01-02T15:04:05-0700"

// keyBytes is the size of a generated key: 40 hex digits.
const keyBytes = 20

// jobField is a field of the stored Job object, in the order the emulator
// writes them.
type jobField struct {
	name string
	kind byte // the JSON kind the field takes besides null: '"' string, '[' list, '{' object
}

// contentFields are the fields of a job that the client supplies; a field
// not supplied is null after a create and [] after an edit.
var contentFields = []jobField{
	{"name", '"'},
	{"url", '"'},
	{"summary", '"'},
	{"location", '{'},
	{"sections", '['},
	{"culture", '"'},
	{"benefits", '"'},
	{"responsibilities", '"'},
	{"requirements", '"'},
	{"interviews", '"'},
	{"skills", '['},
	{"languages", '['},
	{"certifications", '['},
	{"courses", '['},
	{"tasks", '['},
	{"tags", '['},
	{"metadatas", '['},
	{"ranges_float", '['},
	{"ranges_date", '['},
}

// entry is a stored job: its encoded JSON, compressed, and a small index.
// The compressed bytes never change once stored (an edit stores new ones),
// so a reader may use them after releasing the board's lock.
type entry struct {
	seq       uint64 // creation order, emulator-wide: breaks ties in listings
	key       string
	reference string // "" when the job has none
	created   time.Time
	updated   time.Time
	// createdRaw and updatedRaw are the raw JSON values of created_at and
	// updated_at, for listings.
	createdRaw, updatedRaw string
	// doc is the job's JSON object without "archived_at" and without its
	// closing brace (`{"key":…,"updated_at":…`), compressed with s2.
	doc        []byte
	archivedAt string // "" when live
}

// appendJob writes the whole job JSON object.
func (e *entry) appendJob(b []byte, archivedAt string) []byte {
	n, err := s2.DecodedLen(e.doc)
	if err != nil {
		panic(fmt.Sprintf("hrflowtest: stored job %s: %v", e.key, err))
	}
	b = slices.Grow(b, n+64)
	if _, err := s2.Decode(b[len(b):len(b)+n], e.doc); err != nil {
		panic(fmt.Sprintf("hrflowtest: stored job %s: %v", e.key, err))
	}
	b = b[:len(b)+n]
	b = append(b, `,"archived_at":`...)
	b = appendNullableString(b, archivedAt)
	return append(b, '}')
}

// appendRef writes the job as a listing without return_job shows it.
func (e *entry) appendRef(b []byte, boardKey, archivedAt string) []byte {
	b = append(b, `{"key":"`...)
	b = append(b, e.key...)
	b = append(b, `","board_key":"`...)
	b = append(b, boardKey...)
	b = append(b, `","reference":`...)
	b = appendNullableString(b, e.reference)
	b = append(b, `,"created_at":`...)
	b = append(b, e.createdRaw...)
	b = append(b, `,"updated_at":`...)
	b = append(b, e.updatedRaw...)
	b = append(b, `,"archived_at":`...)
	b = appendNullableString(b, archivedAt)
	return append(b, '}')
}

func appendNullableString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

// appendString writes s as a JSON string.
func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// board is one board's jobs, indexed by reference and by key, and kept
// sorted by (created_at, creation order) in three listings: every job, the
// live ones, the archived ones. Inserting costs a binary search and a copy
// of the tail of the listing; a page costs its own length.
type board struct {
	key string

	mu       sync.RWMutex
	byRef    map[string]*entry
	byKey    map[string]*entry
	all      []*entry
	live     []*entry
	archived []*entry
}

func newBoard(key string) *board {
	return &board{key: key, byRef: make(map[string]*entry), byKey: make(map[string]*entry)}
}

func compareEntries(a, b *entry) int {
	if c := a.created.Compare(b.created); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

func insertSorted(l []*entry, e *entry) []*entry {
	i, _ := slices.BinarySearchFunc(l, e, compareEntries)
	return slices.Insert(l, i, e)
}

func removeSorted(l []*entry, e *entry) []*entry {
	i, ok := slices.BinarySearchFunc(l, e, compareEntries)
	if !ok || l[i] != e {
		// not found by its order: look for it (never expected)
		if i = slices.Index(l, e); i < 0 {
			return l
		}
	}
	l = slices.Delete(l, i, i+1)
	return l
}

// insert adds e, whose reference and key are free; the caller holds mu.
func (b *board) insert(e *entry) {
	if e.reference != "" {
		b.byRef[e.reference] = e
	}
	b.byKey[e.key] = e
	b.all = insertSorted(b.all, e)
	if e.archivedAt == "" {
		b.live = insertSorted(b.live, e)
	} else {
		b.archived = insertSorted(b.archived, e)
	}
}

// remove takes e out of every index; the caller holds mu.
func (b *board) remove(e *entry) {
	if e.reference != "" && b.byRef[e.reference] == e {
		delete(b.byRef, e.reference)
	}
	delete(b.byKey, e.key)
	b.all = removeSorted(b.all, e)
	if e.archivedAt == "" {
		b.live = removeSorted(b.live, e)
	} else {
		b.archived = removeSorted(b.archived, e)
	}
}

// setArchived archives (at != "") or unarchives e; the caller holds mu.
func (b *board) setArchived(e *entry, at string) {
	switch {
	case at != "" && e.archivedAt == "":
		b.live = removeSorted(b.live, e)
		e.archivedAt = at
		b.archived = insertSorted(b.archived, e)
	case at == "" && e.archivedAt != "":
		b.archived = removeSorted(b.archived, e)
		e.archivedAt = ""
		b.live = insertSorted(b.live, e)
	}
}

// find returns the job with that key (preferred) or reference; the caller
// holds mu.
func (b *board) find(key, reference string) *entry {
	if key != "" {
		return b.byKey[key]
	}
	if reference != "" {
		return b.byRef[reference]
	}
	return nil
}

// newKey returns a random 40 lowercase hex key.
func newKey() string {
	var k [keyBytes]byte
	rand.Read(k[:])
	return hex.EncodeToString(k[:])
}

// invalidField is a 400 about one field of a job.
type invalidField struct{ field, problem string }

func (e *invalidField) Error() string { return fmt.Sprintf("%s: %s", e.field, e.problem) }

// jobInput is a job as a request supplies it: its top-level fields, raw.
type jobInput map[string]json.RawMessage

// scratch holds the buffers of buildEntry.
var scratch = sync.Pool{New: func() any { return new(buffers) }}

type buffers struct{ doc, packed []byte }

// maxPooled bounds the buffers kept for the next job: a huge job's are
// dropped.
const maxPooled = 1 << 20

// buildEntry encodes a stored job from the fields supplied, raw and compact
// (readObject). missing is the value of a content field not supplied
// ("null" on create, "[]" on edit); prevCreated, when not "", is the raw
// created_at kept by an edit that does not supply one.
func buildEntry(in jobInput, key, boardKey, now string, missing string, prevCreated string) (*entry, error) {
	e := &entry{key: key}
	ref, err := stringField(in, "reference")
	if err != nil {
		return nil, err
	}
	e.reference = ref
	if v, ok := in["name"]; !ok || isNull(v) {
		return nil, &invalidField{"name", "Missing data for required field."}
	}
	bufs := scratch.Get().(*buffers)
	defer func() {
		if cap(bufs.doc) <= maxPooled {
			scratch.Put(bufs)
		}
	}()
	b := bufs.doc[:0]
	b = append(b, `{"key":"`...)
	b = append(b, key...)
	b = append(b, `","board_key":`...)
	b = appendString(b, boardKey)
	b = append(b, `,"reference":`...)
	b = appendNullableString(b, ref)
	for _, f := range contentFields {
		b = append(b, ',', '"')
		b = append(b, f.name...)
		b = append(b, '"', ':')
		v, ok := in[f.name]
		if !ok {
			b = append(b, missing...)
			continue
		}
		// [] is accepted everywhere: the API itself answers [] for the
		// fields an edit did not supply, and a client may send a job back.
		if !isNull(v) && firstByte(v) != f.kind && string(v) != "[]" {
			return nil, &invalidField{f.name, kindProblem(f.kind)}
		}
		if f.name == "location" && firstByte(v) == '{' {
			if v, err = withoutGeopoint(v); err != nil {
				return nil, &invalidField{f.name, kindProblem('{')}
			}
		}
		b = append(b, v...)
	}
	for _, d := range []struct {
		name string
		raw  *string
		t    *time.Time
	}{{"created_at", &e.createdRaw, &e.created}, {"updated_at", &e.updatedRaw, &e.updated}} {
		v, ok := in[d.name]
		switch {
		case ok && !isNull(v):
			if firstByte(v) != '"' {
				return nil, &invalidField{d.name, kindProblem('"')}
			}
			*d.raw = string(v)
		case d.name == "created_at" && prevCreated != "":
			*d.raw = prevCreated
		default:
			*d.raw = string(appendString(nil, now))
		}
		s, err := unquote([]byte(*d.raw))
		if err != nil {
			return nil, &invalidField{d.name, "Not a valid string."}
		}
		*d.t = parseTime(s)
		b = append(b, ',', '"')
		b = append(b, d.name...)
		b = append(b, '"', ':')
		b = append(b, *d.raw...)
	}
	bufs.doc = b
	bufs.packed = s2.Encode(bufs.packed[:cap(bufs.packed)], b)
	e.doc = slices.Clone(bufs.packed)
	return e, nil
}

// withoutGeopoint drops "geopoint" from a location: the API ignores it.
func withoutGeopoint(loc json.RawMessage) (json.RawMessage, error) {
	if !bytes.Contains(loc, []byte(`"geopoint"`)) {
		return loc, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(loc, &fields); err != nil {
		return nil, err
	}
	delete(fields, "geopoint")
	return json.Marshal(fields)
}

func stringField(in jobInput, name string) (string, error) {
	v, ok := in[name]
	if !ok || isNull(v) {
		return "", nil
	}
	s, err := unquote(v)
	if err != nil {
		return "", &invalidField{name, "Not a valid string."}
	}
	return s, nil
}

func kindProblem(kind byte) string {
	switch kind {
	case '[':
		return "Not a valid list."
	case '{':
		return "Not a valid mapping type."
	}
	return "Not a valid string."
}

func isNull(v json.RawMessage) bool { return firstByte(v) == 'n' }

func firstByte(v json.RawMessage) byte {
	for _, c := range v {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

// timeLayouts are the date formats the emulator understands when it sorts
// jobs; a date it cannot read sorts first.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999-0700", TimeLayout, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05", "2006-01-02"}

func parseTime(s string) time.Time {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
