package hrflow_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/retry"
)

// Example upserts a job into a board of the emulator, enriched with text
// parsing, then upserts it again.
func Example() {
	em, err := hrflowtest.New(hrflowtest.Config{}) // the sandbox: one key, one board
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(em)
	defer srv.Close()

	c, err := hrflow.NewClient(hrflow.Config{
		APISecret: hrflowtest.DefaultAPISecret,
		APIUser:   hrflowtest.DefaultAPIUser,
		BaseURL:   hrflowtest.BaseURL(srv.URL),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseIdleConnections()
	ctx := context.Background()
	board := hrflowtest.DefaultBoardKey

	job := hrflow.Job{
		"reference": "204XKQA",
		"name":      "Assistant administratif (H/F)",
		"summary":   "Maîtrise d'Excel, anglais courant, sens de l'organisation.",
	}
	res, err := c.Upsert(ctx, board, job, hrflow.UpsertOptions{EnrichWithParsing: true})
	fmt.Println(res.Action, err)
	res, err = c.Upsert(ctx, board, job, hrflow.UpsertOptions{})
	fmt.Println(res.Action, err)

	stored, err := c.GetJob(ctx, board, "204XKQA")
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range stored["skills"].([]any) {
		skill := s.(map[string]any)
		fmt.Printf("skill %s (%s)\n", skill["name"], skill["type"])
	}
	for _, l := range stored["languages"].([]any) {
		fmt.Println("language", l.(map[string]any)["name"])
	}
	fmt.Println("jobs created:", em.Stats().Count(hrflowtest.RouteCreateJob, 201))
	// Output:
	// created <nil>
	// skipped <nil>
	// skill Excel (hard)
	// skill sens de l'organisation (soft)
	// language anglais
	// jobs created: 1
}

// ExampleClient_CreateRef keeps the updated_at each write answered, and
// tells from one listing of the board which jobs changed since: here, one
// edited by hand.
func ExampleClient_CreateRef() {
	em, err := hrflowtest.New(hrflowtest.Config{})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(em)
	defer srv.Close()
	c, err := hrflow.NewClient(hrflow.Config{
		APISecret: hrflowtest.DefaultAPISecret,
		APIUser:   hrflowtest.DefaultAPIUser,
		BaseURL:   hrflowtest.BaseURL(srv.URL),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseIdleConnections()
	ctx := context.Background()
	board := hrflowtest.DefaultBoardKey

	written := map[string]string{} // reference → updated_at after our write
	for _, ref := range []string{"204XKQA", "204XKQB"} {
		w, err := c.CreateRef(ctx, board, hrflow.Job{"reference": ref, "name": "Job " + ref})
		if err != nil {
			log.Fatal(err)
		}
		written[ref] = w.UpdatedAt
	}
	// Someone else edits one of them on the board.
	if _, err := c.EditJob(ctx, board, hrflow.Job{"reference": "204XKQB", "name": "Edited by hand"}); err != nil {
		log.Fatal(err)
	}
	for ref, err := range c.Jobs(ctx, board, hrflow.ListOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ref.Reference, "changed since our write:", ref.UpdatedAt != written[ref.Reference])
	}
	// Unordered output:
	// 204XKQA changed since our write: false
	// 204XKQB changed since our write: true
}

// ExampleWithTally counts what a caller's calls cost: their attempts, and
// those the API throttled (an emulator serving one call a second here).
func ExampleWithTally() {
	em, err := hrflowtest.New(hrflowtest.Config{Faults: emulator.Config{Capacity: 1}})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(em)
	defer srv.Close()
	c, err := hrflow.NewClient(hrflow.Config{
		APISecret: hrflowtest.DefaultAPISecret, APIUser: hrflowtest.DefaultAPIUser, BaseURL: hrflowtest.BaseURL(srv.URL),
		Retry: retry.Policy{InitialInterval: 600 * time.Millisecond},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseIdleConnections()

	var tally hrflow.Tally
	ctx := hrflow.WithTally(context.Background(), &tally)
	for _, ref := range []string{"A", "B"} {
		if _, err := c.CreateJob(ctx, hrflowtest.DefaultBoardKey, hrflow.Job{"reference": ref, "name": "Job " + ref}); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("throttled:", tally.Throttled() > 0, "attempts beyond the two calls:", tally.Attempts()-2 == tally.Throttled())
	// Output:
	// throttled: true attempts beyond the two calls: true
}
