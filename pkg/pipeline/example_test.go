package pipeline_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"os"

	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/natsembed"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
)

// Example runs one pull_jobs run in-process, as a program that embeds the
// pipeline would: an embedded NATS server, a formatter and a pusher worker,
// and a fetch. The emulators stand in for France Travail and HrFlow.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "pulljobs-example-")
	defer os.RemoveAll(dir)

	corpus, _ := francetravailtest.Offers(francetravailtest.SyntheticOffers(25, 1, francetravailtest.SyntheticOptions{}))
	ft, _ := francetravailtest.New(francetravailtest.Config{Corpus: corpus})
	ftSrv := httptest.NewServer(ft)
	defer ftSrv.Close()
	hr, _ := hrflowtest.New(hrflowtest.Config{})
	hrSrv := httptest.NewServer(hr)
	defer hrSrv.Close()

	search, _ := francetravail.NewClient(francetravail.Config{
		ClientID: francetravailtest.DefaultClientID, ClientSecret: francetravailtest.DefaultClientSecret,
		APIBaseURL: francetravailtest.APIBaseURL(ftSrv.URL), TokenURL: francetravailtest.TokenURL(ftSrv.URL),
	})
	defer search.CloseIdleConnections()
	board, _ := hrflow.NewClient(hrflow.Config{
		APISecret: hrflowtest.DefaultAPISecret, APIUser: hrflowtest.DefaultAPIUser, BaseURL: hrflowtest.BaseURL(hrSrv.URL),
	})
	defer board.CloseIdleConnections()

	srv, err := natsembed.Start(natsembed.Options{StoreDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	nc, _ := srv.Connect()
	defer nc.Close()
	p, err := pipeline.New(ctx, nc, pipeline.Options{Exclusive: true})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	workers, stop := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { p.RunFormatter(workers); done <- struct{}{} }()
	go func() { p.RunPusher(workers, board); done <- struct{}{} }()
	defer func() { stop(); <-done; <-done }()

	run, err := p.Fetch(ctx, pipeline.RunSpec{
		BoardKey:     hrflowtest.DefaultBoardKey,
		Sync:         true,
		SyncMaxShare: pipeline.DefaultSyncMaxShare,
		Action:       format.Spec{Format: format.FormatSpec{Name: format.NamePoleEmploi}},
	}, search, pipeline.FetchOptions{})
	if err != nil {
		log.Fatal(err)
	}
	r, err := p.Wait(ctx, run, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Status, "read", r.Events.ReadSuccess, "created", r.Events.Created, "sync performed", r.Sync.Performed)
	// Output: success read 25 created 25 sync performed true
}
