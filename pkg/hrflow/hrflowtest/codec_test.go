package hrflowtest

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/s2"
)

// TestCodec stores documents from several goroutines, past the point where
// the first ones become the dictionary, and reads each back.
func TestCodec(t *testing.T) {
	var c codec
	doc := func(i int) []byte {
		return fmt.Appendf(nil, `"name":"Job %d","summary":%q`, i, strings.Repeat(fmt.Sprintf("phrase %d of a summary. ", i%7), 40))
	}
	const workers, each = 4, 100
	packed := make([][]byte, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w * each; i < (w+1)*each; i++ {
				packed[i] = c.encode([]byte("prefix"), doc(i))
			}
		})
	}
	wg.Wait()
	if c.dict.Load() == nil {
		t.Fatal("no dictionary after 400 documents of 1 KB")
	}
	kinds := map[byte]int{}
	for i, p := range packed {
		if !bytes.HasPrefix(p, []byte("prefix")) {
			t.Fatalf("document %d: the prefix was lost", i)
		}
		p = p[len("prefix"):]
		kinds[p[0]]++
		got, err := c.appendDecoded([]byte("x"), string(p))
		if err != nil || !bytes.Equal(got, append([]byte("x"), doc(i)...)) {
			t.Fatalf("document %d: decoded %.80q… (%v), want %.80q…", i, got, err, doc(i))
		}
	}
	if kinds[codecPlain] == 0 || kinds[codecDict] == 0 || kinds[codecPlain]*s2.MaxEncodedLen(1100) < s2.MaxDictSize {
		t.Errorf("documents by kind %v, want the first ones plain, enough for a dictionary, the others with it", kinds)
	}
	for _, bad := range []string{"", "\x00", "\x07abc", "\x00\xff\xff\xff\xff\x0f"} {
		if _, err := c.appendDecoded(nil, bad); err == nil {
			t.Errorf("decoded %q without an error", bad)
		}
	}
}

// TestStoredJobsRoundTrip creates jobs through the API, enough for the
// dictionary, and reads each back as it was created.
func TestStoredJobsRoundTrip(t *testing.T) {
	e := newEnv(t, Config{})
	created := map[string][]byte{}
	for i := range 120 {
		ref := fmt.Sprint("RT", i)
		summary := strings.Repeat(fmt.Sprintf("Poste %d à pourvoir, « guillemets » et \\ barres. ", i), 20)
		a := e.do(t, req{method: "POST", path: "/job/indexing", body: flatJob(ref, map[string]any{"summary": summary, "tags": []any{map[string]any{"name": "n", "value": i}}})})
		a.want(t, 201, "")
		created[ref] = a.Data
	}
	if e.em.codec.dict.Load() == nil {
		t.Fatal("no dictionary after 120 jobs of 1 KB")
	}
	for ref, want := range created {
		if got := e.do(t, req{method: "GET", path: getPath(ref)}).Data; !bytes.Equal(got, want) {
			t.Errorf("GET %s:\n%s\nwant as created:\n%s", ref, got, want)
		}
	}
}
