package runstatus_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/natsembed"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// ExampleListRuns reads where the runs of a fleet stand, as a dashboard
// would: it needs a NATS connection only, not the run engine. A NATS
// system where no run ever started has no run and no board.
func ExampleListRuns() {
	dir, _ := os.MkdirTemp("", "runstatus-example-")
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
	js, _ := jetstream.New(nc)

	ctx := context.Background()
	runs, err := runstatus.ListRuns(ctx, js, 20)
	if err != nil {
		log.Fatal(err)
	}
	for _, st := range runs {
		fmt.Println(st.RunID, st.Status, st.Progress, st.Queue)
	}
	boards, err := runstatus.ListBoards(ctx, js)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(runs), "runs,", len(boards), "boards")
	// Output: 0 runs, 0 boards
}
