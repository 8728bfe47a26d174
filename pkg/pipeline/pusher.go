package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"reflect"

	"github.com/pulljobs/pulljobs/pkg/boardindex"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/retry"
	rs "github.com/pulljobs/pulljobs/pkg/runstatus"
)

// Board is what the pusher and sync stages need of HrFlow; *hrflow.Client
// implements it. The client carries the rate limit shared by all replicas.
type Board interface {
	// Put writes a job as the board index decided (create, or replace by
	// key); Upsert reads the board first, for when the index cannot tell.
	Put(ctx context.Context, boardKey, ref string, job []byte, opts hrflow.PutOptions) (hrflow.Written, error)
	Upsert(ctx context.Context, boardKey string, job hrflow.Job, opts hrflow.UpsertOptions) (hrflow.UpsertResult, error)
	Jobs(ctx context.Context, boardKey string, opts hrflow.ListOptions) iter.Seq2[hrflow.JobRef, error]
	GetJob(ctx context.Context, boardKey, reference string) (hrflow.Job, error)
	GetJobByKey(ctx context.Context, boardKey, key string) (hrflow.Job, error)
	SetArchivedKey(ctx context.Context, boardKey, key string, archived bool) error
}

// pushCall is the HrFlow call a job needs.
type pushCall int

const (
	callNone             pushCall = iota // nothing to write
	callCreate                           // POST
	callReplace                          // PUT
	callReplaceUnarchive                 // PUT, then unarchive
	callUpsert                           // read first, then write (hrflow.Client.Upsert)
)

// pushPlan is what the pusher does with one job, and what it counts as.
type pushPlan struct {
	call   pushCall
	action hrflow.Action // for callUpsert, Upsert says
	key    string        // the job to replace
}

// decidePush decides what to do with the job whose content hashes to hash,
// from its board index entry (ok false when the index has none). It makes
// no call: it is the whole of the run semantics' upsert, on the index.
func decidePush(e boardindex.Entry, ok bool, hash string, updateContent bool) pushPlan {
	switch {
	case !ok:
		return pushPlan{call: callCreate, action: hrflow.ActionCreated}
	case e.State == boardindex.Archived:
		return pushPlan{call: callReplaceUnarchive, action: hrflow.ActionUnarchived, key: e.Key}
	case !updateContent:
		return pushPlan{call: callNone, action: hrflow.ActionSkipped}
	case e.Unchanged(hash):
		return pushPlan{call: callNone, action: hrflow.ActionUnchanged}
	}
	return pushPlan{call: callReplace, action: hrflow.ActionUpdated, key: e.Key}
}

// pusher is the pusher stage: it writes each job into its run's board as
// the board index decides, remembers what it wrote in the index, and ends
// the item.
type pusher struct {
	ledger *ledger
	// index is the ledger's, with a cache of the shards it looked jobs up
	// in.
	index *boardindex.Index
	board Board
}

func (s *pusher) push(ctx context.Context, run *runInfo, it *Item) Outcome {
	spec := run.spec
	// The job's reference is the offer id (format.Chain makes sure of it).
	ref := it.Offer
	if ref == "" {
		return failed(rs.PusherStage, rs.WriteFailure, hrflow.ErrNoReference)
	}
	st, err := run.awaitIndex(ctx, s.ledger)
	if err != nil {
		return retryLater(fmt.Errorf("wait for the board index: %w", err))
	}
	e, ok, err := s.index.Lookup(ctx, spec.BoardKey, st.Snapshot, ref)
	if err != nil {
		return retryLater(err)
	}
	hash := boardindex.JobHash(it.Data)
	plan := decidePush(e, ok, hash, spec.UpdateContent)
	if st.Status != indexReady && plan.call != callNone {
		// The listing failed: the index cannot tell what is on the board.
		plan = pushPlan{call: callUpsert}
	}
	if spec.DryRun {
		return s.plan(ctx, spec, it.Data, plan)
	}
	w := write{spec: spec, run: it.Run, ref: ref, job: it.Data, hash: hash, again: it.Delivery > 1}
	var tally hrflow.Tally
	rec, err := s.write(hrflow.WithTally(ctx, &tally), w, plan)
	if err != nil {
		if retry.IsRetryable(err) || ctx.Err() != nil {
			return retryLater(err) // the last try ends it failed
		}
		out := failed(rs.PusherStage, rs.WriteFailure, err)
		out.Record.Throttled = int(tally.Throttled())
		return out
	}
	rec.Throttled, rec.Rate = int(tally.Throttled()), math.Round(tally.Rate()*10)/10
	return ended(rec)
}

// plan is push for a dry run: what would be done, written nowhere.
func (s *pusher) plan(ctx context.Context, spec RunSpec, data []byte, plan pushPlan) Outcome {
	if plan.call == callUpsert {
		job, err := decodeJob(data)
		if err != nil {
			return failed(rs.PusherStage, rs.WriteFailure, err)
		}
		res, err := s.board.Upsert(ctx, spec.BoardKey, job, hrflow.UpsertOptions{UpdateContent: spec.UpdateContent, DryRun: true})
		if err != nil {
			return retryLater(err)
		}
		plan.action = res.Action
	}
	return ended(pushRecord(plan.action, true, ""))
}

// write is one job to write.
type write struct {
	spec RunSpec
	run  string
	ref  string
	job  []byte // as the formatter published it
	hash string
	// again: an earlier delivery may have written the job and crashed
	// before its record; a create of this run found done counts as created.
	again bool
}

// write makes the plan's call and remembers what the board answered in the
// index. A create refused because the reference exists falls back on
// reading, then writing: someone wrote it since the listing (another
// delivery of this very item, or a person).
func (s *pusher) write(ctx context.Context, w write, plan pushPlan) (rs.Record, error) {
	board := w.spec.BoardKey
	var ans hrflow.Written
	var err error
	switch plan.call {
	case callNone:
		return pushRecord(plan.action, false, ""), nil
	case callCreate:
		ans, err = s.board.Put(ctx, board, w.ref, w.job, hrflow.PutOptions{Enrich: w.spec.EnrichWithParsing})
		if errors.Is(err, hrflow.ErrReferenceExists) {
			return s.refused(ctx, w)
		}
	case callReplace, callReplaceUnarchive:
		ans, err = s.board.Put(ctx, board, w.ref, w.job, hrflow.PutOptions{Key: plan.key, Unarchive: plan.call == callReplaceUnarchive})
	case callUpsert:
		return s.upsert(ctx, w)
	}
	if err != nil {
		return rs.Record{}, err
	}
	if err := s.remember(ctx, w, ans.Key, ans.UpdatedAt, plan.action); err != nil {
		return rs.Record{}, err
	}
	return pushRecord(plan.action, false, ans.ParsingError), nil
}

// refused ends a create refused because the reference exists, although the
// listing did not show it: the job appeared during this run. Made by this
// run, by a delivery that crashed before its record or a duplicate of the
// item (a redelivered offer, a publish retried after NATS lost its answer),
// it counts as created: the board's job holds what this run sends. Made by
// someone else, it is read, then written, as without an index.
func (s *pusher) refused(ctx context.Context, w write) (rs.Record, error) {
	board := w.spec.BoardKey
	found, err := s.board.GetJob(ctx, board, w.ref)
	if err != nil {
		return rs.Record{}, err
	}
	ours, err := decodeJob(w.job)
	if err != nil {
		return rs.Record{}, err
	}
	if !found.Archived() && holds(found, ours) {
		updatedAt, _ := found["updated_at"].(string)
		if err := s.remember(ctx, w, found.Key(), updatedAt, hrflow.ActionCreated); err != nil {
			return rs.Record{}, err
		}
		return pushRecord(hrflow.ActionCreated, false, ""), nil
	}
	return s.upsert(ctx, w)
}

// holds reports whether the board's job carries every field of ours, as
// ours has it. An updated_at ours leaves null (an offer without
// dateActualisation) is the board's to stamp, and does not count.
func holds(board, ours hrflow.Job) bool {
	for k, v := range ours {
		if k == boardStamped && v == nil {
			continue
		}
		if !reflect.DeepEqual(board[k], v) {
			return false
		}
	}
	return true
}

// upsert writes the job after reading it from the board, as when there is
// no index, and remembers what it wrote.
func (s *pusher) upsert(ctx context.Context, w write) (rs.Record, error) {
	job, err := decodeJob(w.job)
	if err != nil {
		return rs.Record{}, err
	}
	res, err := s.board.Upsert(ctx, w.spec.BoardKey, job, hrflow.UpsertOptions{
		UpdateContent: w.spec.UpdateContent, EnrichWithParsing: w.spec.EnrichWithParsing, MayHaveCreated: w.again,
	})
	if err != nil {
		return rs.Record{}, err
	}
	if res.UpdatedAt != "" {
		if err := s.remember(ctx, w, res.Key, res.UpdatedAt, res.Action); err != nil {
			return rs.Record{}, err
		}
	}
	parsing := res.ParsingError
	if res.ParsingFailed && parsing == "" {
		parsing = "text parsing failed"
	}
	return pushRecord(res.Action, false, parsing), nil
}

// remember records in the board index's journal what the board holds
// after a write.
func (s *pusher) remember(ctx context.Context, w write, key, updatedAt string, action hrflow.Action) error {
	e := boardindex.Entry{Ref: w.ref, Key: key, State: boardindex.Live, UpdatedAt: updatedAt,
		Hash: w.hash, WroteAt: updatedAt, Run: w.run, Action: string(action)}
	return s.index.Log(ctx, w.spec.BoardKey, e)
}

// decodeJob decodes a job the formatter published, for the paths that need
// it as a map (reading the board first, enrichment).
func decodeJob(data []byte) (hrflow.Job, error) {
	var job hrflow.Job
	if err := json.Unmarshal(data, &job); err != nil {
		return nil, fmt.Errorf("undecodable job: %w", err)
	}
	return job, nil
}

// boardStamped is the field HrFlow fills in itself when a write leaves it
// null.
const boardStamped = "updated_at"

// pushRecord is the final record of a job the pusher handled.
func pushRecord(action hrflow.Action, planned bool, parsingErr string) rs.Record {
	rec := rs.Record{State: rs.Written, Action: rs.Action(action), Planned: planned, ParsingFailure: parsingErr}
	if action == hrflow.ActionSkipped || action == hrflow.ActionUnchanged {
		rec.State = rs.Skipped
	}
	return rec
}
