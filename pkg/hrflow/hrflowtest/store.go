package hrflowtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"time"

	"github.com/tidwall/btree"
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

// entry is a stored job. Its JSON object is rebuilt at each answer from
// the entry and its board: {"id", "key", "board_key", "board", "reference"},
// then the content fields, stored compressed, then {"created_at",
// "updated_at", "archived_at"}. An entry never changes once stored but for
// archived, which the board's lock guards (an edit stores a new entry), so
// that a reader may use the rest after releasing the lock. It is about 90
// bytes besides its data, for a board of a million jobs, and it holds one
// pointer, its data: a board keeps its entries in a slab and its indexes
// on slots, so that the collector of a process with a large board has
// next to nothing of it to scan.
type entry struct {
	// data is the reference (decoded), the raw JSON values of created_at
	// and updated_at, then the content fields compressed (codec), in one
	// string.
	data                           string
	refLen, createdLen, updatedLen uint32
	id                             uint32 // creation order, emulator-wide; the job's "id"
	slot                           uint32 // where its board's slab keeps it
	key                            [keyBytes]byte
	created, updated               int64 // the dates in µs since 1970, for sorting (year 1 when unreadable)
	archived                       int64 // archived_at in seconds since 1970; 0 when live
}

func (e *entry) reference() string  { return e.data[:e.refLen] }
func (e *entry) createdRaw() string { return e.data[e.refLen : e.refLen+e.createdLen] }
func (e *entry) updatedRaw() string {
	return e.data[e.refLen+e.createdLen : e.refLen+e.createdLen+e.updatedLen]
}
func (e *entry) packed() string { return e.data[e.refLen+e.createdLen+e.updatedLen:] }

// keyString returns the key in hex, as the API shows it.
func (e *entry) keyString() string { return hex.EncodeToString(e.key[:]) }

// appendJob writes the whole job JSON object of e, on board b, archived at
// archived (0: live).
func (e *entry) appendJob(dst []byte, b *board, archived int64) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, uint64(e.id), 10)
	dst = append(dst, `,"key":"`...)
	dst = hex.AppendEncode(dst, e.key[:])
	dst = append(dst, `","board_key":`...)
	dst = appendString(dst, b.key)
	dst = append(dst, `,"board":`...)
	dst = append(dst, b.json...)
	dst = append(dst, `,"reference":`...)
	dst = appendNullableString(dst, e.reference())
	dst = append(dst, ',')
	dst, err := b.codec.appendDecoded(dst, e.packed())
	if err != nil {
		panic(fmt.Sprintf("hrflowtest: stored job %s: %v", e.keyString(), err))
	}
	return e.appendDates(append(dst, ','), archived)
}

// appendRef writes the job as a listing without return_job shows it.
func (e *entry) appendRef(dst []byte, boardKey string, archived int64) []byte {
	dst = append(dst, `{"key":"`...)
	dst = hex.AppendEncode(dst, e.key[:])
	dst = append(dst, `","board_key":`...)
	dst = appendString(dst, boardKey)
	dst = append(dst, `,"reference":`...)
	dst = appendNullableString(dst, e.reference())
	dst = append(dst, ',')
	return e.appendDates(dst, archived)
}

// appendDates writes created_at, updated_at and archived_at, and closes the
// object.
func (e *entry) appendDates(dst []byte, archived int64) []byte {
	dst = append(dst, `"created_at":`...)
	dst = append(dst, e.createdRaw()...)
	dst = append(dst, `,"updated_at":`...)
	dst = append(dst, e.updatedRaw()...)
	dst = append(dst, `,"archived_at":`...)
	if archived == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '"')
		dst = time.Unix(archived, 0).UTC().AppendFormat(dst, TimeLayout)
		dst = append(dst, '"')
	}
	return append(dst, '}')
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
// sorted by (created_at, id) in three counted B-trees: every job, the live
// ones, the archived ones. Storing a job costs O(log n); a page of a
// listing costs O(log n) to find its first job, then its own length.
//
// The jobs live in a slab, and the indexes hold their slots: maps and
// trees without pointers, which the collector does not scan: a board made
// of pointers costs its process collections that grow with the board.
type board struct {
	key   string
	json  []byte // the "board" object of job answers
	codec *codec // the emulator's

	mu       sync.RWMutex
	slab     slab
	byRef    map[uint64]uint32 // refHash of the reference → slot
	refClash map[string]uint32 // references whose hash another reference holds in byRef
	byKey    map[[keyBytes]byte]uint32
	all      *btree.BTreeG[uint32]
	live     *btree.BTreeG[uint32]
	archived *btree.BTreeG[uint32]
}

// slabChunk is the number of entries of a chunk of a slab.
const slabChunk = 4096

// slab stores entries in chunks that never move, so that a pointer to an
// entry stays valid as the slab grows. An entry taken out of a board's
// indexes stays in the slab: a reader may still hold it (see entry).
type slab struct{ chunks [][]entry }

// add copies e into the slab, sets its slot, and returns the stored entry.
func (s *slab) add(e *entry) *entry {
	n := len(s.chunks)
	if n == 0 || len(s.chunks[n-1]) == slabChunk {
		s.chunks = append(s.chunks, make([]entry, 0, slabChunk))
		n++
	}
	c := &s.chunks[n-1]
	e.slot = uint32((n-1)*slabChunk + len(*c))
	*c = append(*c, *e)
	return &(*c)[len(*c)-1]
}

// at returns the entry in slot.
func (s *slab) at(slot uint32) *entry { return &s.chunks[slot/slabChunk][slot%slabChunk] }

// refSeed seeds refHash, the same for every board of the process.
var refSeed = maphash.MakeSeed()

func refHash(ref string) uint64 { return maphash.String(refSeed, ref) }

// Board metadata that job answers show, which nothing in the spec fixes
// but board.key (UNVERIFIED: the API's values for the other fields are not
// documented; HrFlow's SDK tests only require strings).
const (
	boardName        = "pulljobs emulator board"
	boardType        = "api"
	boardSubtype     = "api"
	boardEnvironment = "production"
)

func newBoard(key string, c *codec) *board {
	b := &board{key: key, codec: c, byRef: make(map[uint64]uint32), refClash: make(map[string]uint32),
		byKey: make(map[[keyBytes]byte]uint32)}
	obj, _ := json.Marshal(map[string]string{
		"key": key, "name": boardName, "type": boardType, "subtype": boardSubtype, "environment": boardEnvironment,
	})
	b.json = obj
	opts := btree.Options{NoLocks: true} // b.mu guards them
	less := func(x, y uint32) bool { return lessEntry(b.slab.at(x), b.slab.at(y)) }
	b.all = btree.NewBTreeGOptions(less, opts)
	b.live = btree.NewBTreeGOptions(less, opts)
	b.archived = btree.NewBTreeGOptions(less, opts)
	return b
}

// lessEntry orders jobs by created_at, then by creation.
func lessEntry(a, b *entry) bool {
	if a.created != b.created {
		return a.created < b.created
	}
	return a.id < b.id
}

// insert stores e, whose reference and key are free, and returns the
// stored entry; the caller holds mu.
func (b *board) insert(e *entry) *entry {
	e = b.slab.add(e)
	if ref := e.reference(); ref != "" {
		h := refHash(ref)
		if slot, ok := b.byRef[h]; ok && b.slab.at(slot).reference() != ref {
			b.refClash[ref] = e.slot
		} else {
			b.byRef[h] = e.slot
		}
	}
	b.byKey[e.key] = e.slot
	b.all.Set(e.slot)
	b.state(e).Set(e.slot)
	return e
}

// remove takes e out of every index; the caller holds mu.
func (b *board) remove(e *entry) {
	if ref := e.reference(); ref != "" {
		if slot, ok := b.refClash[ref]; ok && slot == e.slot {
			delete(b.refClash, ref)
		} else if h := refHash(ref); b.byRef[h] == e.slot {
			delete(b.byRef, h)
		}
	}
	delete(b.byKey, e.key)
	b.all.Delete(e.slot)
	b.state(e).Delete(e.slot)
}

// state is the listing of e's archived state; the caller holds mu.
func (b *board) state(e *entry) *btree.BTreeG[uint32] {
	if e.archived == 0 {
		return b.live
	}
	return b.archived
}

// setArchived archives (at != 0) or unarchives (at == 0) e; the caller
// holds mu. Archiving an archived job keeps its archived_at.
func (b *board) setArchived(e *entry, at int64) {
	if (at == 0) == (e.archived == 0) {
		return
	}
	b.state(e).Delete(e.slot)
	e.archived = at
	b.state(e).Set(e.slot)
}

// find returns the job with that key (preferred) or reference, or nil;
// the caller holds mu.
func (b *board) find(key, reference string) *entry {
	if key != "" {
		var k [keyBytes]byte
		if len(key) != 2*keyBytes {
			return nil
		}
		if _, err := hex.Decode(k[:], []byte(key)); err != nil {
			return nil
		}
		if slot, ok := b.byKey[k]; ok {
			return b.slab.at(slot)
		}
		return nil
	}
	if reference != "" {
		return b.byReference(reference)
	}
	return nil
}

// byReference returns the job with that reference, or nil; the caller
// holds mu.
func (b *board) byReference(ref string) *entry {
	if slot, ok := b.refClash[ref]; ok {
		return b.slab.at(slot)
	}
	if slot, ok := b.byRef[refHash(ref)]; ok {
		if e := b.slab.at(slot); e.reference() == ref {
			return e
		}
	}
	return nil
}

// scan calls fn with each job of tr in order, until fn returns false; the
// caller holds mu.
func (b *board) scan(tr *btree.BTreeG[uint32], fn func(*entry) bool) {
	tr.Scan(func(slot uint32) bool { return fn(b.slab.at(slot)) })
}

// newKey returns a random key.
func newKey() [keyBytes]byte {
	var k [keyBytes]byte
	rand.Read(k[:])
	return k
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

// jobDates are the raw JSON values of created_at and updated_at that a job
// takes when the request does not supply them.
type jobDates struct{ created, updated string }

// buildEntry encodes a stored job from the fields supplied, raw and compact
// (readObject), compressed with c. missing is the value of a content field
// not supplied ("null" on create, "[]" on edit); dates are the dates of a
// job that does not supply its own. The caller sets key, id and archived.
func buildEntry(c *codec, in jobInput, missing string, dates jobDates) (*entry, error) {
	ref, err := stringField(in, "reference")
	if err != nil {
		return nil, err
	}
	if v, ok := in["name"]; !ok || isNull(v) {
		return nil, &invalidField{"name", "Missing data for required field."}
	}
	bufs := scratch.Get().(*buffers)
	defer func() {
		if cap(bufs.doc) <= maxPooled && cap(bufs.packed) <= maxPooled {
			scratch.Put(bufs)
		}
	}()
	b := bufs.doc[:0]
	for i, f := range contentFields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
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
	bufs.doc = b
	e := &entry{refLen: uint32(len(ref))}
	created, err := dateField(in, "created_at", dates.created, &e.created)
	if err != nil {
		return nil, err
	}
	updated, err := dateField(in, "updated_at", dates.updated, &e.updated)
	if err != nil {
		return nil, err
	}
	e.createdLen, e.updatedLen = uint32(len(created)), uint32(len(updated))
	p := append(bufs.packed[:0], ref...)
	p = append(p, created...)
	p = append(p, updated...)
	p = c.encode(p, b)
	bufs.packed = p
	e.data = string(p)
	return e, nil
}

// dateField returns the raw JSON value of a date field, or def when the
// request does not supply it, and sets *t to the date in µs since 1970
// (year 1 when it does not read as a date).
func dateField(in jobInput, name, def string, t *int64) (string, error) {
	raw := def
	if v, ok := in[name]; ok && !isNull(v) {
		if firstByte(v) != '"' {
			return "", &invalidField{name, kindProblem('"')}
		}
		raw = string(v)
	}
	s, err := unquote([]byte(raw))
	if err != nil {
		return "", &invalidField{name, "Not a valid string."}
	}
	*t = parseTime(s).UnixMicro()
	return raw, nil
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
