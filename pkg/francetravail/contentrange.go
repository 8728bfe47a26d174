package francetravail

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ContentRange is a parsed Content-Range header of a search answer.
type ContentRange struct {
	// First is the 0-based index of the page's first offer, -1 when the
	// answer holds no offer ("*/0", "offres -1--1/t").
	First int
	// Last is the 0-based index of the page's last offer (inclusive), -1
	// when the answer holds no offer.
	Last int
	// Total is the number of matches of the whole query; -1 when the server
	// wrote "*".
	Total int
}

// Empty reports whether the answer carries no offer.
func (r ContentRange) Empty() bool { return r.First < 0 }

// ParseContentRange parses a Content-Range of the search API:
//
//	"offres 0-149/3200"   a page
//	"offres -1--1/40"     a range past the end of 40 matches
//	"*/0"                 no match
//
// It is tolerant: the unit ("offres", "items", …) is optional, spaces around
// the separators are ignored, and "*" may stand for the range or the total.
// It rejects negative or reversed ranges other than -1--1, and overflowing
// numbers.
func ParseContentRange(s string) (ContentRange, error) {
	bad := func(why string) (ContentRange, error) {
		return ContentRange{}, fmt.Errorf("content-range %q: %s", s, why)
	}
	v := strings.TrimSpace(s)
	// An optional unit: letters, then spaces.
	if i := strings.IndexFunc(v, func(r rune) bool { return !isLetter(r) }); i > 0 {
		v = strings.TrimSpace(v[i:])
	} else if i < 0 && v != "" {
		return bad("no range")
	}
	slash := strings.LastIndexByte(v, '/')
	if slash < 0 {
		return bad("no total")
	}
	rng, tot := strings.TrimSpace(v[:slash]), strings.TrimSpace(v[slash+1:])
	r := ContentRange{First: -1, Last: -1, Total: -1}
	if tot != "*" {
		n, err := parseNonNeg(tot)
		if err != nil {
			return bad("total: " + err.Error())
		}
		r.Total = n
	}
	switch {
	case rng == "*":
	case strings.HasPrefix(rng, "-"):
		// Only "-1--1" (the API's "nothing here") starts with a minus.
		a, b, ok := strings.Cut(rng[1:], "-")
		if !ok || strings.TrimSpace(a) != "1" || strings.TrimSpace(b) != "-1" {
			return bad("negative range")
		}
	default:
		a, b, ok := strings.Cut(rng, "-")
		if !ok {
			return bad("range: want first-last")
		}
		first, err := parseNonNeg(strings.TrimSpace(a))
		if err != nil {
			return bad("first: " + err.Error())
		}
		last, err := parseNonNeg(strings.TrimSpace(b))
		if err != nil {
			return bad("last: " + err.Error())
		}
		if first > last {
			return bad("first after last")
		}
		r.First, r.Last = first, last
	}
	if r.Empty() && r.Total == -1 && rng == "*" {
		return bad("neither range nor total")
	}
	return r, nil
}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }

var errNotNumber = errors.New("not a non-negative integer")

func parseNonNeg(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errNotNumber
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errNotNumber
	}
	return n, nil
}
