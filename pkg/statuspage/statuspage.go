// Package statuspage serves the status page of a pulljobs fleet: the runs,
// newest first, with what started them, their live progress, counters and
// sync outcome, their dead letters and reasons, and the triggers refused.
//
// The page reads NATS directly (runstatus.ListRuns and friends), so any
// replica shows the same. It loads nothing from outside — its CSS and
// script are inline, and its Content-Security-Policy forbids anything else
// — so it works offline; everything it shows goes through html/template,
// escaped. It refreshes itself: its script fetches the page's main part
// again every few seconds, and without script a meta refresh reloads it.
package statuspage

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// Options tune the page.
type Options struct {
	// Limit is how many runs the page lists; default DefaultLimit.
	Limit int
	// Refresh is how often the page refreshes itself; default
	// DefaultRefresh.
	Refresh time.Duration
	// Logger receives the errors of reading NATS; nil discards them.
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultLimit   = 30
	DefaultRefresh = 3 * time.Second
)

const (
	// lettersPerRun bounds the dead letters shown under a run.
	lettersPerRun = 20
	// triggerLetters bounds the refused triggers shown, the latest ones.
	triggerLetters = 20
	// triggerScan bounds the refused triggers read to find the latest.
	triggerScan = 2000
	// triggerStage is the stage of the triggers that fetcher serve refused,
	// on pulljobs.dlq.trigger.<profile> (service.TriggerStage).
	triggerStage = "trigger"
	// readTimeout bounds the NATS reads of one page.
	readTimeout = 10 * time.Second
)

// securityPolicy lets the page use its inline style and script, and fetch
// itself, and nothing else.
const securityPolicy = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler returns the page: GET / lists the runs, /?run=ID shows one run,
// its report, failures and dead letters; ?part=main returns the main part
// only, which the page's script fetches to refresh itself.
func Handler(js jetstream.JetStream, o Options) http.Handler {
	if o.Limit <= 0 {
		o.Limit = DefaultLimit
	}
	if o.Refresh <= 0 {
		o.Refresh = DefaultRefresh
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &page{js: js, o: o}
}

type page struct {
	js jetstream.JetStream
	o  Options
}

// view is what the templates render.
type view struct {
	Now       time.Time
	RefreshMS int64
	Error     string
	// The list.
	Runs         []runView
	Triggers     []runstatus.DeadLetter
	TriggerCount int
	Boards       []runstatus.BoardStatus
	// One run, when ?run= is set.
	Run *runstatus.RunDetail
}

type runView struct {
	runstatus.RunStatus
	Letters []runstatus.DeadLetter
}

func (pg *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	v := view{Now: time.Now().UTC(), RefreshMS: pg.o.Refresh.Milliseconds()}
	code := http.StatusOK
	var err error
	if id := r.URL.Query().Get("run"); id != "" {
		err = pg.readRun(ctx, id, &v)
		if errors.Is(err, runstatus.ErrUnknownRun) {
			code = http.StatusNotFound
		}
	} else {
		err = pg.readRuns(ctx, &v)
	}
	if err != nil {
		if code == http.StatusOK {
			code = http.StatusServiceUnavailable
			pg.o.Logger.Warn("status page: read NATS", "err", err)
		}
		v.Error = err.Error()
	}
	name := "page"
	if r.URL.Query().Get("part") == "main" {
		name = "main"
	}
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, v); err != nil {
		pg.o.Logger.Error("status page: render", "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", securityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// readRuns reads the runs, the dead letters of those that have some, and
// the latest refused triggers.
func (pg *page) readRuns(ctx context.Context, v *view) error {
	runs, err := runstatus.ListRuns(ctx, pg.js, pg.o.Limit)
	if err != nil {
		return err
	}
	for _, st := range runs {
		rv := runView{RunStatus: st}
		if st.DeadLetterCount > 0 {
			if rv.Letters, _, err = runstatus.ReadDeadLetters(ctx, pg.js, runstatus.DeadLetterSubjectPrefix+st.RunID+".*", lettersPerRun); err != nil {
				return err
			}
		}
		v.Runs = append(v.Runs, rv)
	}
	if v.Boards, err = runstatus.ListBoards(ctx, pg.js); err != nil {
		return err
	}
	letters, total, err := runstatus.ReadDeadLetters(ctx, pg.js, runstatus.DeadLetterSubjectPrefix+triggerStage+".*", triggerScan)
	if err != nil {
		return err
	}
	slices.Reverse(letters)
	v.Triggers, v.TriggerCount = letters[:min(len(letters), triggerLetters)], total
	return nil
}

func (pg *page) readRun(ctx context.Context, id string, v *view) error {
	d, err := runstatus.GetRun(ctx, pg.js, id, 0)
	if err != nil {
		return err
	}
	v.Run = &d
	return nil
}

var templates = template.Must(template.New("page").Funcs(template.FuncMap{
	"duration": cli.FormatDuration,
	"ago":      func(now, t time.Time) string { return cli.FormatDuration(now.Sub(t).Seconds()) + " ago" },
	"short":    func(s string) string { return s[:min(len(s), 8)] },
	"stale":    func(now time.Time, b runstatus.BoardStatus) bool { return b.Stale(now) },
	"report":   reportTable,
	"since":    func(t *time.Time) time.Time { return *t },
	"seconds":  func(ms int64) float64 { return float64(ms) / 1000 },
	"triggerProfile": func(subject string) string {
		return strings.TrimPrefix(subject, runstatus.DeadLetterSubjectPrefix+triggerStage+".")
	},
}).Parse(pageTemplate))

// reportTable is the report as the terminal shows it.
func reportTable(r *runstatus.Report) string {
	var b strings.Builder
	_ = r.WriteTable(&b)
	return b.String()
}
