package francetravail

import (
	"bytes"
	"errors"
	"fmt"
)

// A page of results is read in one pass without decoding the offers: the
// scanner below finds each element of "resultats", copies its bytes
// untouched, and picks up its top-level "id" on the way. Decoding 150 offers
// into values only to re-encode them would cost more than the rest of a
// search, and could change bytes that the pipeline promises to carry as
// France Travail published them.

// rawOffer is one element of "resultats" and its id ("" when absent or not
// a plain string).
type rawOffer struct {
	offer Offer
	id    string
}

var errSyntax = errors.New("malformed JSON")

// splitResults returns the offers of a search answer body. They share its
// memory, not a copy each (a run copies every offer it fetches into NATS
// at once: a copy here would be garbage for nothing); each is capped, so
// that appending to one cannot overwrite the next.
func splitResults(body []byte) ([]rawOffer, error) {
	s := scanner{b: body}
	s.ws()
	if !s.eat('{') {
		return nil, fmt.Errorf("search answer: %w: want an object", errSyntax)
	}
	var out []rawOffer
	found := false
	for first := true; ; first = false {
		s.ws()
		if s.eat('}') {
			break
		}
		if !first && !s.eat(',') {
			return nil, s.err("',' or '}'")
		}
		s.ws()
		key, ok := s.str()
		if !ok {
			return nil, s.err("a key")
		}
		s.ws()
		if !s.eat(':') {
			return nil, s.err("':'")
		}
		s.ws()
		if string(key) != `"resultats"` || found {
			if !s.value() {
				return nil, s.err("a value")
			}
			continue
		}
		found = true
		if s.peek() == 'n' { // null
			if !s.value() {
				return nil, s.err("a value")
			}
			continue
		}
		if !s.eat('[') {
			return nil, s.err("an array of offers")
		}
		for firstElem := true; ; firstElem = false {
			s.ws()
			if s.eat(']') {
				break
			}
			if !firstElem && !s.eat(',') {
				return nil, s.err("',' or ']'")
			}
			s.ws()
			start := s.i
			id, ok := s.object()
			if !ok {
				return nil, s.err("an offer object")
			}
			out = append(out, rawOffer{offer: Offer(body[start:s.i:s.i]), id: id})
		}
	}
	s.ws()
	if s.i != len(s.b) {
		return nil, s.err("the end")
	}
	return out, nil
}

// scanner walks JSON text; each method advances past what it recognises and
// reports whether it did.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) err(want string) error {
	return fmt.Errorf("search answer: %w at byte %d: want %s", errSyntax, s.i, want)
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) eat(c byte) bool {
	if s.peek() == c && s.i < len(s.b) {
		s.i++
		return true
	}
	return false
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// str skips a string and returns it with its quotes, escapes untouched.
func (s *scanner) str() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	start := s.i
	s.i++
	// Find the next quote, then the backslashes before it: two IndexByte
	// scans run several times faster than one IndexAny, and most of a page
	// is the text of strings.
	q := bytes.IndexByte(s.b[s.i:], '"')
	if q < 0 {
		return nil, false
	}
	q += s.i
	for {
		k := bytes.IndexByte(s.b[s.i:q], '\\')
		if k < 0 {
			s.i = q + 1
			return s.b[start:s.i], true
		}
		s.i += k + 2 // a backslash and the escaped byte
		if s.i > q { // the quote was escaped: find the next one
			if s.i > len(s.b) {
				return nil, false
			}
			next := bytes.IndexByte(s.b[s.i:], '"')
			if next < 0 {
				return nil, false
			}
			q = s.i + next
		}
	}
}

// object skips an object and returns its top-level "id" when it is a string
// without escapes (ids are alphanumeric); of repeated "id" keys, the first
// decides, as for Offer.ID.
func (s *scanner) object() (id string, ok bool) {
	if !s.eat('{') {
		return "", false
	}
	seenID := false
	for first := true; ; first = false {
		s.ws()
		if s.eat('}') {
			return id, true
		}
		if !first && !s.eat(',') {
			return "", false
		}
		s.ws()
		key, ok := s.str()
		if !ok {
			return "", false
		}
		s.ws()
		if !s.eat(':') {
			return "", false
		}
		s.ws()
		if string(key) == `"id"` && !seenID {
			seenID = true
			if s.peek() == '"' {
				v, ok := s.str()
				if !ok {
					return "", false
				}
				if bytes.IndexByte(v, '\\') < 0 {
					id = string(v[1 : len(v)-1])
				}
				continue
			}
		}
		if !s.value() {
			return "", false
		}
	}
}

func (s *scanner) array() bool {
	if !s.eat('[') {
		return false
	}
	for first := true; ; first = false {
		s.ws()
		if s.eat(']') {
			return true
		}
		if !first && !s.eat(',') {
			return false
		}
		s.ws()
		if !s.value() {
			return false
		}
	}
}

// value skips any JSON value.
func (s *scanner) value() bool {
	switch c := s.peek(); {
	case c == '{':
		_, ok := s.object()
		return ok
	case c == '[':
		return s.array()
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		start := s.i
		for s.i < len(s.b) && bytes.IndexByte([]byte("+-.eE0123456789"), s.b[s.i]) >= 0 {
			s.i++
		}
		return s.i > start
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
			s.i += len(lit)
			return true
		}
	}
	return false
}
