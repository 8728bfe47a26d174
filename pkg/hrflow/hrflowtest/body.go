package hrflowtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"unicode/utf8"
)

// errNotObject: a body that is not a JSON object.
var errNotObject = errors.New("not a JSON object")

// readObject reads a request body that must be a JSON object and returns its
// fields, raw and compact. It validates the body, compacts it in place, then
// splits it without decoding the values: a job is stored without ever
// becoming a map.
func readObject(r *http.Request) (map[string]json.RawMessage, error) {
	body, err := readAll(r)
	if err != nil {
		return nil, err
	}
	if !json.Valid(body) {
		return nil, errors.New("invalid JSON")
	}
	return splitObject(compactInPlace(body))
}

// compactInPlace removes the insignificant white space of valid JSON, as
// json.Compact does, within b itself. Strings are copied whole.
func compactInPlace(b []byte) []byte {
	w := 0
	for i := 0; i < len(b); {
		switch c := b[i]; c {
		case ' ', '\t', '\n', '\r':
			i++
		case '"':
			end := stringEnd(b, i)
			if end < 0 { // not valid JSON: leave the rest as it is
				end = len(b)
			}
			w += copy(b[w:], b[i:end])
			i = end
		default:
			b[w] = c
			w++
			i++
		}
	}
	return b[:w]
}

// splitObject returns the fields of a compact, valid JSON object (as
// json.Compact writes it); the values are sub-slices of b. A key that
// appears twice keeps its last value, as encoding/json does.
func splitObject(b []byte) (map[string]json.RawMessage, error) {
	if len(b) < 2 || b[0] != '{' {
		return nil, errNotObject
	}
	fields := make(map[string]json.RawMessage, 24)
	i := 1
	for i < len(b) && b[i] != '}' {
		if b[i] == ',' {
			i++
		}
		end := stringEnd(b, i)
		if end < 0 {
			return nil, errNotObject
		}
		key, err := unquote(b[i:end])
		if err != nil {
			return nil, err
		}
		i = end + 1 // past ':'
		vend := valueEnd(b, i)
		if vend < 0 {
			return nil, errNotObject
		}
		fields[key] = b[i:vend]
		i = vend
	}
	return fields, nil
}

// stringEnd returns the index just past the JSON string starting at b[i],
// or -1. It jumps from quote to quote; a quote preceded by an odd number of
// backslashes is escaped.
func stringEnd(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for k := i + 1; ; {
		j := bytes.IndexByte(b[k:], '"')
		if j < 0 {
			return -1
		}
		q := k + j
		n := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		k = q + 1
	}
}

// valueEnd returns the index just past the compact JSON value starting at
// b[i], or -1.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := stringEnd(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	for j := i; j < len(b); j++ {
		switch b[j] {
		case ',', '}', ']':
			return j
		}
	}
	return len(b)
}

// unquote decodes a JSON string, quickly when it has no escape and is
// valid UTF-8 (encoding/json replaces invalid bytes).
func unquote(raw []byte) (string, error) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// readAll reads a body of at most maxBody bytes, in one allocation when
// its length is known.
func readAll(r *http.Request) ([]byte, error) {
	rd := io.LimitReader(r.Body, maxBody+1)
	if n := r.ContentLength; n > 0 && n <= maxBody {
		b := make([]byte, n)
		if _, err := io.ReadFull(rd, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, errors.New("body too large")
	}
	return b, nil
}
