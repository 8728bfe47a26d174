package format

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unsafe"
)

// errNotObject reports an offer that is valid JSON but not an object.
var errNotObject = errors.New("offer is not a JSON object")

// copier copies values out of an offer into a job. The strings of one job
// share one buffer, sized from the offer (no string is longer unescaped than
// escaped): one allocation instead of one per string. A strings.Builder only
// appends, so the strings it returned stay valid as it fills (and it does not
// zero the memory it allocates). It keeps the first error, so that a job
// literal reads like the mapping it implements.
type copier struct {
	buf strings.Builder
	err error
}

// newCopier returns a copier for strings of n bytes in all.
func newCopier(n int) *copier {
	c := new(copier)
	c.buf.Grow(n)
	return c
}

// since returns the bytes written from start on.
func (c *copier) since(start int) string {
	return c.buf.String()[start:]
}

// str returns a copy of s.
func (c *copier) str(s string) string {
	start := c.buf.Len()
	c.buf.WriteString(s)
	return c.since(start)
}

// join returns the concatenation of parts, as a copy.
func (c *copier) join(parts ...string) string {
	start := c.buf.Len()
	for _, p := range parts {
		c.buf.WriteString(p)
	}
	return c.since(start)
}

// text returns a copy of the string v holds, unescaped, or "" when v is not
// a string.
func (c *copier) text(v rawValue) string {
	if v.kind() != kindString {
		return ""
	}
	start := c.buf.Len()
	if err := unescape(&c.buf, v[1:len(v)-1]); err != nil && c.err == nil {
		c.err = fmt.Errorf("%w: %v", errInvalidJSON, err)
	}
	return c.since(start)
}

// copy returns the value of v (see value); on failure it records an error
// naming field and returns nil.
func (c *copier) copy(field string, v rawValue) any {
	x, err := c.value(v)
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("%s: %w", field, err)
	}
	return x
}

// value returns v as a generic JSON value, as encoding/json decodes into an
// any (nil, bool, float64, string, []any, map[string]any), copied out of the
// offer; an absent v is nil (JSON null). A number too large for a float64 is
// kept as its exact json.Number text, so that the job still encodes.
func (c *copier) value(v rawValue) (any, error) {
	switch v.kind() {
	case kindAbsent, kindNull:
		return nil, nil
	case kindTrue:
		return true, nil
	case kindFalse:
		return false, nil
	case kindString:
		return c.text(v), nil // an invalid escape is in c.err
	case kindNumber:
		return number(v), nil
	case kindArray:
		out := []any{}
		var err error
		_, walkErr := walkArray(v, 0, 0, func(item rawValue) {
			x, e := c.value(item)
			err = cmp.Or(err, e)
			out = append(out, x)
		})
		return out, cmp.Or(walkErr, err)
	}
	out := make(map[string]any)
	var err error
	_, walkErr := walkObject(v, 0, 0, func(k []byte, item rawValue) {
		x, e := c.value(item)
		err = cmp.Or(err, e)
		out[c.str(unsafeString(k))] = x
	})
	return out, cmp.Or(walkErr, err)
}

// number converts a number the scanner checked.
func number(v rawValue) any {
	f, err := strconv.ParseFloat(unsafeString(v), 64)
	if err != nil { // out of float64 range: keep the exact text
		return json.Number(string(v))
	}
	return f
}

// validNumber reports whether s is a JSON number per RFC 8259.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}

// coordinate converts a latitude or longitude as the historic format did with
// Python's float(): a JSON number, or a string holding a decimal number
// (surrounding spaces allowed). Anything else (absent, null, a boolean, an
// unparsable or non-finite value) is nil, never a failure.
func coordinate(v rawValue) any {
	var s string
	switch v.kind() {
	case kindNumber:
		s = unsafeString(v)
	case kindString:
		s = strings.TrimSpace(v.view())
	default:
		return nil
	}
	if !decimal(s) {
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil
	}
	return f
}

// decimal reports whether s looks like a plain decimal number: an optional
// sign, digits with at most one point, an optional exponent. It rules out
// what strconv.ParseFloat accepts beyond Python's float() (hex, underscores)
// and the words inf and nan.
func decimal(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '+' || s[0] == '-' {
		s = s[1:]
	}
	digits, point := 0, false
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !point:
			point = true
		default:
			goto exponent
		}
	}
exponent:
	if digits == 0 {
		return false
	}
	if i == len(s) {
		return true
	}
	if s[i] != 'e' && s[i] != 'E' {
		return false
	}
	i++
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	if i == len(s) {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// unsafeString returns b as a string without copying it; b must not change
// while the string is in use.
func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
