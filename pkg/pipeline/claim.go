package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A claim is a key of the runs bucket that says which process does a job
// that must be done once (build a run's index, fetch it, sync it): the
// first to create the key does it and keeps a heartbeat in it; if the
// heartbeat goes stale, another process takes the job over. Once the job is
// done, the key says so, and nobody claims it again.

// claimable is a claim's value.
type claimable interface {
	// holder names the process (and attempt) that holds the claim.
	holder() string
	// beat is the holder's last sign of life.
	beat() time.Time
	// settled reports a job done for good: no claim any more.
	settled() bool
}

func (s indexState) holder() string  { return s.Owner }
func (s indexState) beat() time.Time { return s.Heartbeat }
func (s indexState) settled() bool   { return s.done() }

func (f final) holder() string  { return f.Owner }
func (f final) beat() time.Time { return f.Heartbeat }
func (f final) settled() bool   { return f.Abandoned != "" }

// fetchClaim is <run>.fetch: the process fetching the run.
type fetchClaim struct {
	// Owner names the fetching process; Heartbeat is its last sign of life
	// (UTC).
	Owner     string    `json:"owner"`
	Heartbeat time.Time `json:"heartbeat"`
}

func (f fetchClaim) holder() string  { return f.Owner }
func (f fetchClaim) beat() time.Time { return f.Heartbeat }
func (f fetchClaim) settled() bool   { return false }

// claim tries to make mine the holder of key. It wins when it creates the
// key, when the key is its own already (a create retried after its answer
// was lost), or when it takes over a holder silent for longer than ttl. It
// loses to a live holder or a settled job, and returns what the key holds.
func claim[T claimable](ctx context.Context, kv jetstream.KeyValue, key string, mine T, ttl time.Duration) (won bool, cur T, err error) {
	for {
		created, err := createJSON(ctx, kv, key, mine)
		if err != nil {
			return false, cur, err
		}
		if created {
			return true, mine, nil
		}
		var held T
		rev, err := getJSON(ctx, kv, key, &held)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return false, held, err
		}
		switch {
		case held.holder() == mine.holder():
			return true, held, nil
		case held.settled(), time.Since(held.beat()) <= ttl:
			return false, held, nil
		}
		if err := updateJSON(ctx, kv, key, mine, rev); err != nil {
			if isConflict(err) {
				continue
			}
			return false, held, err
		}
		return true, mine, nil
	}
}

// errClaimLost is the cause of a context cancelled because another process
// took the claim over.
var errClaimLost = errors.New("another process took the job over")

// keepClaim refreshes the heartbeat of key, held by owner, every ttl/4
// until ctx ends; beat sets the new heartbeat in the value. When another
// process holds the key, it cancels with errClaimLost and returns. Errors
// of NATS only delay it. It is run by the claim's holder in a goroutine
// it waits for.
func keepClaim[T claimable](ctx context.Context, cancel context.CancelCauseFunc, kv jetstream.KeyValue, key, owner string, ttl time.Duration, beat func(*T)) {
	tick := time.NewTicker(ttl / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var cur T
		rev, err := getJSON(ctx, kv, key, &cur)
		if err != nil {
			continue // a fail-over: the next tick tries again, well within ttl
		}
		if cur.holder() != owner {
			cancel(errClaimLost)
			return
		}
		beat(&cur)
		// A conflict or a fail-over: the next tick reads again.
		_ = updateJSON(ctx, kv, key, cur, rev)
	}
}
