package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/declare"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/retry"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// Durable triggers: a message on pulljobs.trigger.<profile>, with a
// Request as its body, starts a run of the profile. The stream keeps it
// until a replica of `fetcher serve` took it through the durable consumer
// they share, so a trigger published while no replica runs starts its run
// when one comes up; Nats-Msg-Id dedupes a trigger published twice.
//
// A trigger is acknowledged once its run's fetch is over (sealed), not when
// it starts: a replica that dies mid-fetch leaves the trigger to another,
// which resumes the same run, whose id the trigger fixes (see eventRunID).
const (
	TriggersStream       = "PULLJOBS_TRIGGERS"
	TriggerSubjectPrefix = "pulljobs.trigger." // + <profile>
	TriggersConsumer     = "serve"

	// HeaderTick marks the trigger of a schedule's tick (Unix seconds): the
	// tick's claim in the schedules bucket names its run.
	HeaderTick = "Pulljobs-Tick"
	// HeaderProfile names the profile of a dead-lettered trigger.
	HeaderProfile = "Pulljobs-Profile"
	// HeaderCode is the refusal code of a dead-lettered trigger.
	HeaderCode = "Pulljobs-Code"
	// HeaderTriggerMsgID keeps the Nats-Msg-Id of a dead-lettered trigger.
	HeaderTriggerMsgID = "Pulljobs-Trigger-Msg-Id"
	// TriggerStage is the stage of a dead-lettered trigger, on
	// pulljobs.dlq.trigger.<profile>.
	TriggerStage = "trigger"

	triggerAckWait       = 30 * time.Second // kept alive with InProgress meanwhile
	triggerMaxDeliver    = 5
	triggerMaxAckPending = 256
	triggerConcurrency   = 16 // triggers one replica handles at once
	triggerPullWait      = 5 * time.Second
	busyPoll             = time.Second
	natsCallTimeout      = 10 * time.Second
)

// declareTriggers declares the triggers stream and the consumer that every
// replica shares.
func declareTriggers(ctx context.Context, js jetstream.JetStream, s pipeline.Settings) (jetstream.Stream, jetstream.Consumer, error) {
	s = s.WithDefaults()
	st, err := declare.Stream(ctx, js, jetstream.StreamConfig{
		Name:        TriggersStream,
		Description: "pulljobs: requests to run a profile, kept until a fetcher serve takes them",
		Subjects:    []string{TriggerSubjectPrefix + "*"},
		Retention:   jetstream.WorkQueuePolicy,
		MaxAge:      s.Retention,
		Duplicates:  s.DuplicateWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    s.Replicas,
	})
	if err != nil {
		return nil, nil, err
	}
	c, err := declare.Consumer(ctx, st, jetstream.ConsumerConfig{
		Durable:       TriggersConsumer,
		Description:   "pulljobs fetcher serve replicas",
		FilterSubject: TriggerSubjectPrefix + "*",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       triggerAckWait,
		MaxDeliver:    triggerMaxDeliver,
		MaxAckPending: triggerMaxAckPending,
	})
	if err != nil {
		return nil, nil, err
	}
	return st, c, nil
}

// consumeTriggers takes triggers until ctx ends, each handled in a
// goroutine that wg waits for, at most triggerConcurrency at once. It pulls
// one message when a slot is free, so that no trigger waits in this
// replica's buffer while another replica is idle.
func (s *Service) consumeTriggers(ctx context.Context, wg *sync.WaitGroup) {
	slots := make(chan struct{}, triggerConcurrency)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		m, err := s.nextTrigger(ctx)
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return
			}
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
				s.log.Warn("pull a trigger", "err", err)
				_ = retry.Sleep(ctx, busyPoll)
			}
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			s.handleTrigger(ctx, m)
		})
	}
}

func (s *Service) nextTrigger(ctx context.Context) (jetstream.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, triggerPullWait)
	defer cancel()
	return s.triggerCons.Next(jetstream.FetchContext(ctx))
}

// triggerJob is a trigger read and checked.
type triggerJob struct {
	profile *Profile
	spec    pipeline.RunSpec
	tick    int64 // a schedule's tick, 0 for an event
}

// handleTrigger starts the run a trigger asks for, waits for its fetch and
// acknowledges the trigger; or dead-letters a trigger that can never start
// a run. It never panics a replica: a panic dead-letters the trigger.
func (s *Service) handleTrigger(ctx context.Context, m jetstream.Msg) {
	profile := strings.TrimPrefix(m.Subject(), TriggerSubjectPrefix)
	meta, err := m.Metadata()
	if err != nil {
		s.log.Error("trigger without metadata", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	log := s.log.With("profile", profile, "trigger_seq", meta.Sequence.Stream)
	defer func() {
		if v := recover(); v != nil {
			log.Error("trigger handling panicked", "panic", v)
			s.deadLetter(ctx, m, meta, profile, refuse(CodeInternal, "internal error: %v", v))
		}
	}()
	job, err := s.readTrigger(ctx, profile, m, meta)
	if err != nil {
		s.refuseTrigger(ctx, m, meta, profile, err, log)
		return
	}
	log = log.With("run", job.spec.ID, "trigger", job.spec.Trigger)
	s.runTrigger(ctx, m, meta, job, log)
}

// readTrigger checks a trigger and fixes its run's id.
func (s *Service) readTrigger(ctx context.Context, profile string, m jetstream.Msg, meta *jetstream.MsgMetadata) (triggerJob, error) {
	p, err := s.profile(profile)
	if err != nil {
		return triggerJob{}, err
	}
	req, err := ParseRequest(m.Data())
	if err != nil {
		return triggerJob{}, err
	}
	job := triggerJob{profile: p}
	trigger, runID := runstatus.TriggerEvent, eventRunID(meta)
	if h := m.Headers().Get(HeaderTick); h != "" {
		if job.tick, err = strconv.ParseInt(h, 10, 64); err != nil {
			return job, refuse(CodeBadRequest, "%s %q: want Unix seconds", HeaderTick, h)
		}
		c, err := s.sched.claim(ctx, profile, job.tick)
		if err != nil {
			return job, err
		}
		trigger, runID = runstatus.TriggerSchedule, c.RunID
	}
	if job.spec, err = p.RunSpec(req, trigger); err != nil {
		return job, err
	}
	job.spec.ID = runID
	return job, nil
}

// eventRunID derives a trigger's run id from the trigger itself (its time
// and stream sequence), so that every delivery of it names the same run:
// a redelivered trigger resumes or finds its run rather than starting
// another. It sorts by time as pipeline.NewRunID's do.
func eventRunID(meta *jetstream.MsgMetadata) string {
	id := pipeline.NewRunID(meta.Timestamp)
	return fmt.Sprintf("%s-t%x", id[:strings.LastIndexByte(id, '-')], meta.Sequence.Stream)
}

// runTrigger starts the job's run, waiting for a busy board within the
// service's bound, keeps the trigger alive while the run fetches, and
// acknowledges it once fetched.
func (s *Service) runTrigger(ctx context.Context, m jetstream.Msg, meta *jetstream.MsgMetadata, job triggerJob, log *slog.Logger) {
	deadline := time.Now().Add(s.o.WaitBoard)
	waiting := false
	for {
		fetched, err := runstatus.FetchDone(ctx, s.js, job.spec.ID)
		if err != nil {
			s.retryTrigger(ctx, m, meta, job.profile.Name, err, log)
			return
		}
		if fetched {
			log.Info("trigger's run already fetched")
			_ = m.Ack()
			return
		}
		st, err := s.start(ctx, job.profile, job.spec)
		var be *pipeline.BusyError
		switch {
		case err == nil:
			log.Info("run started by trigger", "started_run", st.run, "resumed", st.resumed)
			if job.tick != 0 && st.run != job.spec.ID {
				s.sched.resumedBy(ctx, job.profile.Name, job.tick, st.run, log)
			}
			s.follow(m, st, log)
			return
		case errors.As(err, &be):
			// A board held by this very run (another replica fetches it)
			// is waited for without bound: it ends sealed, or stale and
			// then resumed here.
			if be.Lease.Run != job.spec.ID && time.Now().After(deadline) {
				s.deadLetter(ctx, m, meta, job.profile.Name, refuse(CodeBoardBusy,
					"board %s stayed busy with run %s for longer than the wait bound (%s, --wait-board)", be.Board, be.Lease.Run, s.o.WaitBoard))
				return
			}
			if !waiting {
				log.Info("board busy; the trigger waits", "holder_run", be.Lease.Run, "bound", s.o.WaitBoard.String())
				waiting = true
			}
			_ = m.InProgress()
			if retry.Sleep(ctx, busyPoll) != nil {
				_ = m.Nak() // stopping: another replica takes it
				return
			}
		case ctx.Err() != nil || errors.Is(err, errStopping):
			_ = m.Nak()
			return
		default:
			var re *RequestError
			if errors.As(err, &re) {
				s.refuseTrigger(ctx, m, meta, job.profile.Name, err, log)
				return
			}
			s.retryTrigger(ctx, m, meta, job.profile.Name, err, log)
			return
		}
	}
}

// follow keeps the trigger alive while its run fetches, then acknowledges
// it, or leaves it to another attempt when the fetch was interrupted.
func (s *Service) follow(m jetstream.Msg, st started, log *slog.Logger) {
	t := time.NewTicker(triggerAckWait / 3)
	defer t.Stop()
	for {
		select {
		case err := <-st.done:
			if err != nil {
				log.Warn("trigger's fetch interrupted; another attempt resumes it", "err", err)
				_ = m.NakWithDelay(busyPoll)
				return
			}
			_ = m.Ack()
			return
		case <-t.C:
			_ = m.InProgress()
		}
	}
}

// refuseTrigger dead-letters a trigger refused for good, and retries one
// refused for a reason that may pass.
func (s *Service) refuseTrigger(ctx context.Context, m jetstream.Msg, meta *jetstream.MsgMetadata, profile string, err error, log *slog.Logger) {
	re := asRefusal(err)
	if re.Code == CodeInternal || re.Code == CodeUnavailable {
		s.retryTrigger(ctx, m, meta, profile, err, log)
		return
	}
	s.deadLetter(ctx, m, meta, profile, re)
}

// retryTrigger leaves a trigger to a later delivery, or dead-letters it on
// its last one.
func (s *Service) retryTrigger(ctx context.Context, m jetstream.Msg, meta *jetstream.MsgMetadata, profile string, err error, log *slog.Logger) {
	if ctx.Err() != nil {
		_ = m.Nak()
		return
	}
	if meta.NumDelivered >= triggerMaxDeliver {
		s.deadLetter(ctx, m, meta, profile, refuse(CodeInternal, "gave up after %d attempts: %v", meta.NumDelivered, err))
		return
	}
	log.Warn("trigger failed; retrying", "attempt", meta.NumDelivered, "err", err)
	_ = m.NakWithDelay(time.Duration(meta.NumDelivered) * 2 * busyPoll)
}

// deadLetter moves a trigger to pulljobs.dlq.trigger.<profile> with the
// reason in a header, and terminates it. The body of a trigger refused for
// trying to set a secret or an endpoint is withheld: it may hold one.
func (s *Service) deadLetter(ctx context.Context, m jetstream.Msg, meta *jetstream.MsgMetadata, profile string, re *RequestError) {
	data := m.Data()
	if re.Code == CodeForbidden {
		data = nil
	}
	if err := s.publishDeadLetter(ctx, profile, meta.Sequence.Stream, m.Headers(), data, re); err != nil {
		s.log.Error("dead-letter a trigger; it will be delivered again", "profile", profile, "err", err)
		_ = m.NakWithDelay(busyPoll)
		return
	}
	_ = m.Term()
}

func (s *Service) publishDeadLetter(ctx context.Context, profile string, seq uint64, h nats.Header, data []byte, re *RequestError) error {
	dm := nats.NewMsg(runstatus.DeadLetterSubjectPrefix + TriggerStage + "." + profile)
	dm.Header.Set(runstatus.HeaderStage, TriggerStage)
	dm.Header.Set(runstatus.HeaderReason, re.Description)
	dm.Header.Set(HeaderProfile, profile)
	dm.Header.Set(HeaderCode, re.Code)
	if id := h.Get(jetstream.MsgIDHeader); id != "" {
		dm.Header.Set(HeaderTriggerMsgID, id)
	}
	// Dead-lettering the same trigger twice (a replica dying between the
	// publish and the Term) stores it once.
	dm.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s.%s.%d", TriggerStage, profile, seq))
	dm.Data = data
	ctx, cancel := context.WithTimeout(ctx, natsCallTimeout)
	defer cancel()
	if _, err := s.js.PublishMsg(ctx, dm); err != nil {
		return err
	}
	s.log.Warn("trigger dead-lettered", "profile", profile, "trigger_seq", seq, "code", re.Code, "reason", re.Description)
	return nil
}

// watchGiveUps dead-letters the triggers that the server stopped
// delivering after triggerMaxDeliver attempts that all ended without an
// answer (the replicas that took them died): one replica of the queue
// group handles each advisory.
func (s *Service) watchGiveUps(ctx context.Context) (*nats.Subscription, error) {
	subject := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + TriggersStream + "." + TriggersConsumer
	return s.nc.QueueSubscribe(subject, "pulljobs-serve", func(msg *nats.Msg) {
		var adv struct {
			StreamSeq  uint64 `json:"stream_seq"`
			Deliveries uint64 `json:"deliveries"`
		}
		if err := json.Unmarshal(msg.Data, &adv); err != nil {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, natsCallTimeout)
		defer cancel()
		raw, err := s.triggers.GetMsg(cctx, adv.StreamSeq)
		if err != nil {
			return // acknowledged meanwhile, or expired
		}
		profile := strings.TrimPrefix(raw.Subject, TriggerSubjectPrefix)
		re := refuse(CodeInternal, "no replica finished it in %d deliveries", adv.Deliveries)
		if err := s.publishDeadLetter(cctx, profile, adv.StreamSeq, raw.Header, raw.Data, re); err != nil {
			s.log.Error("dead-letter an exhausted trigger", "profile", profile, "err", err)
			return
		}
		_ = s.triggers.DeleteMsg(cctx, adv.StreamSeq)
	})
}
