package fairshare

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// tokens is a limiter the test feeds by hand: each Wait takes one token.
type tokens chan struct{}

func (t tokens) Wait(ctx context.Context) error {
	select {
	case <-t:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestGateServesALateFlowNext lines up many calls of a big flow at a gate,
// then one of a small flow: the small flow's call gets the next token, and
// the big flow's get the rest in turn.
func TestGateServesALateFlowNext(t *testing.T) {
	lim := make(tokens)
	g := NewGate(lim)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	order := make(chan string, 16)
	var wg sync.WaitGroup
	call := func(flow string) {
		wg.Go(func() {
			if err := g.Wait(WithFlow(ctx, flow, 1)); err != nil {
				t.Errorf("Wait: %v", err)
				return
			}
			order <- flow
		})
	}
	waiting := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := 0
			for _, c := range g.q.Waiting() {
				got += c
			}
			if got == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d calls waiting at the gate, want %d", got, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for range 5 {
		call("big")
	}
	waiting(4) // one of the five holds the gate, waiting for a token
	lim <- struct{}{}
	if got := <-order; got != "big" {
		t.Fatalf("first call %s, want big's", got)
	}
	call("small")
	waiting(4)
	for range 5 {
		lim <- struct{}{}
	}
	wg.Wait()
	close(order)
	var got []string
	for f := range order {
		got = append(got, f)
	}
	if len(got) != 5 || got[1] != "small" {
		t.Errorf("after the small flow's call came: %v, want it second (the gate was held by a big call)", got)
	}
}

// TestGateCancelledCall checks that a call that gives up waiting does not
// keep the gate: the calls behind it still get their tokens.
func TestGateCancelledCall(t *testing.T) {
	lim := make(tokens, 2)
	g := NewGate(lim)
	gone, cancel := context.WithCancel(context.Background())
	holder := make(chan error, 1)
	go func() { holder <- g.Wait(gone) }() // holds the gate: no token yet
	time.Sleep(10 * time.Millisecond)
	behind := make(chan error, 1)
	queued, cancelQueued := context.WithCancel(context.Background())
	go func() { behind <- g.Wait(queued) }()
	time.Sleep(10 * time.Millisecond)
	cancelQueued()
	if err := <-behind; !errors.Is(err, context.Canceled) {
		t.Errorf("a queued call given up: %v, want its context's error", err)
	}
	cancel()
	if err := <-holder; !errors.Is(err, context.Canceled) {
		t.Errorf("the holder given up: %v, want its context's error", err)
	}
	lim <- struct{}{}
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if err := g.Wait(ctx); err != nil {
		t.Errorf("a call after two gave up: %v, want a token", err)
	}
}
