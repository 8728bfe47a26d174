package telemetry_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/pulljobs/pulljobs/pkg/telemetry"
)

// A binary installs the SDK once, serves its metrics and probes, says when
// it is ready, and flushes its spans before it exits.
func Example() {
	ctx, stop := context.WithCancel(context.Background())
	tel, err := telemetry.Start(ctx, telemetry.Options{ServiceName: "pulljobs-pusher", Metrics: true})
	if err != nil {
		log.Fatal(err)
	}
	defer tel.Shutdown(context.Background()) // flushes the spans

	srv, err := telemetry.Listen("127.0.0.1:0", tel.MetricsHandler())
	if err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ctx); err != nil {
			log.Print(err)
		}
	})
	defer wg.Wait()
	defer stop()

	base := "http://" + srv.Addr().String()
	fmt.Println(get(base + "/readyz"))
	srv.SetReady(func() error { return nil }) // NATS connected, topology declared
	fmt.Println(get(base + "/readyz"))
	// Output:
	// 503 not ready: starting: NATS not connected or topology not declared yet
	// 200 ok
}

// An API client's calls are counted by route template, so that ids and
// queries never reach the labels. tr is then the Transport of the client's
// http.Client.
func ExampleNewTransport() {
	tr := telemetry.NewTransport(http.DefaultTransport, "francetravail",
		"GET /offres/search", "GET /offres/{id}", "POST /connexion/oauth2/access_token")
	for _, u := range []string{
		"https://api.francetravail.io/partenaire/offresdemploi/v2/offres/search?range=0-149",
		"https://api.francetravail.io/partenaire/offresdemploi/v2/offres/201ABCD",
		"https://api.francetravail.io/partenaire/offresdemploi/v2/referentiel/metiers",
	} {
		fmt.Println(tr.Route(httptest.NewRequest(http.MethodGet, u, nil)))
	}
	// Output:
	// GET /offres/search
	// GET /offres/{id}
	// other
}

func get(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprint(resp.StatusCode, " ", strings.TrimSpace(string(b)))
}
