package pipeline

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/format"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/store"
)

// runInfo is what a worker needs to know about a run.
type runInfo struct {
	spec RunSpec

	once       sync.Once
	chain      *format.Chain
	compileErr error

	// The run's board index, once built or failed: the pushers wait for it.
	mu      sync.Mutex
	index   indexState
	polling chan struct{} // closed when the goroutine polling for the index is done
}

// compiled returns the run's format and logics, compiled once per process.
func (r *runInfo) compiled() (*format.Chain, error) {
	r.once.Do(func() { r.chain, r.compileErr = r.spec.Action.Compile() })
	return r.chain, r.compileErr
}

// runCache keeps the specs of the runs a worker has seen, and which runs are
// finished (sync triggered or run abandoned): their stray redeliveries must
// not touch the board any more, above all once a later run owns it.
type runCache struct {
	ledger *ledger
	// onFinished, when set, is called with each run found finished, once
	// isFinished reports it, from the watcher's goroutine.
	onFinished func(run string)

	mu       sync.Mutex
	runs     map[string]*runInfo
	finished map[string]bool
}

func newRunCache(l *ledger) *runCache {
	return &runCache{ledger: l, runs: map[string]*runInfo{}, finished: map[string]bool{}}
}

func (c *runCache) get(ctx context.Context, run string) (*runInfo, error) {
	c.mu.Lock()
	r, ok := c.runs[run]
	c.mu.Unlock()
	if ok {
		return r, nil
	}
	spec, err := c.ledger.spec(ctx, run)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.runs[run]; ok {
		return r, nil
	}
	r = &runInfo{spec: spec}
	c.runs[run] = r
	return r, nil
}

func (c *runCache) isFinished(run string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.finished[run]
}

// watchFinished follows the runs' final keys until ctx ends. It returns once
// the keys present at start are known, and keeps following in a goroutine
// that wg waits for.
func (c *runCache) watchFinished(ctx context.Context, wg *sync.WaitGroup, logger *slog.Logger) error {
	w, err := store.Watch(ctx, c.ledger.runs, rs.FinalKey("*"), jetstream.MetaOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	ready := make(chan struct{})
	wg.Go(func() {
		defer w.Stop()
		initial := true
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					if initial {
						initial = false
						close(ready)
					}
					continue
				}
				run := strings.TrimSuffix(e.Key(), rs.FinalKey(""))
				c.mu.Lock()
				c.finished[run] = true
				delete(c.runs, run)
				c.mu.Unlock()
				if c.onFinished != nil {
					c.onFinished(run)
				}
			}
		}
	})
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
