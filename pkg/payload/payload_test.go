package payload

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/natsembed/natstest"
)

// jsonOf returns n bytes of JSON-like text, which S2 compresses well.
func jsonOf(n int) []byte {
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(`{"intitule": "Comptable H/F", "description": "Vous tenez la comptabilité générale"},`)
	}
	return b.Bytes()[:n]
}

// noise returns n bytes that do not compress.
func noise(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{})
	_, _ = r.Read(b)
	return b
}

func TestEncode(t *testing.T) {
	const max = 1 << 20
	tests := []struct {
		name       string
		data       []byte
		compressed bool
		tooLarge   bool
	}{
		{"small, as it is", jsonOf(5 << 10), false, false},
		{"large, compressed", jsonOf(3 << 20), true, false},
		{"large, incompressible", noise(2 << 20), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := nats.NewMsg("s")
			m.Header.Set(HeaderEncoding, "stale")
			err := Encode(m, tt.data, max)
			var tl *TooLargeError
			if got := errors.As(err, &tl); got != tt.tooLarge {
				t.Fatalf("Encode = %v, want too large %v", err, tt.tooLarge)
			}
			if tt.tooLarge {
				if !strings.Contains(err.Error(), "2097152 bytes") {
					t.Errorf("error %q does not name the size", err)
				}
				return
			}
			if got := m.Header.Get(HeaderEncoding) == encodingS2; got != tt.compressed || (!got && m.Header.Get(HeaderEncoding) != "") {
				t.Errorf("encoding header %q, want compressed %v", m.Header.Get(HeaderEncoding), tt.compressed)
			}
			if len(m.Data) > max {
				t.Errorf("encoded %d bytes, over %d", len(m.Data), max)
			}
			back, err := Decode(m.Header, m.Data)
			if err != nil || !bytes.Equal(back, tt.data) {
				t.Errorf("Decode: %d bytes, %v; want the %d bytes encoded", len(back), err, len(tt.data))
			}
		})
	}
	h := nats.Header{}
	h.Set(HeaderEncoding, "zstd")
	if _, err := Decode(h, []byte("x")); err == nil || !strings.Contains(err.Error(), "zstd") {
		t.Errorf("an unknown encoding: %v, want an error naming it", err)
	}
}

// TestCarrier publishes through a real server: a payload that fits is
// stored whole, one that cannot be is refused at once, naming its size.
func TestCarrier(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "P", Subjects: []string{"p"}})
	if err != nil {
		t.Fatal(err)
	}
	c := NewCarrier(js, nc)
	big := jsonOf(4 << 20)
	m := nats.NewMsg("p")
	m.Data = big
	if err := c.Publish(ctx, m); err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := Decode(raw.Header, raw.Data); err != nil || !bytes.Equal(back, big) {
		t.Errorf("stored %d bytes (%v), want the 4 MiB published, whole", len(back), err)
	}
	m = nats.NewMsg("p")
	m.Data = noise(4 << 20)
	var tl *TooLargeError
	if err := c.Publish(ctx, m); !errors.As(err, &tl) {
		t.Errorf("an incompressible 4 MiB: %v, want a *TooLargeError", err)
	}
}
