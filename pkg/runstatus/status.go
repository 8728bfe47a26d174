package runstatus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulljobs/pulljobs/pkg/store"
)

// ErrUnknownRun reports a run id with no spec in the runs bucket: never
// started, or older than the retention.
var ErrUnknownRun = errors.New("unknown run")

// Phase says what a run in flight is doing.
type Phase string

// Phases of a run in flight.
const (
	PhaseFetching   Phase = "fetching"   // not sealed: offers are being published
	PhaseProcessing Phase = "processing" // sealed: items are being formatted and pushed
	PhaseSyncing    Phase = "syncing"    // every item ended: sync is running
)

// RunStatus is where one run stands: what `pulljobs status` lists, what the
// service's pulljobs.runs.list answers and what the status page shows.
type RunStatus struct {
	RunID  string `json:"run_id"`
	Status Status `json:"status"` // StatusRunning, or the report's status
	// Phase says what a run in flight is doing; empty once finished.
	Phase    Phase   `json:"phase,omitempty"`
	Reason   string  `json:"reason,omitempty"`
	Trigger  Trigger `json:"trigger"`
	Profile  string  `json:"profile,omitempty"`
	BoardKey string  `json:"board_key"`
	DryRun   bool    `json:"dry_run,omitempty"`
	ReplayOf string  `json:"replay_of,omitempty"`
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
	// Queue says, for a run in flight, what it shares the fleet with and
	// when it should end; nil once finished.
	Queue *Queue `json:"queue,omitempty"`
	// LastSignOfLife is the last renewal of the board's lease by the run's
	// processes, while it holds the board.
	LastSignOfLife *time.Time `json:"last_sign_of_life,omitempty"`
	// DeadLetterCount counts the run's items on the dead-letter stream.
	DeadLetterCount int `json:"dead_letter_count"`
	// HrFlow comes from the report: the rate the HrFlow rate limit
	// reached, and the calls throttled.
	HrFlow *HrFlowCalls `json:"hrflow,omitempty"`

	weight float64 // the spec's, for Queue
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

// specSummary is what a reader needs of a run's spec (<run>.spec): the
// spec itself (pipeline.RunSpec) holds the query and the format, which
// readers have no use for.
type specSummary struct {
	BoardKey  string    `json:"board_key"`
	ReplayOf  string    `json:"replay_of,omitempty"`
	DryRun    bool      `json:"dry_run,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	Trigger   Trigger   `json:"trigger,omitempty"`
	Profile   string    `json:"profile,omitempty"`
	Weight    float64   `json:"weight,omitempty"`
}

// reader holds the handles the status functions read through.
type reader struct {
	js     jetstream.JetStream
	runs   jetstream.KeyValue
	leases jetstream.KeyValue // nil before any board was taken
}

// open opens the buckets; ok is false when the runs bucket does not exist
// yet: no run ever started on this NATS system.
func open(ctx context.Context, js jetstream.JetStream) (r *reader, ok bool, err error) {
	r = &reader{js: js}
	if r.runs, err = store.Bucket(ctx, js, RunsBucket); err != nil || r.runs == nil {
		return nil, false, err
	}
	if r.leases, err = store.Bucket(ctx, js, LeasesBucket); err != nil {
		return nil, false, err
	}
	return r, true, nil
}

// ListRuns returns the runs the runs bucket holds (those within the
// retention), newest first, at most limit of them (all when limit ≤ 0).
// It reads a few keys per run and never the items of a run one by one: a
// run in flight gets a Progress instead of counters. A NATS system where no
// run ever started has none: an empty list, never nil.
func ListRuns(ctx context.Context, js jetstream.JetStream, limit int) ([]RunStatus, error) {
	r, ok, err := open(ctx, js)
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
	if err := r.queues(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// queues fills the Queue of the runs in flight among runs: what the fleet
// holds of every run, and at what pace it ends them.
func (r *reader) queues(ctx context.Context, runs []RunStatus) error {
	inFlight := false
	for _, st := range runs {
		inFlight = inFlight || st.Progress != nil
	}
	if !inFlight {
		return nil
	}
	b, err := ReadBacklog(ctx, r.js)
	if err != nil {
		return err
	}
	rate, err := fleetRate(ctx, r.js, time.Now())
	if err != nil {
		return err
	}
	weights := map[string]float64{}
	for _, st := range runs {
		weights[st.RunID] = st.weight
	}
	for run, lag := range b.Runs {
		if _, ok := weights[run]; !ok && lag > 0 {
			var spec specSummary
			if _, _, err := store.Get(ctx, r.runs, SpecKey(run), &spec); err != nil {
				return err
			}
			weights[run] = spec.Weight
		}
	}
	queues(runs, weights, b, rate)
	return nil
}

// GetRun returns run's status, its report once it has one, and its first
// maxLetters dead letters (DeadLetterCount counts them all). An error
// matching ErrUnknownRun says the run is unknown or expired.
func GetRun(ctx context.Context, js jetstream.JetStream, run string, maxLetters int) (RunDetail, error) {
	if !ValidRunID(run) {
		return RunDetail{}, fmt.Errorf("run %q: %w (a run id holds letters, digits, - and _)", run, ErrUnknownRun)
	}
	r, ok, err := open(ctx, js)
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
	one := []RunStatus{st}
	if err := r.queues(ctx, one); err != nil {
		return RunDetail{}, err
	}
	d := RunDetail{RunStatus: one[0], Report: rep}
	d.DeadLetters, _, err = ReadDeadLetters(ctx, js, DeadLetterSubjectPrefix+run+".*", maxLetters)
	if err != nil {
		return RunDetail{}, err
	}
	return d, nil
}

// runIDs lists the runs with a spec, newest first: run ids sort by time.
func (r *reader) runIDs(ctx context.Context) ([]string, error) {
	var ids []string
	err := store.Retry(ctx, func(ctx context.Context) error {
		ids = ids[:0]
		l, err := r.runs.ListKeysFiltered(ctx, SpecKey("*"))
		if err != nil {
			return err
		}
		for k := range l.Keys() {
			ids = append(ids, strings.TrimSuffix(k, SpecKey("")))
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
func (r *reader) status(ctx context.Context, run string) (st RunStatus, rep *Report, err error) {
	var spec specSummary
	if _, found, err := store.Get(ctx, r.runs, SpecKey(run), &spec); err != nil || !found {
		if err == nil {
			err = fmt.Errorf("run %s: %w", run, ErrUnknownRun)
		}
		return st, nil, err
	}
	st = RunStatus{RunID: run, Status: StatusRunning, Trigger: spec.Trigger, Profile: spec.Profile, BoardKey: spec.BoardKey,
		DryRun: spec.DryRun, ReplayOf: spec.ReplayOf, StartedAt: spec.CreatedAt, weight: spec.Weight}
	if st.Trigger == "" {
		st.Trigger = TriggerCLI
	}
	if st.DeadLetterCount, err = store.CountIn(ctx, r.js, DeadLetterStream, DeadLetterSubjectPrefix+run+".*"); err != nil {
		return st, nil, err
	}
	var report Report
	_, found, err := store.Get(ctx, r.runs, ReportKey(run), &report)
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
	st.Events, st.Sync, st.Truncated, st.HrFlow = &events, &sync, r.Truncated, r.HrFlow
	if !r.StartedAt.IsZero() {
		st.StartedAt = r.StartedAt
	}
}

// progress fills the phase and progress of a run in flight: from its seal,
// its final key, the count of its published offers and of its items' final
// records (counted by the server, not read), and its lease.
func (r *reader) progress(ctx context.Context, st *RunStatus) error {
	pr := &RunProgress{}
	st.Progress = pr
	var seal Seal
	_, sealed, err := store.Get(ctx, r.runs, SealKey(st.RunID), &seal)
	if err != nil {
		return err
	}
	finalized, err := store.Exists(ctx, r.runs, FinalKey(st.RunID))
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
	} else if pr.Fetched, err = store.CountIn(ctx, r.js, OffersStream, OffersSubjectPrefix+st.RunID); err != nil {
		return err
	}
	// An item may have more than one record (a redelivery after a crash):
	// the count is an upper bound, capped at the expected count.
	if pr.Done, err = store.CountIn(ctx, r.js, RecordsStream, RecordsSubjectPrefix+st.RunID); err != nil {
		return err
	}
	if pr.Sealed {
		pr.Done = min(pr.Done, pr.Expected)
	}
	if r.leases != nil {
		var held Lease
		_, found, err := store.Get(ctx, r.leases, st.BoardKey, &held)
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

// ReadDeadLetters returns the first limit messages (all when limit ≤ 0) of
// the dead-letter stream on the subjects matching filter, oldest first,
// with their headers and without their bodies, and how many match in all.
// Items of a run are on pulljobs.dlq.<run>.*; refused triggers of
// `fetcher serve` on pulljobs.dlq.trigger.*.
func ReadDeadLetters(ctx context.Context, js jetstream.JetStream, filter string, limit int) ([]DeadLetter, int, error) {
	total, err := store.CountIn(ctx, js, DeadLetterStream, filter)
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
		batch, err := c.Fetch(want-len(out), jetstream.FetchMaxWait(store.CallTimeout))
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

// FetchDone reports whether run needs no more fetching: it is sealed, or
// over (an abandoned run has a report and no seal). A run unknown so far
// is not done.
func FetchDone(ctx context.Context, js jetstream.JetStream, run string) (bool, error) {
	kv, err := store.Bucket(ctx, js, RunsBucket)
	if err != nil || kv == nil {
		return false, err
	}
	for _, key := range []string{SealKey(run), ReportKey(run)} {
		if found, err := store.Exists(ctx, kv, key); err != nil || found {
			return found, err
		}
	}
	return false, nil
}

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
	return st.Events.Failures()
}

// String says where a run in flight stands: "fetching: 120 offers so
// far", "80/120 items done (66%)". RunStatus.Queue says why it waits.
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
