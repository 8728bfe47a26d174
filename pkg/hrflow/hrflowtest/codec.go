package hrflowtest

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/klauspost/compress/s2"
)

// Stored documents are s2 blocks behind one byte that says how they were
// compressed: alone, or with the emulator's dictionary.
const (
	codecPlain byte = iota
	codecDict
)

// dictSearchStart is how a stored document starts: the dictionary's first
// repeat is taken at its last occurrence in the samples.
var dictSearchStart = []byte(`"name":`)

// codec compresses the documents of one emulator. Each document alone
// compresses poorly, since what jobs share (field and tag names, the
// phrases of a format) repeats across documents, not within one; so once
// the first documents fill s2.MaxDictSize bytes they become a dictionary,
// and every document after them is compressed with it: a synthetic job of
// 3.1 KB takes about 360 bytes instead of 1 700, a real one 1 300 instead
// of 2 000. The documents compressed before the dictionary stay as they
// are. It is safe for concurrent use.
type codec struct {
	dict atomic.Pointer[s2.Dict]

	mu      sync.Mutex
	samples []byte // the first documents, until they make the dictionary
}

// encode appends to dst the stored form of doc.
func (c *codec) encode(dst, doc []byte) []byte {
	d := c.dict.Load()
	if d == nil {
		d = c.learn(doc)
	}
	dst = slices.Grow(dst, 1+s2.MaxEncodedLen(len(doc)))
	out := dst[len(dst)+1 : cap(dst)]
	var enc []byte
	if d == nil {
		dst = append(dst, codecPlain)
		enc = s2.Encode(out, doc)
	} else {
		dst = append(dst, codecDict)
		enc = d.Encode(out, doc)
	}
	if len(enc) > 0 && &enc[0] != &out[0] { // not encoded in place
		return append(dst, enc...)
	}
	return dst[:len(dst)+len(enc)]
}

// learn keeps doc as a sample, and returns the dictionary once the samples
// make one (nil before).
func (c *codec) learn(doc []byte) *s2.Dict {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.dict.Load(); d != nil {
		return d
	}
	c.samples = append(c.samples, doc...)
	if len(c.samples) < s2.MaxDictSize {
		return nil
	}
	d := s2.MakeDict(c.samples, dictSearchStart)
	c.samples = nil
	c.dict.Store(d)
	return d
}

// appendDecoded appends the document stored in packed to dst.
func (c *codec) appendDecoded(dst []byte, packed string) ([]byte, error) {
	if len(packed) < 2 {
		return dst, fmt.Errorf("stored document of %d bytes", len(packed))
	}
	// s2 only reads src: a view of the string, not a copy.
	src := unsafe.Slice(unsafe.StringData(packed[1:]), len(packed)-1)
	n, err := s2.DecodedLen(src)
	if err != nil {
		return dst, err
	}
	if n > maxBody { // no request stores more
		return dst, fmt.Errorf("stored document of %d bytes decoded", n)
	}
	dst = slices.Grow(dst, n)
	out := dst[len(dst) : len(dst)+n]
	switch packed[0] {
	case codecPlain:
		_, err = s2.Decode(out, src)
	case codecDict:
		d := c.dict.Load()
		if d == nil {
			return dst, fmt.Errorf("stored document needs a dictionary the emulator does not have")
		}
		_, err = d.Decode(out, src)
	default:
		return dst, fmt.Errorf("stored document of unknown kind %d", packed[0])
	}
	if err != nil {
		return dst, err
	}
	return dst[:len(dst)+n], nil
}
