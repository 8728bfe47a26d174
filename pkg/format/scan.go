package format

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// The built-in formats read offers with this scanner rather than decoding
// them: they need a score of fields out of a hundred, and skipping the rest
// without building anything is what makes pole_emploi fast. The scanner
// checks the structure of the whole offer (brackets, commas, colons,
// literals, numbers) so that invalid JSON fails; like most fast parsers it
// does not check the escapes and control characters of the strings it skips.
// The strings it reads are unescaped exactly as encoding/json does.

// rawValue is the text of one JSON value of an offer that the scanner has
// checked, or nil when the value is absent.
type rawValue []byte

// maxDepth bounds the nesting of an offer, as encoding/json does.
const maxDepth = 10000

// Kinds of rawValue, its first byte ('0' for every number).
const (
	kindAbsent = 0
	kindObject = '{'
	kindArray  = '['
	kindString = '"'
	kindNumber = '0'
	kindTrue   = 't'
	kindFalse  = 'f'
	kindNull   = 'n'
)

// errInvalidJSON wraps the scanner's syntax errors.
var errInvalidJSON = errors.New("invalid JSON")

func syntaxError(i int, what string) error {
	return fmt.Errorf("%w: %s at byte %d", errInvalidJSON, what, i)
}

// kind returns the kind of v.
func (v rawValue) kind() byte {
	if len(v) == 0 {
		return kindAbsent
	}
	switch c := v[0]; c {
	case kindObject, kindArray, kindString, kindTrue, kindFalse, kindNull:
		return c
	}
	return kindNumber
}

// jsonKind names the kind of v for messages.
func (v rawValue) jsonKind() string {
	switch v.kind() {
	case kindObject:
		return "object"
	case kindArray:
		return "array"
	case kindString:
		return "string"
	case kindNumber:
		return "number"
	case kindTrue, kindFalse:
		return "boolean"
	case kindNull:
		return "null"
	}
	return "nothing"
}

// object returns v when it is an object, else nil: the built-in formats
// treat a null or malformed sub-object as absent.
func (v rawValue) object() rawValue {
	if v.kind() != kindObject {
		return nil
	}
	return v
}

// get returns the value of key in the object v (the last one when the key
// is repeated, as encoding/json does), or nil when v is not an object or
// has no such key.
func (v rawValue) get(key string) rawValue {
	var found rawValue
	if v.kind() == kindObject {
		walkObject(v, 0, 0, func(k []byte, value rawValue) {
			if string(k) == key {
				found = value
			}
		})
	}
	return found
}

// items returns the items of the array v, or nil when v is not an array.
func (v rawValue) items() []rawValue {
	var items []rawValue
	if v.kind() == kindArray {
		walkArray(v, 0, 0, func(item rawValue) { items = append(items, item) })
	}
	return items
}

// view returns the string v holds, unescaped, or "" when v is not a string.
// Without escapes the result aliases the offer: use it only while formatting,
// or copy it with copier.str.
func (v rawValue) view() string {
	if v.kind() != kindString {
		return ""
	}
	content := v[1 : len(v)-1]
	if bytes.IndexByte(content, '\\') < 0 {
		return unsafeString(content)
	}
	b, err := appendUnescaped(nil, content)
	if err != nil {
		return ""
	}
	return unsafeString(b)
}

// scanObject checks that offer is one JSON object and calls member with each
// of its members, in order. It returns the object's text.
func scanObject(offer []byte, member func(key []byte, value rawValue)) (rawValue, error) {
	i := skipSpace(offer, 0)
	if i == len(offer) {
		return nil, fmt.Errorf("%w: no value", errInvalidJSON)
	}
	var end int
	var err error
	if offer[i] == kindObject {
		end, err = walkObject(offer, i, 0, member)
	} else {
		end, err = skipValue(offer, i, 0)
	}
	if err != nil {
		return nil, err
	}
	if j := skipSpace(offer, end); j != len(offer) {
		return nil, syntaxError(j, "data after the value")
	}
	if offer[i] != kindObject {
		return nil, fmt.Errorf("%w (it is a JSON %s)", errNotObject, rawValue(offer[i:end]).jsonKind())
	}
	return offer[i:end], nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the end of the value that starts at b[i].
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, syntaxError(i, "unexpected end")
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{':
		return walkObject(b, i, depth, nil)
	case c == '[':
		return walkArray(b, i, depth, nil)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return skipNumber(b, i)
	}
	return i, syntaxError(i, fmt.Sprintf("unexpected %q", b[i]))
}

// shortString is how far skipString looks for the end of a string byte by
// byte before it calls bytes.IndexByte: most strings of an offer are short,
// and a loop beats the call for them.
const shortString = 24

// skipString returns the end of the string that starts at b[i].
func skipString(b []byte, i int) (int, error) {
	j := i + 1
	for ; j < len(b) && j <= i+shortString; j++ {
		if c := b[j]; c == '"' {
			return j + 1, nil
		} else if c == '\\' {
			break
		}
	}
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return len(b), syntaxError(i, "unterminated string")
		}
		q := j + k
		backslashes := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return q + 1, nil
		}
		j = q + 1
	}
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if !bytes.HasPrefix(b[i:], []byte(lit)) {
		return i, syntaxError(i, "invalid literal")
	}
	return i + len(lit), nil
}

func skipNumber(b []byte, i int) (int, error) {
	j := i
	for j < len(b) {
		c := b[j]
		if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			j++
			continue
		}
		break
	}
	if !validNumber(unsafeString(b[i:j])) {
		return j, syntaxError(i, "invalid number")
	}
	return j, nil
}

// walkObject checks the object that starts at b[i], calls member (if not
// nil) with each key, unescaped, and value, and returns the object's end. The
// key passed to member is only valid during the call.
func walkObject(b []byte, i, depth int, member func(key []byte, value rawValue)) (int, error) {
	if depth++; depth > maxDepth {
		return i, syntaxError(i, "too deeply nested")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, syntaxError(i, "expected a key")
		}
		keyEnd, err := skipString(b, i)
		if err != nil {
			return keyEnd, err
		}
		key := b[i+1 : keyEnd-1]
		i = skipSpace(b, keyEnd)
		if i >= len(b) || b[i] != ':' {
			return i, syntaxError(i, "expected a colon")
		}
		i = skipSpace(b, i+1)
		start := i
		if i, err = skipValue(b, i, depth); err != nil {
			return i, err
		}
		if member != nil {
			if bytes.IndexByte(key, '\\') >= 0 {
				if key, err = appendUnescaped(nil, key); err != nil {
					return i, syntaxError(start, err.Error())
				}
			}
			member(key, b[start:i])
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, syntaxError(i, "unterminated object")
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, syntaxError(i, "expected a comma or a closing brace")
		}
	}
}

// walkArray checks the array that starts at b[i], calls item (if not nil)
// with each item, and returns the array's end.
func walkArray(b []byte, i, depth int, item func(value rawValue)) (int, error) {
	if depth++; depth > maxDepth {
		return i, syntaxError(i, "too deeply nested")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		start := i
		var err error
		if i, err = skipValue(b, i, depth); err != nil {
			return i, err
		}
		if item != nil {
			item(b[start:i])
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, syntaxError(i, "unterminated array")
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, syntaxError(i, "expected a comma or a closing bracket")
		}
	}
}

// appendUnescaped appends the unescaped content of a JSON string to dst.
func appendUnescaped(dst, s []byte) ([]byte, error) {
	b := bytesSink(dst)
	err := unescape(&b, s)
	return b, err
}

// bytesSink is a []byte that unescape can write to.
type bytesSink []byte

func (b *bytesSink) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }
func (b *bytesSink) WriteByte(c byte) error      { *b = append(*b, c); return nil }
func (b *bytesSink) WriteRune(r rune) (int, error) {
	n := len(*b)
	*b = utf8.AppendRune(*b, r)
	return len(*b) - n, nil
}

// sink is what unescape writes to: a *strings.Builder or a *bytesSink.
type sink interface {
	Write([]byte) (int, error)
	WriteByte(byte) error
	WriteRune(rune) (int, error)
}

// unescape writes the unescaped content of a JSON string to dst, as
// encoding/json decodes it: a lone UTF-16 surrogate becomes U+FFFD.
func unescape[S sink](dst S, s []byte) error {
	for {
		k := bytes.IndexByte(s, '\\')
		if k < 0 {
			dst.Write(s)
			return nil
		}
		dst.Write(s[:k])
		s = s[k:]
		if len(s) < 2 {
			return errors.New("invalid escape")
		}
		switch c := s[1]; c {
		case '"', '\\', '/':
			dst.WriteByte(c)
		case 'b':
			dst.WriteByte('\b')
		case 'f':
			dst.WriteByte('\f')
		case 'n':
			dst.WriteByte('\n')
		case 'r':
			dst.WriteByte('\r')
		case 't':
			dst.WriteByte('\t')
		case 'u':
			r, ok := hex4(s[2:])
			if !ok {
				return errors.New("invalid \\u escape")
			}
			s = s[6:]
			if utf16.IsSurrogate(r) {
				if low, ok := hex4(s[min(2, len(s)):]); ok && len(s) >= 6 && s[0] == '\\' && s[1] == 'u' {
					if pair := utf16.DecodeRune(r, low); pair != utf8.RuneError {
						dst.WriteRune(pair)
						s = s[6:]
						continue
					}
				}
				r = utf8.RuneError
			}
			dst.WriteRune(r)
			continue
		default:
			return fmt.Errorf("invalid escape %q", s[:2])
		}
		s = s[2:]
	}
}

// hex4 decodes the 4 hexadecimal digits that start s.
func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
