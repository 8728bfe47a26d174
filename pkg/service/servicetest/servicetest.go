// Package servicetest runs a pulljobs fleet inside a test, in the spirit
// of net/http/httptest: an embedded NATS server, the France Travail and
// HrFlow emulators with clients of each, and pipelines with formatter and
// pusher workers. Everything it starts stops when the test ends.
package servicetest

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/natsembed"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
)

// Options size a Fleet.
type Options struct {
	// Offers is the size of the emulator's synthetic corpus; Seed draws it.
	Offers int
	Seed   uint64
}

// Fleet is one machine's pulljobs for a test. Its board is
// hrflowtest.DefaultBoardKey.
type Fleet struct {
	NATS *natsembed.Server
	// FT is the France Travail emulator, served at FTURL; HRURL serves the
	// HrFlow emulator.
	FT           *francetravailtest.Emulator
	FTURL, HRURL string
	// Search and Board are clients of the emulators, with the sandbox
	// credentials; Offers is the corpus Search finds.
	Search *francetravail.Client
	Board  *hrflow.Client
	Offers []francetravail.Offer

	t testing.TB
}

// New starts a fleet; the test's end stops it.
func New(t testing.TB, o Options) *Fleet {
	t.Helper()
	f := &Fleet{t: t, Offers: francetravailtest.SyntheticOffers(o.Offers, o.Seed, francetravailtest.SyntheticOptions{})}
	corpus, err := francetravailtest.Offers(f.Offers)
	if err != nil {
		t.Fatal(err)
	}
	if f.FT, err = francetravailtest.New(francetravailtest.Config{Corpus: corpus}); err != nil {
		t.Fatal(err)
	}
	ftSrv := httptest.NewServer(f.FT)
	t.Cleanup(ftSrv.Close)
	hr, err := hrflowtest.New(hrflowtest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hrSrv := httptest.NewServer(hr)
	t.Cleanup(hrSrv.Close)
	f.FTURL, f.HRURL = ftSrv.URL, hrSrv.URL
	if f.Search, err = francetravail.NewClient(francetravail.Config{ClientID: francetravailtest.DefaultClientID, ClientSecret: francetravailtest.DefaultClientSecret,
		APIBaseURL: francetravailtest.APIBaseURL(f.FTURL), TokenURL: francetravailtest.TokenURL(f.FTURL), RateLimit: -1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Search.CloseIdleConnections)
	if f.Board, err = hrflow.NewClient(hrflow.Config{APISecret: hrflowtest.DefaultAPISecret, APIUser: hrflowtest.DefaultAPIUser,
		BaseURL: hrflowtest.BaseURL(f.HRURL)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Board.CloseIdleConnections)
	if f.NATS, err = natsembed.Start(natsembed.Options{StoreDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.NATS.Shutdown)
	return f
}

// Conn opens a connection to the fleet's NATS server, closed at the end
// of the test.
func (f *Fleet) Conn() *nats.Conn {
	f.t.Helper()
	nc, err := f.NATS.Connect()
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(nc.Close)
	return nc
}

// JetStream opens JetStream on a connection of its own.
func (f *Fleet) JetStream() jetstream.JetStream {
	f.t.Helper()
	js, err := jetstream.New(f.Conn())
	if err != nil {
		f.t.Fatal(err)
	}
	return js
}

// Pipeline opens a pipeline on a connection of its own, closed at the end
// of the test.
func (f *Fleet) Pipeline(o pipeline.Options) *pipeline.Pipeline {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := pipeline.New(ctx, f.Conn(), o)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(p.Close)
	return p
}

// Workers runs a formatter and a pusher on p until stop, which waits for
// them and may be called more than once; the test's end stops them too.
func (f *Fleet) Workers(p *pipeline.Pipeline) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = p.RunFormatter(ctx); done <- struct{}{} }()
	go func() { _ = p.RunPusher(ctx, f.Board); done <- struct{}{} }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		<-done
	}
	f.t.Cleanup(stop)
	return stop
}
