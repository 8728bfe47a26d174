package ratelimit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/declare"
)

const (
	// Bucket is the key-value bucket of the shared curves and holds, one
	// key per limiter name.
	Bucket = "pulljobs_ratelimit"
	// stateTTL forgets a curve that no backoff rewrote for that long: a
	// fleet that comes back after a pause starts again from its start
	// rate, not from a rate learned on another day.
	stateTTL = time.Hour
	// refreshEvery is how old the state a limiter acts on may be: it reads
	// the bucket again at most that often, so that a backoff or a hold
	// reaches every replica within it.
	refreshEvery = 200 * time.Millisecond
	// touchAfter is the age at which a limiter in use writes the curve
	// again as it is, so that a fleet at work does not forget it.
	touchAfter = stateTTL / 2
	// maxHold bounds a Retry-After that a limiter obeys on behalf of every
	// replica.
	maxHold = 5 * time.Minute
	// casTries bounds the compare-and-set attempts of one change.
	casTries = 5
)

// sharedState is a curve kept under one key of Bucket, as this process
// last read it. Its methods are safe for concurrent use.
type sharedState struct {
	kv  jetstream.KeyValue
	key string
	now func() time.Time

	mu      sync.Mutex
	cur     curve
	readAt  time.Time // when cur was read; the zero time for never
	reading bool      // a read is under way
}

// openState declares the bucket and returns the state under key.
func openState(ctx context.Context, js jetstream.JetStream, key string, now func() time.Time) (*sharedState, error) {
	kv, err := declare.KeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "pulljobs: the shared state of adaptive rate limits and of Retry-After holds",
		TTL:         stateTTL,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, err
	}
	return &sharedState{kv: kv, key: key, now: now}, nil
}

// get returns the state, read again when the copy is older than
// refreshEvery; a state written touchAfter ago or more is written again as
// it is. A failed read leaves the copy as it was: NATS trouble shows in the
// calls' counters, not here.
func (s *sharedState) get(ctx context.Context) curve {
	s.mu.Lock()
	if s.reading || s.now().Sub(s.readAt) < refreshEvery {
		c := s.cur
		s.mu.Unlock()
		return c
	}
	s.reading = true
	s.mu.Unlock()
	c, rev, written, err := s.read(ctx)
	if err == nil && rev > 0 && time.Since(written) >= touchAfter {
		if b, err := json.Marshal(c); err == nil {
			_, _ = s.kv.Update(ctx, s.key, b, rev) // lost to a change: as good
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reading = false
	if err == nil {
		s.cur, s.readAt = c, s.now()
	}
	return s.cur
}

// cached returns the state as last read, without reading it.
func (s *sharedState) cached() curve {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// read reads the state from the bucket, its revision and when it was
// written; a key not there is the zero curve at revision 0.
func (s *sharedState) read(ctx context.Context) (c curve, rev uint64, written time.Time, err error) {
	e, err := s.kv.Get(ctx, s.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return curve{}, 0, time.Time{}, nil
	}
	if err != nil {
		return curve{}, 0, time.Time{}, err
	}
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return curve{}, 0, time.Time{}, fmt.Errorf("rate limit state %s: %w", s.key, err)
	}
	return c, e.Revision(), e.Created(), nil
}

// change applies f to the state with compare-and-set, reading it again
// when another process changed it meanwhile, until f says there is nothing
// to change or the change is written. It keeps what it wrote or read as
// the copy.
func (s *sharedState) change(ctx context.Context, f func(curve) (curve, bool)) error {
	for range casTries {
		cur, rev, _, err := s.read(ctx)
		if err != nil {
			return err
		}
		next, ok := f(cur)
		if !ok {
			s.keep(cur)
			return nil
		}
		b, err := json.Marshal(next)
		if err != nil {
			return err
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, s.key, b)
		} else {
			_, err = s.kv.Update(ctx, s.key, b, rev)
		}
		if err == nil {
			s.keep(next)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("rate limit state %s: %w", s.key, err)
		}
	}
	return fmt.Errorf("rate limit state %s: changed by others %d times in a row", s.key, casTries)
}

func (s *sharedState) keep(c curve) {
	s.mu.Lock()
	s.cur, s.readAt = c, s.now()
	s.mu.Unlock()
}
