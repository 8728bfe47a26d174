package worker

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/pipeline"
)

func TestProgressLine(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf)
	p.Update(pipeline.Progress{Fetched: 150, Formatted: 120, Pushed: 100, Done: 100})
	p.Update(pipeline.Progress{Fetched: 300, Sealed: true, Expected: 300, Formatted: 300, Pushed: 250, Done: 250})
	p.Clear()
	got := buf.String()
	for _, want := range []string{"fetched 150…", "fetched 300 · formatted 300 · pushed 250 · done 250/300", "ETA", "\r\x1b[K"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress output %q lacks %q", got, want)
		}
	}
}
