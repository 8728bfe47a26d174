package declare

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/pulljobs/pulljobs/pkg/natsembed/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConcurrentAndChanged declares the same topology from many goroutines
// at once, as a fleet starting together does, then changes it.
func TestConcurrentAndChanged(t *testing.T) {
	js := natstest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	scfg := jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, MaxAge: time.Hour, Storage: jetstream.FileStorage}
	ccfg := jetstream.ConsumerConfig{Durable: "c", FilterSubject: "s.>", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 10 * time.Second, MaxDeliver: 3, MaxAckPending: 10}
	kcfg := jetstream.KeyValueConfig{Bucket: "b", TTL: time.Hour, Storage: jetstream.FileStorage}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			s, err := Stream(ctx, js, scfg)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := Consumer(ctx, s, ccfg); err != nil {
				t.Error(err)
			}
			if _, err := KeyValue(ctx, js, kcfg); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	scfg.MaxAge = 2 * time.Hour
	s, err := Stream(ctx, js, scfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 2*time.Hour {
		t.Errorf("max age after a change = %v, want 2h", got)
	}
	ccfg.MaxDeliver = 5
	c, err := Consumer(ctx, s, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CachedInfo().Config.MaxDeliver; got != 5 {
		t.Errorf("max deliver after a change = %d, want 5", got)
	}
	kcfg.TTL = 2 * time.Hour
	kv, err := KeyValue(ctx, js, kcfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != 2*time.Hour {
		t.Errorf("bucket ttl after a change = %v, want 2h", st.TTL())
	}
}
