// Package payload fits pulljobs' messages into NATS. Offers and jobs are
// JSON of a few kilobytes; a rare one is far larger (a description pasted
// whole), and NATS refuses a message over the server's max_payload (1 MiB
// by default). A payload over compressAbove is compressed with S2, which
// JSON text shrinks to a third or less, and says so in a header; one that
// still does not fit is a *TooLargeError, which no retry cures, naming its
// size. Carrier publishes through fail-overs and fails fast on those.
package payload

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/retry"
	"github.com/pulljobs/pulljobs/pkg/store"
)

// compressAbove is the payload size from which payloads are compressed:
// below it, compressing costs more than it saves, and plain JSON stays
// readable with the nats CLI.
const compressAbove = 64 << 10

// Headers of an encoded message.
const (
	HeaderEncoding = "Pulljobs-Encoding" // "s2" when the payload is compressed
	HeaderSize     = "Pulljobs-Size"     // a payload's size, when it had to be left out
)

// encodingS2 is the HeaderEncoding value of an S2-compressed payload.
const encodingS2 = "s2"

// headerAllowance is room left for a message's subject and headers within
// the server's max payload.
const headerAllowance = 4 << 10

// TooLargeError reports a payload that no retry can carry.
type TooLargeError struct {
	size, compressed int
	max              int64
	cause            error
}

func (e *TooLargeError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("a payload of %d bytes (%d compressed) could not be published: %v", e.size, e.compressed, e.cause)
	}
	return fmt.Sprintf("a payload of %d bytes is %d compressed, over the %d bytes NATS carries (max_payload)", e.size, e.compressed, e.max)
}

// Encode sets m.Data to data, compressed when large, or returns a
// *TooLargeError when it cannot fit in maxPayload.
func Encode(m *nats.Msg, data []byte, maxPayload int64) error {
	m.Header.Del(HeaderEncoding)
	m.Data = data
	if len(data) <= compressAbove {
		return nil
	}
	packed := s2.EncodeBetter(nil, data)
	if int64(len(packed)) > maxPayload-headerAllowance {
		return &TooLargeError{size: len(data), compressed: len(packed), max: maxPayload}
	}
	m.Data = packed
	m.Header.Set(HeaderEncoding, encodingS2)
	return nil
}

// Decode returns a message's payload as it was before Encode.
func Decode(h nats.Header, data []byte) ([]byte, error) {
	switch enc := h.Get(HeaderEncoding); enc {
	case "":
		return data, nil
	case encodingS2:
		out, err := s2.Decode(nil, data)
		if err != nil {
			return data, fmt.Errorf("decompress payload: %w", err)
		}
		return out, nil
	default:
		return data, fmt.Errorf("payload encoding %q: unknown", enc)
	}
}

// permanentPublish reports a publish error that no retry cures: the
// message is too large for the server or the stream.
func permanentPublish(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	return store.IsAPIError(err, jsMessageExceedsMaximum) ||
		strings.Contains(err.Error(), "maximum payload exceeded") || strings.Contains(err.Error(), "message size exceeds maximum")
}

// jsMessageExceedsMaximum is the server's "message size exceeds maximum
// allowed" (a stream's max_msg_size).
const jsMessageExceedsMaximum jetstream.ErrorCode = 10054

// Carrier publishes messages synchronously: it encodes the payload,
// retries what a fail-over explains, and fails fast, with a
// *TooLargeError, on what no retry cures. It is safe for concurrent use.
type Carrier struct {
	js jetstream.JetStream
	nc *nats.Conn
}

// NewCarrier returns a Carrier publishing through js, on nc.
func NewCarrier(js jetstream.JetStream, nc *nats.Conn) *Carrier { return &Carrier{js: js, nc: nc} }

// publishRetry bounds the retries of one publish: NATS may be restarting or
// electing a leader.
var publishRetry = retry.Policy{Name: store.RetryName, InitialInterval: 100 * time.Millisecond, MaxInterval: 5 * time.Second, MaxElapsed: 2 * time.Minute, MaxAttempts: -1}

// PublishTimeout bounds the wait for one publish's acknowledgement.
const PublishTimeout = 30 * time.Second

// Publish encodes m.Data (see Encode) and publishes m, once the server
// stored it.
func (c *Carrier) Publish(ctx context.Context, m *nats.Msg) error {
	size := len(m.Data)
	if err := Encode(m, m.Data, c.nc.MaxPayload()); err != nil {
		return err
	}
	return retry.Do(ctx, publishRetry, func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, PublishTimeout)
		defer cancel()
		_, err := c.js.PublishMsg(actx, m)
		switch {
		case err == nil:
			return nil
		case permanentPublish(err):
			return &TooLargeError{size: size, compressed: len(m.Data), max: c.nc.MaxPayload(), cause: err}
		case ctx.Err() != nil:
			return err
		}
		return store.Transient(err)
	}, nil)
}
