package statuspage

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// browser returns the path of a Chromium or Chrome, or skips the test:
// $PULLJOBS_CHROMIUM, else the first of the usual names on $PATH.
func browser(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PULLJOBS_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium or Chrome installed (apt-get install chromium, or set PULLJOBS_CHROMIUM)")
	return ""
}

// TestPageInBrowser opens the page in a real headless browser: it sees a
// finished run's counters, a run that finishes while the page is open
// appears without a reload, and nothing the page shows runs as script.
// The screenshot goes to $PULLJOBS_SCREENSHOT when set (deploy/status-page.png).
func TestPageInBrowser(t *testing.T) {
	exe := browser(t)
	f := newFleet(t, 8)
	first := f.run("annecy", runstatus.TriggerRequest, `no salary range in "Selon profil"`)
	f.deadTrigger("nosuch", `unknown profile "nosuch" (profiles: annecy, chambery)`)

	// The flags a root process needs on a machine without network: no
	// sandbox, no GPU, none of the browser's own connections.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 760),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	if err := chromedp.Do(ctx, chromedp.Navigate(f.url)); err != nil {
		t.Fatalf("open the page in %s: %v", exe, err)
	}
	counters, err := chromedp.Run(ctx, chromedp.Poll[string](`document.querySelector("#run-`+first.RunID+` td.counters")?.textContent`))
	if err != nil {
		t.Fatalf("the finished run's counters: %v", err)
	}
	for _, want := range []string{"8 read", "7 created", "1 failed"} {
		if !strings.Contains(counters, want) {
			t.Errorf("counters %q, want %q", counters, want)
		}
	}

	// A run that ends while the page is open appears by itself.
	second := f.run("chambery", runstatus.TriggerSchedule, "no job for an offer without a title")
	waitShown(t, ctx, second)

	// Open the first run's dead letters, as a user would: a refresh keeps
	// them open.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#dl-`+first.RunID+`").open = true`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	open, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#dl-`+first.RunID+`").open`))
	if err != nil || !open {
		t.Errorf("the dead letters a user opened closed on refresh (%v)", err)
	}

	// Markup in what the page shows stays text.
	hostileRun := f.run(`<b>savoie</b>`, runstatus.TriggerEvent, hostile)
	waitShown(t, ctx, hostileRun)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#dl-`+hostileRun.RunID+`").open = true`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil || title != "pulljobs status" {
		t.Errorf("title %q, %v: a reason shown on the page ran as script", title, err)
	}
	profile, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#run-`+hostileRun.RunID+` td:nth-child(2)").textContent`))
	if err != nil || profile != "<b>savoie</b>" {
		t.Errorf("profile cell %q, %v; want the markup as text", profile, err)
	}

	// Two runs that wait, each for its turn with the other: the page says
	// why, without a reload, rather than looking stalled.
	for _, run := range f.waitingRuns(otherBoards[0], otherBoards[1]) {
		why, err := chromedp.Run(ctx, chromedp.Poll[string](`document.querySelector("#run-`+run+` .queue")?.textContent`,
			chromedp.WithPollingTimeout(20*time.Second)))
		if err != nil || !strings.Contains(why, "share the fleet; its share 50%") {
			t.Errorf("the waiting run %s shows %q (%v), want why it waits", run, why, err)
		}
	}
	stale, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#board-`+hrflowtest.DefaultBoardKey+`")?.dataset.stale`))
	if err != nil || stale != "false" {
		t.Errorf("the board synced just now: stale %q (%v), want false", stale, err)
	}
	screenshot(t, ctx)
}

// waitShown waits for the page to show r with its final status, without
// a reload.
func waitShown(t *testing.T, ctx context.Context, r runstatus.Report) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#run-`+r.RunID+`")?.dataset.status === "`+string(r.Status)+`"`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("run %s, which ended after the page opened, is not shown %s without a reload: %v", r.RunID, r.Status, err)
	}
}

// screenshot saves the whole page as PNG, to $PULLJOBS_SCREENSHOT when set.
func screenshot(t *testing.T, ctx context.Context) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(png))
	}
	path := os.Getenv("PULLJOBS_SCREENSHOT")
	if path == "" {
		path = filepath.Join(t.TempDir(), "status-page.png")
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}
