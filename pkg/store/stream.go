package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Count returns the number of messages of s on the subjects matching
// filter, which the server counts without sending them.
func Count(ctx context.Context, s jetstream.Stream, filter string) (int, error) {
	var info *jetstream.StreamInfo
	err := Retry(ctx, func(ctx context.Context) error {
		var err error
		info, err = s.Info(ctx, jetstream.WithSubjectFilter(filter))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", filter, err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n, nil
}

// CountIn is Count on the stream named stream; a stream that does not
// exist yet has no message.
func CountIn(ctx context.Context, js jetstream.JetStream, stream, filter string) (int, error) {
	var s jetstream.Stream
	err := Retry(ctx, func(ctx context.Context) error {
		var err error
		s, err = js.Stream(ctx, stream)
		return err
	})
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("count %s on %s: %w", filter, stream, err)
	}
	return Count(ctx, s, filter)
}

// ReadBatch is how many messages ReadStream pulls at once.
const ReadBatch = 256

// ReadStream calls fn with each message of s on filters, in order, up to
// the last one stored when it started, and stops at fn's first error. It
// pulls them ReadBatch at a time (a watcher would take them as fast as the
// server sends them, tens of megabytes for a nationwide board), and
// deletes its consumer when done: an ordered consumer stopped lingers on
// the server for minutes, and readers such as a refresh of the board
// index make many.
func ReadStream(ctx context.Context, s jetstream.Stream, filters []string, headersOnly bool, fn func(jetstream.Msg) error) error {
	var si *jetstream.StreamInfo
	err := Retry(ctx, func(ctx context.Context) error {
		var err error
		si, err = s.Info(ctx)
		return err
	})
	if err != nil {
		return err
	}
	last := si.State.LastSeq
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: filters, HeadersOnly: headersOnly})
	if err != nil {
		return err
	}
	defer func() {
		if ci := cons.CachedInfo(); ci != nil {
			_ = s.DeleteConsumer(context.WithoutCancel(ctx), ci.Name)
		}
	}()
	info, err := cons.Info(ctx)
	if err != nil {
		return err
	}
	if info.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(ReadBatch))
	if err != nil {
		return err
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return err
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		if meta.Sequence.Stream > last {
			return nil
		}
		if err := fn(m); err != nil {
			return err
		}
		if meta.NumPending == 0 || meta.Sequence.Stream == last {
			return nil
		}
	}
}

// Last returns the last message of s on subject, nil when there is none.
func Last(ctx context.Context, s jetstream.Stream, subject string) (*jetstream.RawStreamMsg, error) {
	var m *jetstream.RawStreamMsg
	err := Retry(ctx, func(ctx context.Context) error {
		var err error
		m, err = s.GetLastMsgForSubject(ctx, subject)
		return err
	})
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", subject, err)
	}
	return m, nil
}

// Purge removes the messages of s on filter (below seq, when seq is not 0).
func Purge(ctx context.Context, s jetstream.Stream, filter string, seq uint64) error {
	opts := []jetstream.StreamPurgeOpt{jetstream.WithPurgeSubject(filter)}
	if seq > 0 {
		opts = append(opts, jetstream.WithPurgeSequence(seq))
	}
	return Retry(ctx, func(ctx context.Context) error { return s.Purge(ctx, opts...) })
}
