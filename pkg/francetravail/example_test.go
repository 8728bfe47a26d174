package francetravail_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
)

// A client pointed at the emulator builds the same paths as in production.
func ExampleClient_Search() {
	emu, err := francetravailtest.New(francetravailtest.Config{
		Corpus: francetravailtest.Synthetic(4000, 1, francetravailtest.SyntheticOptions{Departements: []string{"74"}}),
	})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()

	c, err := francetravail.NewClient(francetravail.Config{
		ClientID:     francetravailtest.DefaultClientID,
		ClientSecret: francetravailtest.DefaultClientSecret,
		APIBaseURL:   francetravailtest.APIBaseURL(srv.URL),
		TokenURL:     francetravailtest.TokenURL(srv.URL),
		HTTPClient:   srv.Client(),
		RateLimit:    100,
	})
	if err != nil {
		log.Fatal(err)
	}
	// 4 000 offers: more than one query can reach, so the search splits it
	// into creation-date windows.
	n := 0
	sum, err := c.Search(context.Background(), francetravail.Query{Departement: "74"}, func(o francetravail.Offer) error {
		n++ // o is the raw JSON offer
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "offers, total", sum.Total, "split:", sum.Windows > 1, "truncated:", sum.Truncated)
	// Output: 4000 offers, total 4000 split: true truncated: false
}
