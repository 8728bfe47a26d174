package pipeline

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/boardindex"
	"github.com/pulljobs/pulljobs/pkg/natsembed/natstest"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
)

// TestStagesDeclareWhatTheyUse checks what a process opened for some
// stages declares on a fresh server: what those stages use and nothing
// else (the NATS permissions of each role grant no more), and that the
// methods of the stages left out refuse to run.
func TestStagesDeclareWhatTheyUse(t *testing.T) {
	kv := func(b string) string { return "KV_" + b }
	tests := []struct {
		stages  Stages
		streams []string
	}{
		{StageFetch, []string{rs.OffersStream, rs.JobsStream, rs.RecordsStream, rs.DeadLetterStream, kv(rs.RunsBucket), kv(rs.LeasesBucket), kv(rs.BoardsBucket)}},
		{StageFormat, []string{rs.OffersStream, rs.JobsStream, rs.RecordsStream, rs.DeadLetterStream, kv(rs.RunsBucket), kv(rs.LeasesBucket)}},
		{StagePush, []string{rs.JobsStream, rs.RecordsStream, rs.DeadLetterStream, kv(rs.RunsBucket), kv(rs.LeasesBucket), kv(rs.BoardsBucket), boardindex.Stream}},
		{0, []string{rs.OffersStream, rs.JobsStream, rs.RecordsStream, rs.DeadLetterStream, kv(rs.RunsBucket), kv(rs.LeasesBucket), kv(rs.BoardsBucket), boardindex.Stream}},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		srv := natstest.Server(t)
		nc := natstest.Connect(t, srv)
		p, err := New(ctx, nc, Options{Settings: testSettings, Stages: tt.stages})
		if err != nil {
			t.Fatalf("stages %b: %v", tt.stages, err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		// Consumers are each run's, made when it starts: none yet.
		streams, consumers := topology(ctx, t, js)
		slices.Sort(tt.streams)
		if !slices.Equal(streams, tt.streams) || len(consumers) > 0 {
			t.Errorf("stages %b declared streams %q and consumers %q,\nwant %q and none", tt.stages, streams, consumers, tt.streams)
		}
		all := tt.stages == 0
		for _, c := range []struct {
			stage Stages
			call  func() error
		}{
			{StageFetch, func() error { _, err := p.Fetch(ctx, spec(), nil, FetchOptions{}); return err }},
			{StageFetch, func() error { _, err := p.Wait(ctx, "run1", nil); return err }},
			{StageFormat, func() error { return p.RunFormatter(ctx) }},
			{StagePush, func() error { return p.RunPusher(ctx, nil) }},
		} {
			if all || tt.stages.has(c.stage) {
				continue
			}
			if err := c.call(); !errors.Is(err, ErrStageNotOpened) {
				t.Errorf("stages %b: a method of stage %b: %v, want ErrStageNotOpened", tt.stages, c.stage, err)
			}
		}
		p.Close()
		cancel()
	}
}

// topology lists the streams and the durable consumers on the server, sorted.
func topology(ctx context.Context, t *testing.T, js jetstream.JetStream) (streams, consumers []string) {
	t.Helper()
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		streams = append(streams, name)
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for c := range s.ConsumerNames(ctx).Name() {
			consumers = append(consumers, name+"/"+c)
		}
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(streams)
	slices.Sort(consumers)
	return streams, consumers
}

// TestRunAcrossStageProcesses runs a run with each stage in a process of its
// own, each opened for its stage only: together they declare what a run
// needs, whichever starts first.
func TestRunAcrossStageProcesses(t *testing.T) {
	offers := synthetic(40, 5)
	e := newEnv(t, offers)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	open := func(stages Stages) *Pipeline {
		t.Helper()
		p, err := New(ctx, natstest.Connect(t, e.srv), Options{Settings: testSettings, Logger: logger(t), Stages: stages})
		if err != nil {
			t.Fatalf("stages %b: %v", stages, err)
		}
		t.Cleanup(p.Close)
		return p
	}
	// The pusher first, then the formatter, then the fetcher: the reverse
	// of the flow, so that none finds what it reads declared by another.
	pusher, formatter, fetcher := open(StagePush), open(StageFormat), open(StageFetch)
	var wg sync.WaitGroup
	workers, stop := context.WithCancel(context.Background())
	wg.Go(func() {
		if err := pusher.RunPusher(workers, e.hrc); err != nil {
			t.Errorf("pusher: %v", err)
		}
	})
	wg.Go(func() {
		if err := formatter.RunFormatter(workers); err != nil {
			t.Errorf("formatter: %v", err)
		}
	})
	defer func() { stop(); wg.Wait() }()
	r := e.run(fetcher, spec(), nil)
	if r.Status != rs.StatusSuccess || r.Events.Created != len(offers) {
		t.Errorf("run: %s %+v, want success with %d created", r.Status, r.Events, len(offers))
	}
}
