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
	return RawPage{Status: p.status, Range: p.cr, Offers: p.offers}, nil
}
