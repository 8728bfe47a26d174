package ratelimit_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/natsembed"
	"github.com/pulljobs/pulljobs/pkg/ratelimit"
)

// ExampleNewAdaptive paces calls at a rate every replica on the NATS system
// shares and learns: Wait before a call, Observe its answer. An hrflow.Client
// whose Config.Limiter is the limiter does both itself.
func ExampleNewAdaptive() {
	dir, err := os.MkdirTemp("", "ratelimit-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := natsembed.Start(natsembed.Options{StoreDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	l, err := ratelimit.NewAdaptive(ctx, js, "hrflow", ratelimit.AdaptiveOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("starts at %.0f calls/s\n", l.Rate())
	for range 3 {
		if err := l.Wait(ctx); err != nil {
			log.Fatal(err)
		}
		// ... the call, then what it answered:
		l.Observe(ctx, "POST /job/indexing", 201, 40*time.Millisecond, 0)
	}
	// Output:
	// starts at 10 calls/s
}
