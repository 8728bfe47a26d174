package statuspage_test

import (
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/natsembed"
	"github.com/pulljobs/pulljobs/pkg/statuspage"
)

// Example serves the status page of the runs a NATS system keeps; a
// program mounts it on its own mux (fetcher serve --http does, at /).
func Example() {
	dir, _ := os.MkdirTemp("", "pulljobs-page-")
	defer os.RemoveAll(dir)
	srv, err := natsembed.Start(natsembed.Options{StoreDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	nc, _ := srv.Connect()
	defer nc.Close()
	js, _ := jetstream.New(nc)

	rec := httptest.NewRecorder()
	statuspage.Handler(js, statuspage.Options{}).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"), strings.Contains(rec.Body.String(), "No run yet"))
	// Output: 200 text/html; charset=utf-8 true
}
