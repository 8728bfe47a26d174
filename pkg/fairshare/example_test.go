package fairshare_test

import (
	"context"
	"fmt"

	"github.com/pulljobs/pulljobs/pkg/fairshare"
)

// Two flows offer items at once, one of weight 2: while both have items
// waiting, it is handed two items for each one of the other.
func Example() {
	var q fairshare.Queue[string]
	for i := range 4 {
		q.Offer("nationwide", 1, fmt.Sprintf("n%d", i))
		q.Offer("urgent", 2, fmt.Sprintf("u%d", i))
	}
	for range 6 {
		item, flow, _ := q.Take(context.Background())
		fmt.Println(flow, item)
	}
	// Output:
	// nationwide n0
	// urgent u0
	// urgent u1
	// nationwide n1
	// urgent u2
	// urgent u3
}
