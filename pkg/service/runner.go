package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pulljobs/pulljobs/pkg/pipeline"
)

// started is a run that holds its board and fetches in a goroutine of the
// service: done receives Fetch's result once, when it returns.
type started struct {
	run     string
	resumed bool
	done    <-chan error
}

// errStopping refuses work while the service stops.
var errStopping = refuse(CodeUnavailable, "the service is stopping; another replica takes the request")

// start starts spec's run of profile p: Fetch runs in a goroutine that the
// service owns (stopped by its fetch context, waited for by Run), and start
// returns once the run holds its board, or with Fetch's error when it could
// not start it: a *pipeline.BusyError when the board is busy (start never
// waits for it), or ctx's error, the fetch then going on by itself.
func (s *Service) start(ctx context.Context, p *Profile, spec pipeline.RunSpec) (started, error) {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return started{}, errStopping
	}
	type ack struct {
		run     string
		resumed bool
	}
	acks := make(chan ack, 1)
	done := make(chan error, 1)
	log := s.log.With("profile", p.Name, "trigger", spec.Trigger)
	s.fetches.Go(func() {
		begun := time.Now()
		run, err := s.p.Fetch(s.fetchCtx, spec, p.search, pipeline.FetchOptions{
			OnStarted: func(run string, resumed bool) { acks <- ack{run, resumed} },
		})
		switch {
		case err == nil:
			log.Info("fetch done", "run", run, "took", time.Since(begun).Round(time.Millisecond).String())
		case run != "":
			log.Warn("fetch interrupted; the next attempt of the same run resumes it", "run", run, "err", err)
		}
		done <- err
	})
	s.mu.Unlock()
	select {
	case a := <-acks:
		return started{run: a.run, resumed: a.resumed, done: done}, nil
	case err := <-done:
		select {
		case a := <-acks: // started, and already over
			done <- err
			return started{run: a.run, resumed: a.resumed, done: done}, nil
		default:
		}
		if err == nil {
			err = errors.New("fetch returned without starting the run")
		}
		return started{}, err
	case <-ctx.Done():
		return started{}, fmt.Errorf("waiting for run of profile %s to start: %w", p.Name, ctx.Err())
	}
}

// busyRefusal is the refusal of a request for a busy board.
func busyRefusal(be *pipeline.BusyError) *RequestError {
	return refuse(CodeBoardBusy, "board %s is busy with run %s (last sign of life %s ago); try again once it is over",
		be.Board, be.Lease.Run, be.Elapsed.Round(time.Second))
}
