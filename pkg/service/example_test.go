package service_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pulljobs/pulljobs/pkg/natsembed"
	"github.com/pulljobs/pulljobs/pkg/service"
)

// Example serves a directory of profiles, as fetcher serve does, on an
// embedded NATS server, and asks it for a run of a profile it does not
// have.
func Example() {
	dir, _ := os.MkdirTemp("", "pulljobs-serve-")
	defer os.RemoveAll(dir)
	profiles := filepath.Join(dir, "profiles")
	_ = os.Mkdir(profiles, 0o700)
	_ = os.WriteFile(filepath.Join(profiles, "annecy.yaml"), []byte(`
origin_parameters:
  client_id: my-app
  client_secret: s3cret
  departement: "74"
target_parameters:
  board_key: 0123456789abcdef0123456789abcdef01234567
schedule:
  cron: "0 6 * * 1-5"
  timezone: Europe/Paris
`), 0o600)

	srv, err := natsembed.Start(natsembed.Options{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	nc, _ := srv.Connect()
	defer nc.Close()

	ctx, stop := context.WithCancel(context.Background())
	s, err := service.New(ctx, nc, service.Options{ProfilesDir: profiles})
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	var reply *nats.Msg
	for reply == nil { // until the service answers
		reply, _ = nc.Request(service.RunSubjectPrefix+"chambery", []byte(`{}`), time.Second)
	}
	fmt.Println(reply.Header.Get("Nats-Service-Error-Code"), reply.Header.Get("Nats-Service-Error"))

	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	s.Close()
	// Output: 404 unknown profile "chambery" (profiles: annecy)
}
