package fairshare

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// takeN takes n items and counts them by flow, in the order handed out.
func takeN(t *testing.T, q *Queue[int], n int) (counts map[string]int, order []string) {
	t.Helper()
	counts = map[string]int{}
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, f, err := q.Take(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Take: %v", err)
		}
		counts[f]++
		order = append(order, f)
	}
	return counts, order
}

// TestShares offers many items of flows of several weights at once, and
// checks what each flow is handed while all have items waiting.
func TestShares(t *testing.T) {
	tests := []struct {
		name    string
		weights map[string]float64
		take    int
		want    map[string]int
	}{
		{"alone", map[string]float64{"a": 1}, 30, map[string]int{"a": 30}},
		{"equal", map[string]float64{"big": 1, "small": 1}, 40, map[string]int{"big": 20, "small": 20}},
		{"weighted", map[string]float64{"a": 3, "b": 1}, 40, map[string]int{"a": 30, "b": 10}},
		{"no weight reads as 1", map[string]float64{"a": 0, "b": 1}, 20, map[string]int{"a": 10, "b": 10}},
		{"three", map[string]float64{"a": 1, "b": 2, "c": 1}, 40, map[string]int{"a": 10, "b": 20, "c": 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q Queue[int]
			for f, w := range tt.weights {
				for i := range 100 {
					q.Offer(f, w, i)
				}
			}
			got, _ := takeN(t, &q, tt.take)
			for f, want := range tt.want {
				if got[f] != want {
					t.Errorf("flow %s handed %d of %d items, want %d (all: %v)", f, got[f], tt.take, want, got)
				}
			}
		})
	}
}

// TestLateFlowIsServedAtOnce checks that a flow offered after another
// flow's long backlog is handed its items right away, alternately with
// the backlog's, and that a flow back from idle gets no credit for it.
func TestLateFlowIsServedAtOnce(t *testing.T) {
	var q Queue[int]
	for i := range 1000 {
		q.Offer("big", 1, i)
	}
	takeN(t, &q, 500)
	for i := range 3 {
		q.Offer("small", 1, i)
	}
	_, order := takeN(t, &q, 6)
	if fmt.Sprint(order) != "[small big small big small big]" && fmt.Sprint(order) != "[big small big small big small]" {
		t.Errorf("order %v, want small and big alternately", order)
	}
	// small is idle now; big goes on alone, then small comes back: it
	// alternates with big again, not three items in a row to catch up.
	takeN(t, &q, 100)
	for i := range 10 {
		q.Offer("small", 1, i)
	}
	counts, _ := takeN(t, &q, 10)
	if counts["small"] != 5 || counts["big"] != 5 {
		t.Errorf("after idling, small handed %d of 10, want 5: %v", counts["small"], counts)
	}
}

// TestOrderWithinAFlow checks that a flow's items come out in the order
// offered, and that taken closes each item's channel.
func TestOrderWithinAFlow(t *testing.T) {
	var q Queue[int]
	var taken []<-chan struct{}
	for i := range 5 {
		taken = append(taken, q.Offer("a", 1, i))
	}
	for i := range 5 {
		select {
		case <-taken[i]:
			t.Fatalf("item %d marked taken before any Take", i)
		default:
		}
		item, _, err := q.Take(context.Background())
		if err != nil || item != i {
			t.Fatalf("Take = %d, %v; want %d", item, err, i)
		}
		<-taken[i]
	}
}

// TestWithdrawAndForget checks that withdrawn items are never handed out.
func TestWithdrawAndForget(t *testing.T) {
	var q Queue[int]
	q.Offer("a", 1, 1)
	q.Offer("a", 1, 2)
	q.Offer("b", 1, 3)
	if got := q.Withdraw("a"); fmt.Sprint(got) != "[1 2]" {
		t.Errorf("Withdraw = %v, want [1 2]", got)
	}
	if got := q.Waiting(); fmt.Sprint(got) != "map[b:1]" {
		t.Errorf("Waiting = %v, want b's one item", got)
	}
	if got := q.Forget("b"); fmt.Sprint(got) != "[3]" {
		t.Errorf("Forget = %v, want [3]", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := q.Take(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Take of an empty queue = %v, want the context's error", err)
	}
}

// TestConcurrentTakers has producers and takers race, and checks every
// item is handed out exactly once.
func TestConcurrentTakers(t *testing.T) {
	const flows, perFlow, takers = 8, 500, 16
	var q Queue[string]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan string, flows*perFlow)
	var wg sync.WaitGroup
	for range takers {
		wg.Go(func() {
			for {
				item, _, err := q.Take(ctx)
				if err != nil {
					return
				}
				seen <- item
			}
		})
	}
	var producers sync.WaitGroup
	for f := range flows {
		producers.Go(func() {
			for i := range perFlow {
				taken := q.Offer(fmt.Sprint(f), float64(f%3), fmt.Sprintf("%d/%d", f, i))
				if i%7 == 0 {
					<-taken // now and then, wait for an item to go
				}
			}
		})
	}
	producers.Wait()
	got := map[string]bool{}
	for range flows * perFlow {
		select {
		case item := <-seen:
			if got[item] {
				t.Fatalf("item %s handed out twice", item)
			}
			got[item] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("handed out %d of %d items, then nothing", len(got), flows*perFlow)
		}
	}
	cancel()
	wg.Wait()
}

// BenchmarkOfferTake measures the cost of one item through the queue,
// with one flow and with twenty.
func BenchmarkOfferTake(b *testing.B) {
	for _, flows := range []int{1, 20} {
		b.Run(fmt.Sprintf("flows=%d", flows), func(b *testing.B) {
			var q Queue[int]
			ctx := context.Background()
			for i := range flows {
				q.Offer(fmt.Sprint(i), 1, i)
			}
			b.ResetTimer()
			for range b.N {
				_, f, _ := q.Take(ctx)
				q.Offer(f, 1, 0)
			}
		})
	}
}
