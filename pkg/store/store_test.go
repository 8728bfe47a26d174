package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/pulljobs/pulljobs/pkg/natsembed/natstest"
	"github.com/pulljobs/pulljobs/pkg/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// job is a claim's value in these tests.
type job struct {
	Owner string    `json:"owner"`
	At    time.Time `json:"at"`
	Done  bool      `json:"done,omitempty"`
}

func (j job) Holder() string  { return j.Owner }
func (j job) Beat() time.Time { return j.At }
func (j job) Settled() bool   { return j.Done }

func bucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	js := natstest.JetStream(t)
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// TestJSONValues checks Get, Create, Update and Put: a missing key is not
// an error, a second Create loses, and an Update with a stale revision is
// a conflict.
func TestJSONValues(t *testing.T) {
	ctx := context.Background()
	kv := bucket(t)
	var v job
	if _, found, err := store.Get(ctx, kv, "k", &v); err != nil || found {
		t.Fatalf("Get of a missing key = %v, %v; want not found, no error", found, err)
	}
	for i, want := range []bool{true, false} {
		if created, err := store.Create(ctx, kv, "k", job{Owner: fmt.Sprint(i)}); err != nil || created != want {
			t.Fatalf("Create #%d = %v, %v; want %v", i+1, created, err, want)
		}
	}
	rev, found, err := store.Get(ctx, kv, "k", &v)
	if err != nil || !found || v.Owner != "0" {
		t.Fatalf("Get = %+v, %v, %v; want the first Create's value", v, found, err)
	}
	if err := store.Update(ctx, kv, "k", job{Owner: "u"}, rev); err != nil {
		t.Fatal(err)
	}
	if err := store.Update(ctx, kv, "k", job{Owner: "stale"}, rev); !store.IsConflict(err) {
		t.Errorf("Update with a stale revision = %v, want a conflict", err)
	}
	if err := store.Put(ctx, kv, "k", job{Owner: "p"}); err != nil {
		t.Fatal(err)
	}
	if found, err := store.Exists(ctx, kv, "k"); err != nil || !found {
		t.Errorf("Exists = %v, %v; want true", found, err)
	}
	if _, _, err := store.Get(ctx, kv, "k", &struct{ Owner int }{}); err == nil {
		t.Error("Get into a value of the wrong shape: no error")
	}
}

// TestClaim checks who wins a claim: the first to create it, the same
// holder again, a taker-over of a silent holder; not a newcomer against a
// live holder or a settled job.
func TestClaim(t *testing.T) {
	const ttl = time.Minute
	now := time.Now()
	tests := []struct {
		name    string
		held    *job // nil: no key yet
		mine    job
		wantWon bool
		wantCur string // the holder the key names afterwards
	}{
		{"first", nil, job{Owner: "a", At: now}, true, "a"},
		{"its own, again", &job{Owner: "a", At: now}, job{Owner: "a", At: now}, true, "a"},
		{"a live holder", &job{Owner: "a", At: now}, job{Owner: "b", At: now}, false, "a"},
		{"a silent holder", &job{Owner: "a", At: now.Add(-2 * ttl)}, job{Owner: "b", At: now}, true, "b"},
		{"a settled job", &job{Owner: "a", At: now.Add(-2 * ttl), Done: true}, job{Owner: "b", At: now}, false, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			kv := bucket(t)
			if tt.held != nil {
				if err := store.Put(ctx, kv, "k", *tt.held); err != nil {
					t.Fatal(err)
				}
			}
			won, cur, err := store.Claim(ctx, kv, "k", tt.mine, ttl)
			if err != nil || won != tt.wantWon || cur.Owner != tt.wantCur {
				t.Errorf("Claim = %v, %+v, %v; want won %v, held by %s", won, cur, err, tt.wantWon, tt.wantCur)
			}
			var stored job
			if _, _, err := store.Get(ctx, kv, "k", &stored); err != nil || stored.Owner != tt.wantCur {
				t.Errorf("the key holds %+v (%v), want %s", stored, err, tt.wantCur)
			}
		})
	}
}

// TestKeepClaim checks that the holder's heartbeat goes on, and that it
// stops with ErrClaimLost once another process holds the key.
func TestKeepClaim(t *testing.T) {
	const ttl = 200 * time.Millisecond
	ctx := context.Background()
	kv := bucket(t)
	start := time.Now().Add(-time.Hour)
	if err := store.Put(ctx, kv, "k", job{Owner: "a", At: start}); err != nil {
		t.Fatal(err)
	}
	kctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		store.KeepClaim(kctx, cancel, kv, "k", "a", ttl, func(j *job) { j.At = time.Now() })
	}()
	natstest.Eventually(t, 10*time.Second, "a heartbeat", func() bool {
		var j job
		_, _, err := store.Get(ctx, kv, "k", &j)
		return err == nil && j.At.After(start)
	})
	if err := store.Put(ctx, kv, "k", job{Owner: "b", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("KeepClaim did not stop once another process held the key")
	}
	if !errors.Is(context.Cause(kctx), store.ErrClaimLost) {
		t.Errorf("cause %v, want ErrClaimLost", context.Cause(kctx))
	}
}

// TestReadStream checks that it reads every message on its filters up to
// the last one stored when it started, in order, and stops at fn's error.
func TestReadStream(t *testing.T) {
	ctx := context.Background()
	js := natstest.JetStream(t)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 600 {
		if _, err := js.Publish(ctx, fmt.Sprintf("s.%d", i%3), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	err = store.ReadStream(ctx, s, []string{"s.0", "s.2"}, false, func(m jetstream.Msg) error {
		got = append(got, string(m.Data()))
		return nil
	})
	if err != nil || len(got) != 400 || got[0] != "0" || got[1] != "2" || got[399] != "599" {
		t.Errorf("read %d messages (%v…), %v; want 400 of s.0 and s.2 in order", len(got), got[:min(3, len(got))], err)
	}
	stop := errors.New("stop")
	n := 0
	err = store.ReadStream(ctx, s, []string{"s.>"}, true, func(jetstream.Msg) error {
		if n++; n == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 10 {
		t.Errorf("stopped after %d with %v, want 10 with fn's error", n, err)
	}
	if c, err := store.Count(ctx, s, "s.1"); err != nil || c != 200 {
		t.Errorf("Count(s.1) = %d, %v; want 200", c, err)
	}
	if c, err := store.CountIn(ctx, js, "NONE", ">"); err != nil || c != 0 {
		t.Errorf("CountIn of a missing stream = %d, %v; want 0", c, err)
	}
}
