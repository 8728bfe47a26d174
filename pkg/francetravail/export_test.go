package francetravail

import (
	"context"
	"net/url"
)

// RawPage is one answer of the search endpoint, for tests.
type RawPage struct {
	Status int
	Range  ContentRange
	Offers []Offer
}

// SearchRaw fetches one page for the query string v as is, skipping
// Validate, so tests can reach the API's own checks.
func (c *Client) SearchRaw(ctx context.Context, v url.Values) (RawPage, error) {
	p, err := c.searchRaw(ctx, v)
	if err != nil {
		return RawPage{}, err
	}
	rp := RawPage{Status: p.status, Range: p.cr}
	for _, o := range p.offers {
		rp.Offers = append(rp.Offers, o.offer)
	}
	return rp, nil
}

// SplitResults exposes the page scanner to tests.
func SplitResults(body []byte) (offers []Offer, ids []string, err error) {
	raw, err := splitResults(body)
	for _, r := range raw {
		offers = append(offers, r.offer)
		ids = append(ids, r.id)
	}
	return offers, ids, err
}
