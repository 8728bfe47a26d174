package francetravail

import (
	"errors"
	"fmt"

	"github.com/valyala/fastjson"
)

// Offer is one offer exactly as the API returned it: the raw JSON object,
// unknown fields included. The pipeline carries offers untouched, so that a
// replay or a new format sees everything France Travail published.
type Offer []byte

// ErrNoID reports an offer without a usable "id": it cannot be referenced on a
// board, so it cannot be pushed.
var ErrNoID = errors.New("offer has no id")

// MarshalJSON returns the raw offer, or null for a nil offer.
func (o Offer) MarshalJSON() ([]byte, error) {
	if o == nil {
		return []byte("null"), nil
	}
	return o, nil
}

// UnmarshalJSON keeps a copy of the raw JSON.
func (o *Offer) UnmarshalJSON(b []byte) error {
	*o = append((*o)[:0], b...)
	return nil
}

// parsers are reused: a Parser keeps the values it made for the next
// parse, where a new one per offer made a run's largest share of garbage.
// What a parse returns is copied out before its Parser goes back.
var parsers fastjson.ParserPool

// ID returns the offer's "id". It fails with an error wrapping ErrNoID when the
// offer is not a JSON object or its id is absent, empty or not a string.
func (o Offer) ID() (string, error) {
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(o)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoID, err)
	}
	if v.Type() != fastjson.TypeObject {
		return "", fmt.Errorf("%w: offer is a JSON %s, not an object", ErrNoID, v.Type())
	}
	id := v.Get("id")
	if id == nil || id.Type() != fastjson.TypeString || len(id.GetStringBytes()) == 0 {
		return "", ErrNoID
	}
	return string(id.GetStringBytes()), nil
}
