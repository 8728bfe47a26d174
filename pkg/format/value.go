package format

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unsafe"

	"github.com/valyala/fastjson"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

// parsers is shared by the built-in formats: parsing an offer with fastjson
// is several times faster than encoding/json into map[string]any, and
// pooling keeps the parsers' buffers warm.
var parsers fastjson.ParserPool

// errNotObject reports an offer that is valid JSON but not an object.
var errNotObject = errors.New("offer is not a JSON object")

// parseOffer parses offer with p and returns its top-level object and its id.
// The id follows francetravail.Offer.ID: a non-empty string, or a failure
// wrapping francetravail.ErrNoID. Duplicate keys resolve to the last one, as
// encoding/json and Python's json module do.
func parseOffer(p *fastjson.Parser, offer francetravail.Offer) (*fastjson.Object, string, error) {
	v, err := p.ParseBytes(offer)
	if err != nil {
		return nil, "", fmt.Errorf("%w: invalid JSON: %v", francetravail.ErrNoID, err)
	}
	o, err := v.Object()
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w (it is a JSON %s)", francetravail.ErrNoID, errNotObject, v.Type())
	}
	id := view(get(o, "id"))
	if id == "" {
		return nil, "", francetravail.ErrNoID
	}
	return o, strings.Clone(id), nil
}

// get returns the value of key in o, the last one when the key is repeated,
// or nil when o is nil or has no such key.
func get(o *fastjson.Object, key string) *fastjson.Value {
	var found *fastjson.Value
	o.Visit(func(k []byte, v *fastjson.Value) {
		if string(k) == key {
			found = v
		}
	})
	return found
}

// object returns v as an object, or nil when v is absent or not an object:
// the built-in formats treat a null or malformed sub-object as absent.
func object(v *fastjson.Value) *fastjson.Object {
	if v == nil || v.Type() != fastjson.TypeObject {
		return nil
	}
	o, _ := v.Object()
	return o
}

// array returns v's items, or nil when v is absent or not an array.
func array(v *fastjson.Value) []*fastjson.Value {
	if v == nil || v.Type() != fastjson.TypeArray {
		return nil
	}
	a, _ := v.Array()
	return a
}

// view returns v's string without copying it, or "" when v is absent or not
// a string. The result aliases the parser's memory: use it only before the
// parser goes back to the pool, or copy it with copier.str.
func view(v *fastjson.Value) string {
	if v == nil || v.Type() != fastjson.TypeString {
		return ""
	}
	b, _ := v.StringBytes()
	return unsafeString(b)
}

// copier copies values out of a parsed offer into a job. The strings of one
// job share one buffer, sized from the offer (no string is longer unescaped
// than escaped): one allocation instead of one per string. It keeps the first
// error, so that a job literal reads like the mapping it implements.
type copier struct {
	buf strings.Builder
	err error
}

// newCopier returns a copier for an offer of n bytes.
func newCopier(n int) *copier {
	c := new(copier)
	c.buf.Grow(n)
	return c
}

// str returns a copy of s. A strings.Builder only appends, so the string it
// returned earlier stays valid as the buffer fills.
func (c *copier) str(s string) string {
	if s == "" {
		return ""
	}
	start := c.buf.Len()
	c.buf.WriteString(s)
	return c.buf.String()[start:]
}

// join returns the concatenation of parts, as a copy.
func (c *copier) join(parts ...string) string {
	start := c.buf.Len()
	for _, p := range parts {
		c.buf.WriteString(p)
	}
	return c.buf.String()[start:]
}

// copy returns the value of v (see value); on failure it records an error
// naming field and returns nil.
func (c *copier) copy(field string, v *fastjson.Value) any {
	x, err := c.value(v)
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("%s: %w", field, err)
	}
	return x
}

// value returns v as a generic JSON value (nil, bool, float64, string,
// []any, map[string]any), deep-copied out of the parser's memory; an absent
// v is nil (JSON null). A number too large for a float64 is kept as its
// exact json.Number text, so that the job still encodes.
func (c *copier) value(v *fastjson.Value) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch v.Type() {
	case fastjson.TypeNull:
		return nil, nil
	case fastjson.TypeTrue:
		return true, nil
	case fastjson.TypeFalse:
		return false, nil
	case fastjson.TypeString:
		return c.str(view(v)), nil
	case fastjson.TypeNumber:
		return number(v)
	case fastjson.TypeArray:
		items, _ := v.Array()
		out := make([]any, len(items))
		for i, item := range items {
			x, err := c.value(item)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case fastjson.TypeObject:
		o, _ := v.Object()
		out := make(map[string]any, o.Len())
		var err error
		o.Visit(func(k []byte, item *fastjson.Value) {
			if err != nil {
				return
			}
			var x any
			x, err = c.value(item)
			out[c.str(unsafeString(k))] = x
		})
		return out, err
	}
	return nil, fmt.Errorf("unexpected JSON type %s", v.Type())
}

// number converts a JSON number. fastjson accepts some texts that are not
// JSON numbers (NaN, Inf, "1-2"): those are errors, not silent values.
func number(v *fastjson.Value) (any, error) {
	raw := v.String() // the number's text as it appeared
	if !validNumber(raw) {
		return nil, fmt.Errorf("invalid JSON number %q", raw)
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil { // out of float64 range: keep the exact text
		return json.Number(raw), nil
	}
	return f, nil
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
func coordinate(v *fastjson.Value) any {
	if v == nil {
		return nil
	}
	var s string
	switch v.Type() {
	case fastjson.TypeNumber:
		s = v.String()
	case fastjson.TypeString:
		s = strings.TrimSpace(view(v))
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
