// Package fairshare hands out the items of many flows in proportion to the
// flows' weights, whatever order the items arrive in: while two flows have
// items waiting, one of weight 2 is handed two items for each one of a
// flow of weight 1, and a flow alone is handed everything. pulljobs' flows
// are runs, and its items their messages: a run of a million offers does
// not hold back a run of a hundred started after it.
//
// It is stride scheduling (Waldspurger and Weihl, 1995), the policy of a
// weighted fair queue: each flow has a pass that grows by 1/weight with
// every item it is handed, and the waiting flow with the least pass goes
// next (the one that has waited longest, among equals). A flow that had
// nothing waiting comes back at the pass of the last item handed out, not
// lower, so that it cannot make up for the time it was idle. A flow keeps
// its share only while it has items waiting: its producer should keep an
// item or two staged ahead (Offer does not block).
package fairshare

import (
	"context"
	"sync"
)

// DefaultWeight is the weight of a flow offered with none.
const DefaultWeight = 1

// Queue is a fair queue of items of type T. Its zero value is empty and
// ready to use; it must not be copied after first use. Its methods are
// safe for concurrent use.
type Queue[T any] struct {
	mu     sync.Mutex
	flows  map[string]*flow[T]
	pass   float64 // the pass of the last item handed out: the virtual time
	seq    uint64  // orders items among flows of equal pass
	staged int     // items waiting in all flows
	// wake holds a token while items may be waiting; a Take that finds one
	// passes it on, so that one waiting Take wakes per item, not all.
	wake chan struct{}
}

// flow is one flow's waiting items and pass.
type flow[T any] struct {
	pass   float64
	weight float64
	items  []staged[T]
}

// staged is one item waiting, and what tells its producer it was taken.
type staged[T any] struct {
	item  T
	seq   uint64
	taken chan struct{}
}

func (q *Queue[T]) init() {
	if q.flows == nil {
		q.flows = map[string]*flow[T]{}
		q.wake = make(chan struct{}, 1)
	}
}

// Offer stages item for flowKey, a flow of the given weight (DefaultWeight
// when not positive; the latest weight offered counts). It does not block:
// the channel it returns is closed once a Take hands the item out. Items
// of one flow are handed out in the order they were offered.
func (q *Queue[T]) Offer(flowKey string, weight float64, item T) (taken <-chan struct{}) {
	if weight <= 0 {
		weight = DefaultWeight
	}
	q.mu.Lock()
	q.init()
	f := q.flows[flowKey]
	if f == nil {
		f = &flow[T]{pass: q.pass}
		q.flows[flowKey] = f
	}
	if len(f.items) == 0 {
		f.pass = max(f.pass, q.pass) // back from idle: no credit for it
	}
	f.weight = weight
	q.seq++
	s := staged[T]{item: item, seq: q.seq, taken: make(chan struct{})}
	f.items = append(f.items, s)
	q.staged++
	q.mu.Unlock()
	q.signal()
	return s.taken
}

// Take hands out the next item: the first one waiting of the flow with
// the least pass. It waits for one until ctx ends, and then returns ctx's
// error.
func (q *Queue[T]) Take(ctx context.Context) (item T, flowKey string, err error) {
	q.mu.Lock()
	q.init()
	wake := q.wake
	q.mu.Unlock()
	for {
		if item, flowKey, ok := q.take(); ok {
			return item, flowKey, nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			var zero T
			return zero, "", ctx.Err()
		}
	}
}

// take pops the next item, if any is waiting.
func (q *Queue[T]) take() (item T, flowKey string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var next *flow[T]
	for k, f := range q.flows {
		if len(f.items) == 0 {
			continue
		}
		if next == nil || f.pass < next.pass || (f.pass == next.pass && f.items[0].seq < next.items[0].seq) {
			next, flowKey = f, k
		}
	}
	if next == nil {
		return item, "", false
	}
	s := next.items[0]
	next.items[0] = staged[T]{}
	next.items = next.items[1:]
	q.pass = next.pass
	next.pass += 1 / next.weight
	q.staged--
	close(s.taken)
	if q.staged > 0 {
		q.signal() // pass the token on: more items wait
	}
	return s.item, flowKey, true
}

// signal leaves a token for one waiting Take.
func (q *Queue[T]) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Withdraw takes back flowKey's items not handed out yet, oldest first: a
// producer that stops calls it, then deals with them itself.
func (q *Queue[T]) Withdraw(flowKey string) []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	f := q.flows[flowKey]
	if f == nil {
		return nil
	}
	out := make([]T, len(f.items))
	for i, s := range f.items {
		out[i] = s.item
	}
	q.staged -= len(f.items)
	f.items = nil
	return out
}

// Forget withdraws flowKey's items (see Withdraw) and forgets the flow: a
// flow offered again starts anew, at the current pass.
func (q *Queue[T]) Forget(flowKey string) []T {
	items := q.Withdraw(flowKey)
	q.mu.Lock()
	delete(q.flows, flowKey)
	q.mu.Unlock()
	return items
}

// Waiting returns the number of items waiting in each flow that has any.
func (q *Queue[T]) Waiting() map[string]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := map[string]int{}
	for k, f := range q.flows {
		if len(f.items) > 0 {
			out[k] = len(f.items)
		}
	}
	return out
}
