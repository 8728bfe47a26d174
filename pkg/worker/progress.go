package worker

import (
	"fmt"
	"io"
	"time"

	"github.com/pulljobs/pulljobs/pkg/pipeline"
)

// Progress draws a run's progress on one terminal line, redrawn in place:
// what was fetched, formatted and pushed, the rate and the time left. Clear
// erases the line before the final report is printed.
type Progress struct {
	w     io.Writer
	start time.Time
	drawn bool
}

// NewProgress returns a Progress drawing on w (a terminal).
func NewProgress(w io.Writer) *Progress { return &Progress{w: w, start: time.Now()} }

// Update redraws the line for p.
func (pr *Progress) Update(p pipeline.Progress) {
	elapsed := time.Since(pr.start)
	rate := float64(p.Done) / elapsed.Seconds()
	line := fmt.Sprintf("fetched %d", p.Fetched)
	if !p.Sealed {
		line += "…"
	}
	if p.Formatted > 0 {
		line += fmt.Sprintf(" · formatted %d", p.Formatted)
	}
	if p.Pushed > 0 {
		line += fmt.Sprintf(" · pushed %d", p.Pushed)
	}
	line += fmt.Sprintf(" · done %d", p.Done)
	if p.Sealed {
		line += fmt.Sprintf("/%d", p.Expected)
	}
	line += fmt.Sprintf(" · %.0f/s", rate)
	if p.Sealed && rate > 0 && p.Done < p.Expected {
		eta := time.Duration(float64(p.Expected-p.Done) / rate * float64(time.Second))
		line += " · ETA " + eta.Round(time.Second).String()
	}
	line += " · " + elapsed.Round(time.Second).String()
	fmt.Fprintf(pr.w, "\r\x1b[K%s", line)
	pr.drawn = true
}

// Clear erases the progress line.
func (pr *Progress) Clear() {
	if pr.drawn {
		fmt.Fprint(pr.w, "\r\x1b[K")
		pr.drawn = false
	}
}
