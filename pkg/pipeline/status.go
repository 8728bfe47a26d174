package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StatusRunning is the status of a run without a report yet.
const StatusRunning = "running"

// Phases of a run in flight (RunStatus.Phase).
const (
	PhaseFetching   = "fetching"   // not sealed: offers are being published
	PhaseProcessing = "processing" // sealed: items are being formatted and pushed
	PhaseSyncing    = "syncing"    // every item ended: sync is running
)

// RunStatus is where one run stands: what `pulljobs status` lists, what the
// service's pulljobs.runs.list answers and what the status page shows.
type RunStatus struct {
	RunID  string `json:"run_id"`
	Status string `json:"status"` // StatusRunning, or the report's status
	// Phase says what a run in flight is doing; empty once finished.
	Phase    string `json:"phase,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Trigger  string `json:"trigger"`
	Profile  string `json:"profile,omitempty"`
	BoardKey string `json:"board_key"`
	DryRun   bool   `json:"dry_run,omitempty"`
	ReplayOf string `json:"replay_of,omitempty"`
	// StartedAt is when the run was created; FinishedAt when its report was
	// written (nil while it runs). DurationSeconds runs until then.
	StartedAt       time.Time  `json:"started_at"`
	FinishedAt      *time.Time `json:"finished_at,omitempty"`
	DurationSeconds float64    `json:"duration_seconds"`
	// Events and Sync come from the report: nil while the run is in flight,
	// whose items are not read one by one; Progress tells about it instead.
	Events    *Events      `json:"events,omitempty"`
	Sync      *SyncReport  `json:"sync,omitempty"`
	Truncated bool         `json:"truncated,omitempty"`
	Progress  *RunProgress `json:"progress,omitempty"`
	// LastSignOfLife is the last renewal of the board's lease by the run's
	// processes, while it holds the board.
	LastSignOfLife *time.Time `json:"last_sign_of_life,omitempty"`
	// DeadLetterCount counts the run's items on the dead-letter stream.
	DeadLetterCount int `json:"dead_letter_count"`
}

// RunList is a list of runs, newest first, as `pulljobs status --json`
// prints it and the service's pulljobs.runs.list answers it.
type RunList struct {
	Runs []RunStatus `json:"runs"`
}

// RunProgress is how far a run in flight got.
type RunProgress struct {
	// Fetched counts the offers published so far; once Sealed, Expected is
	// the number of items of the run.
	Fetched  int  `json:"fetched"`
	Sealed   bool `json:"sealed"`
	Expected int  `json:"expected,omitempty"`
	// Done counts the items that reached their final state.
	Done int `json:"done"`
}

// RunDetail is one run as `pulljobs status RUN` shows it: its status, its
// report once finished (with the first failures), and its dead letters.
type RunDetail struct {
	RunStatus
	Report      *Report      `json:"report,omitempty"`
	DeadLetters []DeadLetter `json:"dead_letters"`
}

// DeadLetter is one message of the dead-letter stream.
type DeadLetter struct {
	Subject string    `json:"subject"`
	Offer   string    `json:"offer,omitempty"`
	Stage   string    `json:"stage"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// statusReader holds the handles the status functions read through.
type statusReader struct {
	js     jetstream.JetStream
	runs   jetstream.KeyValue
	leases jetstream.KeyValue // nil before any board was taken
}

// openStatus opens the buckets; ok is false when the runs bucket does not
// exist yet: no run ever started on this NATS system.
func openStatus(ctx context.Context, js jetstream.JetStream) (r *statusReader, ok bool, err error) {
	r = &statusReader{js: js}
	for _, b := range []struct {
		kv       *jetstream.KeyValue
		name     string
		required bool
	}{{&r.runs, RunsBucket, true}, {&r.leases, LeasesBucket, false}} {
		err := withRetry(ctx, func(ctx context.Context) error {
			var err error
			*b.kv, err = js.KeyValue(ctx, b.name)
			return err
		})
		switch {
		case errors.Is(err, jetstream.ErrBucketNotFound):
			if b.required {
				return nil, false, nil
			}
		case err != nil:
			return nil, false, fmt.Errorf("open bucket %s: %w", b.name, err)
		}
	}
	return r, true, nil
}

// ListRuns returns the runs the runs bucket holds (those within the
// retention), newest first, at most limit of them (all when limit ≤ 0).
// It reads a few keys per run and never the items of a run one by one: a
// run in flight gets a Progress instead of counters. A NATS system where no
// run ever started has none: an empty list, never nil.
func ListRuns(ctx context.Context, js jetstream.JetStream, limit int) ([]RunStatus, error) {
	r, ok, err := openStatus(ctx, js)
	if err != nil {
		return nil, err
	}
	if !ok {
		return []RunStatus{}, nil
	}
	ids, err := r.runIDs(ctx)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]RunStatus, 0, len(ids))
	for _, id := range ids {
		st, _, err := r.status(ctx, id)
		if errors.Is(err, ErrUnknownRun) {
			continue // expired between the listing and the read
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// GetRun returns run's status, its report once it has one, and its first
// maxLetters dead letters (DeadLetterCount counts them all). An error
// matching ErrUnknownRun says the run is unknown or expired.
func GetRun(ctx context.Context, js jetstream.JetStream, run string, maxLetters int) (RunDetail, error) {
	if !ValidRunID(run) {
		return RunDetail{}, fmt.Errorf("run %q: %w (a run id holds letters, digits, - and _)", run, ErrUnknownRun)
	}
	r, ok, err := openStatus(ctx, js)
	if err != nil {
		return RunDetail{}, err
	}
	if !ok {
		return RunDetail{}, fmt.Errorf("run %s: %w", run, ErrUnknownRun)
	}
	st, rep, err := r.status(ctx, run)
	if err != nil {
		return RunDetail{}, err
	}
	d := RunDetail{RunStatus: st, Report: rep}
	d.DeadLetters, _, err = ReadDeadLetters(ctx, js, DeadLetterSubjectPrefix+run+".*", maxLetters)
	if err != nil {
		return RunDetail{}, err
	}
	return d, nil
}

// runIDs lists the runs with a spec, newest first: run ids sort by time.
func (r *statusReader) runIDs(ctx context.Context) ([]string, error) {
	var ids []string
	err := withRetry(ctx, func(ctx context.Context) error {
		ids = ids[:0]
		l, err := r.runs.ListKeysFiltered(ctx, specKey("*"))
		if err != nil {
			return err
		}
		for k := range l.Keys() {
			ids = append(ids, strings.TrimSuffix(k, specKey("")))
		}
		return nil
	})
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	slices.Sort(ids)
	slices.Reverse(ids)
	return ids, nil
}

// status reads one run's keys; rep is its report, nil while it runs.
func (r *statusReader) status(ctx context.Context, run string) (st RunStatus, rep *Report, err error) {
	var spec RunSpec
	if _, err := getJSON(ctx, r.runs, specKey(run), &spec); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return st, nil, fmt.Errorf("run %s: %w", run, ErrUnknownRun)
		}
		return st, nil, fmt.Errorf("read spec of run %s: %w", run, err)
	}
	st = RunStatus{RunID: run, Status: StatusRunning, Trigger: spec.Trigger, Profile: spec.Profile, BoardKey: spec.BoardKey,
		DryRun: spec.DryRun, ReplayOf: spec.ReplayOf, StartedAt: spec.CreatedAt}
	if st.Trigger == "" {
		st.Trigger = TriggerCLI
	}
	if st.DeadLetterCount, err = countDeadLetters(ctx, r.js, run); err != nil {
		return st, nil, err
	}
	var report Report
	found, err := getIfAny(ctx, r.runs, reportKey(run), &report)
	if err != nil {
		return st, nil, err
	}
	if found {
		st.finished(report)
		return st, &report, nil
	}
	st.DurationSeconds = time.Since(spec.CreatedAt).Seconds()
	if err := r.progress(ctx, &st); err != nil {
		return st, nil, err
	}
	return st, nil, nil
}

// finished fills st from the run's report.
func (st *RunStatus) finished(r Report) {
	st.Status, st.Reason = r.Status, r.Reason
	finishedAt := r.FinishedAt
	st.FinishedAt = &finishedAt
	st.DurationSeconds = r.DurationSeconds
	events, sync := r.Events, r.Sync
	st.Events, st.Sync, st.Truncated = &events, &sync, r.Truncated
	if !r.StartedAt.IsZero() {
		st.StartedAt = r.StartedAt
	}
}

// progress fills the phase and progress of a run in flight: from its seal,
// its final key, the count of its published offers and of its items' final
// records (counted by the server, not read), and its lease.
func (r *statusReader) progress(ctx context.Context, st *RunStatus) error {
	pr := &RunProgress{}
	st.Progress = pr
	var seal Seal
	sealed, err := getIfAny(ctx, r.runs, sealKey(st.RunID), &seal)
	if err != nil {
		return err
	}
	var fin struct{}
	finalized, err := getIfAny(ctx, r.runs, finalKey(st.RunID), &fin)
	if err != nil {
		return err
	}
	switch {
	case finalized:
		st.Phase = PhaseSyncing
	case sealed:
		st.Phase = PhaseProcessing
	default:
		st.Phase = PhaseFetching
	}
	if sealed {
		pr.Sealed, pr.Expected, pr.Fetched = true, seal.Expected, seal.Expected
	} else if pr.Fetched, err = countSubject(ctx, r.js, OffersStream, OffersSubjectPrefix+st.RunID); err != nil {
		return err
	}
	// An item may have more than one record (a redelivery after a crash):
	// the count is an upper bound, capped at the expected count.
	if pr.Done, err = countSubject(ctx, r.js, RecordsStream, RecordsSubjectPrefix+st.RunID); err != nil {
		return err
	}
	if pr.Sealed {
		pr.Done = min(pr.Done, pr.Expected)
	}
	if r.leases != nil {
		var held Lease
		found, err := getIfAny(ctx, r.leases, st.BoardKey, &held)
		if err != nil {
			return err
		}
		if found && held.Run == st.RunID {
			renewed := held.Renewed
			st.LastSignOfLife = &renewed
		}
	}
	return nil
}

// countDeadLetters counts run's messages on the dead-letter stream.
func countDeadLetters(ctx context.Context, js jetstream.JetStream, run string) (int, error) {
	return countSubject(ctx, js, DeadLetterStream, DeadLetterSubjectPrefix+run+".*")
}

// countSubject counts the messages of stream on the subjects matching
// filter; a stream that does not exist yet has none.
func countSubject(ctx context.Context, js jetstream.JetStream, stream, filter string) (int, error) {
	var n int
	err := withRetry(ctx, func(ctx context.Context) error {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			return err
		}
		n = 0
		for _, c := range info.State.Subjects {
			n += int(c)
		}
		return nil
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("count %s on %s: %w", filter, stream, err)
	}
	return n, nil
}

// ReadDeadLetters returns the first limit messages (all when limit ≤ 0) of
// the dead-letter stream on the subjects matching filter, oldest first,
// with their headers and without their bodies, and how many match in all.
// Items of a run are on pulljobs.dlq.<run>.*; refused triggers of
// `fetcher serve` on pulljobs.dlq.trigger.*.
func ReadDeadLetters(ctx context.Context, js jetstream.JetStream, filter string, limit int) ([]DeadLetter, int, error) {
	total, err := countSubject(ctx, js, DeadLetterStream, filter)
	if err != nil || total == 0 {
		return []DeadLetter{}, 0, err
	}
	want := total
	if limit > 0 {
		want = min(limit, total)
	}
	s, err := js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return nil, 0, fmt.Errorf("read dead letters: %w", err)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, HeadersOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("read dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, want)
	for len(out) < want {
		batch, err := c.Fetch(want-len(out), jetstream.FetchMaxWait(kvCallTimeout))
		if err != nil {
			return nil, 0, fmt.Errorf("read dead letters: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			out = append(out, deadLetter(m))
		}
		if err := batch.Error(); err != nil {
			return nil, 0, fmt.Errorf("read dead letters: %w", err)
		}
		if n == 0 {
			break // expired meanwhile
		}
	}
	return out, total, nil
}

func deadLetter(m jetstream.Msg) DeadLetter {
	h := m.Headers()
	d := DeadLetter{Subject: m.Subject(), Offer: h.Get(HeaderOfferID), Stage: h.Get(HeaderStage), Reason: h.Get(HeaderReason)}
	if meta, err := m.Metadata(); err == nil {
		d.At = meta.Timestamp.UTC()
	}
	return d
}

// getIfAny reads key into v; found is false when the key does not exist.
func getIfAny(ctx context.Context, kv jetstream.KeyValue, key string, v any) (found bool, err error) {
	if _, err := getJSON(ctx, kv, key, v); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("read %s: %w", key, err)
	}
	return true, nil
}

// FetchDone reports whether run needs no more fetching: it is sealed, or
// over (an abandoned run has a report and no seal). A run unknown so far
// is not done.
func FetchDone(ctx context.Context, js jetstream.JetStream, run string) (bool, error) {
	var kv jetstream.KeyValue
	if err := withRetry(ctx, func(ctx context.Context) error {
		var err error
		kv, err = js.KeyValue(ctx, RunsBucket)
		return err
	}); err != nil {
		return false, fmt.Errorf("open bucket %s: %w", RunsBucket, err)
	}
	for _, key := range []string{sealKey(run), reportKey(run)} {
		var v struct{}
		if found, err := getIfAny(ctx, kv, key, &v); err != nil || found {
			return found, err
		}
	}
	return false, nil
}

// Retry runs op as the pipeline runs its own calls to NATS: again, with
// backoff, for up to a minute, while the errors are those of a cluster
// failing over (time-outs, no responders, no leader), each attempt bounded
// by a time-out of its own.
func Retry(ctx context.Context, op func(context.Context) error) error { return withRetry(ctx, op) }

// SyncOutcome says in a few words what sync did for a finished run:
// "5 archived", "refused: <reason>", "dry run: would archive 3"; "" while
// the run is in flight.
func (st RunStatus) SyncOutcome() string {
	s := st.Sync
	switch {
	case s == nil:
		return ""
	case s.Performed:
		return fmt.Sprintf("%d archived", s.Archived)
	case st.DryRun && s.RefusedReason == "":
		return fmt.Sprintf("dry run: would archive %d", s.WouldArchive)
	case s.RefusedReason != "":
		return "refused: " + s.RefusedReason
	}
	return "not performed"
}

// Failed counts the failures among the run's counters (the report's
// rules): items that failed at any stage, failed archives and enrichments.
func (st RunStatus) Failed() int {
	if st.Events == nil {
		return 0
	}
	return st.Events.failures()
}

// String says where a run in flight stands: "fetching: 120 offers so
// far", "processing: 80/120 items done (66%)".
func (p RunProgress) String() string {
	if !p.Sealed {
		return fmt.Sprintf("fetching: %d offers so far, %d items done", p.Fetched, p.Done)
	}
	return fmt.Sprintf("%d/%d items done (%d%%)", p.Done, p.Expected, p.Percent())
}

// Percent is the share of the items done, once the run is sealed.
func (p RunProgress) Percent() int {
	if !p.Sealed || p.Expected == 0 {
		return 0
	}
	return min(100, 100*p.Done/p.Expected)
}

// FormatDuration prints seconds as people read them: 0.4s, 12s, 3m04s or
// 2h05m.
func FormatDuration(seconds float64) string {
	d := time.Duration(seconds * float64(time.Second))
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%.0fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
