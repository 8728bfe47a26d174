package francetravail

import "math/bits"

// IDSet is a set of offer ids, compact enough to hold every live offer of
// France Travail (about a million) in a few megabytes. The zero value is an
// empty set, ready to use; an IDSet is not safe for concurrent use.
//
// It is exact: no two ids are ever taken for one another. The ids France
// Travail gives are of two shapes, "193MWGT" (three digits and four capital
// letters, its own offers) and "0659322" (seven digits, partners' offers);
// each is packed into a 32-bit number that encodes it one to one, and those
// numbers are kept in an open-addressing hash table: 4 bytes a slot, filled
// between 3/8 and 3/4, so 5 to 11 bytes an id (a map[string]struct{} takes
// about 70). An id of any other shape is kept as a string in a map: exact
// too, only larger, should the API ever change its ids.
type IDSet struct {
	slots []uint32 // packed id + 1; 0 is an empty slot
	shift uint     // 64 - log2(len(slots))
	n     int      // packed ids held
	other map[string]struct{}
}

// Shapes of the ids France Travail gives, packed into 30 bits: its own
// offers below ftSpace, partners' from ftSpace on.
const (
	ftLetters  = 26 * 26 * 26 * 26
	ftSpace    = 1000 * ftLetters // 456 976 000 < 2^29
	partnerIDs = 10_000_000
	minSlots   = 1 << 10
	// The table grows (doubles) when more than maxLoadNum/maxLoadDen full.
	maxLoadNum, maxLoadDen = 3, 4
)

// packID encodes an id of one of the two usual shapes one to one into a
// number below ftSpace+partnerIDs; ok is false for any other id.
func packID(id string) (uint32, bool) {
	if len(id) != 7 {
		return 0, false
	}
	var n uint32
	for i := 0; i < 3; i++ {
		c := id[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint32(c-'0')
	}
	if c := id[3]; c >= '0' && c <= '9' { // seven digits: a partner's offer
		for i := 3; i < 7; i++ {
			c := id[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + uint32(c-'0')
		}
		return ftSpace + n, true
	}
	for i := 3; i < 7; i++ {
		c := id[i]
		if c < 'A' || c > 'Z' {
			return 0, false
		}
		n = n*26 + uint32(c-'A')
	}
	return n, true
}

// Add adds id to the set and reports whether it was absent.
func (s *IDSet) Add(id string) bool {
	p, ok := packID(id)
	if !ok {
		if _, dup := s.other[id]; dup {
			return false
		}
		if s.other == nil {
			s.other = make(map[string]struct{})
		}
		s.other[id] = struct{}{}
		return true
	}
	if (s.n+1)*maxLoadDen > len(s.slots)*maxLoadNum {
		s.grow()
	}
	if !s.insert(p + 1) {
		return false
	}
	s.n++
	return true
}

// Has reports whether id is in the set.
func (s *IDSet) Has(id string) bool {
	p, ok := packID(id)
	if !ok {
		_, has := s.other[id]
		return has
	}
	if len(s.slots) == 0 {
		return false
	}
	v := p + 1
	mask := uint64(len(s.slots) - 1)
	for i := (uint64(v) * 0x9E3779B97F4A7C15) >> s.shift; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			return false
		case v:
			return true
		}
	}
}

// Len returns the number of ids in the set.
func (s *IDSet) Len() int { return s.n + len(s.other) }

// insert puts the non-zero key v in the table, which has room, and reports
// whether it was absent. Linear probing from a Fibonacci hash (the top bits
// of a multiplication): packed ids are dense in places, and it spreads them.
func (s *IDSet) insert(v uint32) bool {
	mask := uint64(len(s.slots) - 1)
	for i := (uint64(v) * 0x9E3779B97F4A7C15) >> s.shift; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			s.slots[i] = v
			return true
		case v:
			return false
		}
	}
}

func (s *IDSet) grow() {
	old := s.slots
	s.slots = make([]uint32, max(2*len(old), minSlots))
	s.shift = uint(64 - bits.Len(uint(len(s.slots)-1)))
	for _, v := range old {
		if v != 0 {
			s.insert(v)
		}
	}
}
