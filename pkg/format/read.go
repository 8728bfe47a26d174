package format

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

// Keys that open a search response ({"resultats": [...], "filtresPossibles":
// [...]}) rather than an offer.
const (
	keyResults = "resultats"
	keyFilters = "filtresPossibles"
)

// maxReadErrors caps the malformed items ReadOffers reports one by one; it
// counts the others.
const maxReadErrors = 100

// utf8BOM is skipped at the start of the input.
var utf8BOM = []byte("\xef\xbb\xbf")

// ReadOffers reads offers from r and calls yield with each, in order. What
// the input holds is told by its first non-blank byte and line:
//
//   - "[": a JSON array of offers, streamed item by item, however large;
//   - a first line that is a whole JSON value: NDJSON, one value a line, each
//     an offer, an array of offers or a search response; blank lines are
//     skipped; memory stays that of one line;
//   - otherwise a multi-line document: a search response, {"resultats":
//     [offers…], …} (what GET /offres/search returns; other keys are
//     ignored), or one or more pretty-printed offers.
//
// The offers passed to yield are the exact bytes of the input's objects,
// freshly allocated: yield may keep them. An error from yield stops the
// reading and is returned as is.
//
// A malformed line, or an item that is not a JSON object, does not stop the
// reading: ReadOffers goes on with the next one and returns an error naming
// each (line numbers from 1, array items from 0), joined with errors.Join.
// A syntax error in an array or a multi-line document stops it, naming the
// byte offset.
func ReadOffers(r io.Reader, yield func(francetravail.Offer) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, _ := br.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
		br.Discard(len(utf8BOM))
	}
	blank, first, err := skipBlank(br)
	if err == io.EOF {
		return nil // empty input
	}
	if err != nil {
		return fmt.Errorf("read offers: %w", err)
	}
	var bad badItems
	if first == '[' {
		err = readDocument(br, yield, &bad)
	} else {
		var line []byte
		line, err = br.ReadBytes('\n')
		switch {
		case err != nil && err != io.EOF:
			return fmt.Errorf("read offers: line %d: %w", blank+1, err)
		case json.Valid(line):
			err = readNDJSON(br, line, blank+1, yield, &bad)
		default:
			err = readDocument(io.MultiReader(bytes.NewReader(line), br), yield, &bad)
		}
	}
	if err != nil {
		return err
	}
	return bad.err()
}

// skipBlank consumes the blank space at the start of br and returns how many
// lines it held and the first byte that is not blank, left unread.
func skipBlank(br *bufio.Reader) (lines int, first byte, err error) {
	for {
		c, err := br.ReadByte()
		if err != nil {
			return lines, 0, err
		}
		switch c {
		case '\n':
			lines++
		case ' ', '\t', '\r':
		default:
			return lines, c, br.UnreadByte()
		}
	}
}

// readNDJSON reads NDJSON, starting with line number n, already read.
func readNDJSON(br *bufio.Reader, line []byte, n int, yield func(francetravail.Offer) error, bad *badItems) error {
	for {
		if value := bytes.TrimSpace(line); len(value) > 0 {
			if !json.Valid(value) {
				bad.add(fmt.Errorf("line %d: malformed JSON: %w", n, whyInvalid(value)))
			} else if err := emit(value, yield, func(err error) { bad.add(fmt.Errorf("line %d: %w", n, err)) }); err != nil {
				return err
			}
		}
		var err error
		line, err = br.ReadBytes('\n')
		n++
		if err == io.EOF {
			if len(line) == 0 {
				return nil
			}
		} else if err != nil {
			return fmt.Errorf("read offers: line %d: %w", n, err)
		}
	}
}

// whyInvalid explains why value is not valid JSON.
func whyInvalid(value []byte) error {
	var v json.RawMessage
	if err := json.Unmarshal(value, &v); err != nil {
		return err
	}
	return errors.New("invalid JSON")
}

// readDocument reads a JSON document: an array streamed item by item, or
// objects, each an offer or a search response.
func readDocument(r io.Reader, yield func(francetravail.Offer) error, bad *badItems) error {
	br := bufio.NewReader(r)
	dec := json.NewDecoder(br)
	if b, err := peekValue(br); err == nil && b == '[' {
		if err := streamArray(dec, yield, bad); err != nil {
			return err
		}
	}
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read offers: %w", documentError(dec, err))
		}
		if err := emit(raw, yield, bad.add); err != nil {
			return err
		}
	}
}

// peekValue returns the first non-space byte ahead in br.
func peekValue(br *bufio.Reader) (byte, error) {
	for i := 1; ; i++ {
		b, err := br.Peek(i)
		if len(b) < i {
			return 0, err
		}
		switch c := b[i-1]; c {
		case ' ', '\t', '\r', '\n':
		default:
			return c, nil
		}
	}
}

// streamArray reads a top-level array of offers without holding it whole.
func streamArray(dec *json.Decoder, yield func(francetravail.Offer) error, bad *badItems) error {
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("read offers: %w", documentError(dec, err))
	}
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("read offers: item %d: %w", i, documentError(dec, err))
		}
		if !isObject(raw) {
			bad.add(fmt.Errorf("item %d: not a JSON object", i))
			continue
		}
		if err := yield(francetravail.Offer(raw)); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("read offers: %w", documentError(dec, err))
	}
	return nil
}

// documentError adds the position to a decoding error.
func documentError(dec *json.Decoder, err error) error {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Errorf("malformed JSON at byte %d: %w", syntax.Offset, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated JSON at byte %d: %w", dec.InputOffset(), err)
	}
	return err
}

// emit yields the offers of one valid JSON value: an offer, an array of
// offers, or a search response. Items that are not objects go to bad.
func emit(value []byte, yield func(francetravail.Offer) error, bad func(error)) error {
	value = bytes.TrimSpace(value)
	switch {
	case len(value) > 0 && value[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(value, &items); err != nil {
			bad(err)
			return nil
		}
		return emitItems(items, "item", yield, bad)
	case isSearchResponse(value):
		var resp struct {
			Results []json.RawMessage `json:"resultats"`
		}
		if err := json.Unmarshal(value, &resp); err != nil {
			bad(fmt.Errorf("search response: %w", err))
			return nil
		}
		return emitItems(resp.Results, keyResults+" item", yield, bad)
	case isObject(value):
		return yield(francetravail.Offer(bytes.Clone(value)))
	}
	bad(errors.New("not a JSON object"))
	return nil
}

func emitItems(items []json.RawMessage, what string, yield func(francetravail.Offer) error, bad func(error)) error {
	for i, item := range items {
		if !isObject(item) {
			bad(fmt.Errorf("%s %d: not a JSON object", what, i))
			continue
		}
		if err := yield(francetravail.Offer(bytes.Clone(item))); err != nil {
			return err
		}
	}
	return nil
}

// isObject reports whether a valid JSON value is an object.
func isObject(value []byte) bool {
	value = bytes.TrimLeft(value, " \t\r\n")
	return len(value) > 0 && value[0] == '{'
}

// isSearchResponse reports whether a valid JSON value is an object whose
// first key is one of a search response's.
func isSearchResponse(value []byte) bool {
	value = bytes.TrimLeft(value, " \t\r\n")
	if len(value) == 0 || value[0] != '{' {
		return false
	}
	value = bytes.TrimLeft(value[1:], " \t\r\n")
	for _, key := range [...]string{keyResults, keyFilters} {
		if bytes.HasPrefix(value, []byte(`"`+key+`"`)) {
			return true
		}
	}
	return false
}

// badItems collects the items ReadOffers skipped.
type badItems struct {
	errs []error
	more int
}

func (b *badItems) add(err error) {
	if len(b.errs) < maxReadErrors {
		b.errs = append(b.errs, err)
		return
	}
	b.more++
}

func (b *badItems) err() error {
	errs := b.errs
	if b.more > 0 {
		errs = append(errs, fmt.Errorf("and %d more malformed items", b.more))
	}
	return errors.Join(errs...)
}
