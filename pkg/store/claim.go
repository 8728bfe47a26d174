package store

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A claim is a key that says which process does a job that must be done
// once (build a run's index, fetch it, sync it): the first to create the
// key does it and keeps a heartbeat in it; if the heartbeat goes stale,
// another process takes the job over. Once the job is done, the key says
// so, and nobody claims it again.

// Claimable is a claim's value.
type Claimable interface {
	// Holder names the process (and attempt) that holds the claim.
	Holder() string
	// Beat is the holder's last sign of life.
	Beat() time.Time
	// Settled reports a job done for good: no claim any more.
	Settled() bool
}

// Claim tries to make mine the holder of key. It wins when it creates the
// key, when the key is its own already (a create retried after its answer
// was lost), or when it takes over a holder silent for longer than ttl. It
// loses to a live holder or a settled job, and returns what the key holds.
func Claim[T Claimable](ctx context.Context, kv jetstream.KeyValue, key string, mine T, ttl time.Duration) (won bool, cur T, err error) {
	for {
		created, err := Create(ctx, kv, key, mine)
		if err != nil {
			return false, cur, err
		}
		if created {
			return true, mine, nil
		}
		var held T
		rev, found, err := Get(ctx, kv, key, &held)
		switch {
		case err != nil:
			return false, held, err
		case !found:
			continue // deleted meanwhile: create it
		case held.Holder() == mine.Holder():
			return true, held, nil
		case held.Settled(), time.Since(held.Beat()) <= ttl:
			return false, held, nil
		}
		if err := Update(ctx, kv, key, mine, rev); err != nil {
			if IsConflict(err) {
				continue
			}
			return false, held, err
		}
		return true, mine, nil
	}
}

// ErrClaimLost is the cause of a context cancelled because another process
// took the claim over.
var ErrClaimLost = errors.New("another process took the job over")

// KeepClaim refreshes the heartbeat of key, held by owner, every ttl/4
// until ctx ends; beat sets the new heartbeat in the value. When another
// process holds the key, it cancels with ErrClaimLost and returns. Errors
// of NATS only delay it. The claim's holder runs it in a goroutine it
// waits for.
func KeepClaim[T Claimable](ctx context.Context, cancel context.CancelCauseFunc, kv jetstream.KeyValue, key, owner string, ttl time.Duration, beat func(*T)) {
	tick := time.NewTicker(ttl / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var cur T
		rev, found, err := Get(ctx, kv, key, &cur)
		if err != nil || !found {
			continue // a fail-over: the next tick tries again, well within ttl
		}
		if cur.Holder() != owner {
			cancel(ErrClaimLost)
			return
		}
		beat(&cur)
		// A conflict or a fail-over: the next tick reads again.
		_ = Update(ctx, kv, key, cur, rev)
	}
}
