package fairshare

import (
	"context"
	"sync"
	"sync/atomic"
)

// Limiter paces calls: Wait returns when a call may be made, or with
// ctx's error. *rate.Limiter (golang.org/x/time/rate) is one, and so is
// pulljobs' shared quota (pkg/ratelimit).
type Limiter interface {
	Wait(ctx context.Context) error
}

// Gate shares a Limiter fairly among flows: calls wait their turn in a
// fair Queue (each call's flow and weight come from its context, see
// WithFlow), and one at a time waits on the limiter, so that each call the
// limiter allows goes to the flow that has had least for its weight. A
// flow that arrives while another has a long line of calls waiting gets
// the next call, not the end of that line. Calls of a context without a
// flow share one flow.
//
// A Gate is safe for concurrent use and starts no goroutine.
type Gate struct {
	inner Limiter
	q     Queue[*ticket]
	mu    sync.Mutex
	busy  bool // a ticket holds the gate: it waits on inner
}

// ticket is one call waiting at the gate.
type ticket struct {
	// state goes from waiting to granted (its turn came: it holds the
	// gate) or to abandoned (its caller gave up first: its turn passes on
	// at once), once.
	state atomic.Int32
}

// States of a ticket.
const (
	waiting int32 = iota
	granted
	abandoned
)

// NewGate returns a Gate in front of inner.
func NewGate(inner Limiter) *Gate { return &Gate{inner: inner} }

// Wait waits for the caller's turn, then for inner. It returns inner's
// error, or ctx's.
func (g *Gate) Wait(ctx context.Context) error {
	key, weight := flowOf(ctx)
	t := &ticket{}
	taken := g.q.Offer(key, weight, t)
	g.next()
	select {
	case <-taken:
	case <-ctx.Done():
		if !t.state.CompareAndSwap(waiting, abandoned) {
			g.release() // its turn came as it gave up: pass the gate on
		}
		return ctx.Err()
	}
	defer g.release()
	return g.inner.Wait(ctx)
}

// next hands the gate, if free, to the next ticket whose caller still
// waits.
func (g *Gate) next() {
	for {
		g.mu.Lock()
		if g.busy {
			g.mu.Unlock()
			return
		}
		t, _, ok := g.q.take()
		if !ok {
			g.mu.Unlock()
			return
		}
		if t.state.CompareAndSwap(waiting, granted) {
			g.busy = true
			g.mu.Unlock()
			return
		}
		g.mu.Unlock() // its caller gave up: the next one
	}
}

// release frees the gate and hands it on.
func (g *Gate) release() {
	g.mu.Lock()
	g.busy = false
	g.mu.Unlock()
	g.next()
}

// flowKey is the context key of a call's flow.
type flowKey struct{}

type flowTag struct {
	key    string
	weight float64
}

// WithFlow returns ctx for the calls of flow key, of the given weight, at
// a Gate.
func WithFlow(ctx context.Context, key string, weight float64) context.Context {
	return context.WithValue(ctx, flowKey{}, flowTag{key, weight})
}

// flowOf returns the flow of ctx's calls: "" and DefaultWeight without one.
func flowOf(ctx context.Context) (string, float64) {
	if f, ok := ctx.Value(flowKey{}).(flowTag); ok {
		return f.key, f.weight
	}
	return "", DefaultWeight
}
