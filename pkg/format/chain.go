package format

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// Chain is a format and its logics, ready to run: what Spec.Compile returns.
// A Chain built by hand needs a Format; Logics may be empty.
type Chain struct {
	Format Func
	Logics []Logic

	formatName string   // for messages; "" in a hand-built chain
	logicNames []string // labels of Logics, "" when unnamed
	trusted    bool     // Format is a built-in: it checks the id and sets the reference
}

// Outcome is what became of one offer in Chain.Apply. Its String is the
// name of the run report's counter (or "kept", "discarded").
type Outcome int

// Outcomes of Chain.Apply.
const (
	Kept         Outcome = iota // formatted, and every logic kept it
	Discarded                   // a logic dropped it: logics_discard, not a failure
	FormatFailed                // format_failure
	LogicsFailed                // logics_failure
)

func (o Outcome) String() string {
	switch o {
	case Kept:
		return "kept"
	case Discarded:
		return "discarded"
	case FormatFailed:
		return "format_failure"
	case LogicsFailed:
		return "logics_failure"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// ApplyError is the error of Chain.Apply: which offer failed, at which
// step, and why.
type ApplyError struct {
	OfferID string // "" when the offer has no usable id
	Step    string // `format "pole_emploi"`, `format "jq"`, `logics[1] "drop_interim"`, `logics[0]`
	Err     error
}

func (e *ApplyError) Error() string {
	id := e.OfferID
	if id == "" {
		id = "(no id)"
	}
	return "offer " + id + ": " + e.Step + ": " + e.Err.Error()
}

func (e *ApplyError) Unwrap() error { return e.Err }

// Message is the error without the offer: the step and the reason.
func (e *ApplyError) Message() string { return e.Step + ": " + e.Err.Error() }

// errNilJob reports a Func or Logic that returned a nil job and no error.
var errNilJob = errors.New("returned no job and no error")

// Apply formats one offer and runs the logics on the job, in order, each on
// the job the previous one returned; the first that drops it discards it.
//
// It returns the job and Kept; nil and Discarded (with a nil error); or nil,
// FormatFailed or LogicsFailed and an *ApplyError. An offer without an id
// fails the format, whatever the format. The job's "reference" is the offer
// id: a format or logic that leaves it out gets it set, one that sets
// another value fails. Apply never panics: a panic in a Go format or logic
// is a failure with its message. It is safe for concurrent use.
func (c *Chain) Apply(offer francetravail.Offer) (hrflow.Job, Outcome, error) {
	var id string
	if !c.trusted {
		var err error
		if id, err = offer.ID(); err != nil {
			return nil, FormatFailed, c.formatError("", err)
		}
	}
	job, err := safeFormat(c.Format, offer)
	if err == nil && job == nil {
		err = errNilJob
	}
	if err != nil {
		if id == "" {
			id, _ = offer.ID()
		}
		return nil, FormatFailed, c.formatError(id, err)
	}
	if c.trusted {
		id = job.Reference()
	} else if err := setReference(job, id); err != nil {
		return nil, FormatFailed, c.formatError(id, err)
	}
	for i, logic := range c.Logics {
		next, keep, err := safeLogic(logic, job)
		switch {
		case err != nil:
		case !keep:
			return nil, Discarded, nil
		case next == nil:
			err = errNilJob
		default:
			err = setReference(next, id)
		}
		if err != nil {
			return nil, LogicsFailed, &ApplyError{OfferID: id, Step: c.logicStep(i), Err: err}
		}
		job = next
	}
	return job, Kept, nil
}

func (c *Chain) formatError(id string, err error) error {
	step := "format"
	if c.formatName != "" {
		step += " " + strconv.Quote(c.formatName)
	}
	return &ApplyError{OfferID: id, Step: step, Err: err}
}

func (c *Chain) logicStep(i int) string {
	step := "logics[" + strconv.Itoa(i) + "]"
	if i < len(c.logicNames) && c.logicNames[i] != "" {
		step += " " + strconv.Quote(c.logicNames[i])
	}
	return step
}

// setReference makes sure the job's reference is the offer id.
func setReference(job hrflow.Job, id string) error {
	switch ref, ok := job["reference"]; {
	case !ok || ref == nil:
		job["reference"] = id
	case ref != id:
		return fmt.Errorf("the job's reference is %v, not the offer id %q", ref, id)
	}
	return nil
}

// safeFormat calls f, turning a panic into an error.
func safeFormat(f Func, offer francetravail.Offer) (job hrflow.Job, err error) {
	if f == nil {
		return nil, errors.New("no format")
	}
	defer func() {
		if r := recover(); r != nil {
			job, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return f(offer)
}

// safeLogic calls l, turning a panic into an error.
func safeLogic(l Logic, job hrflow.Job) (next hrflow.Job, keep bool, err error) {
	if l == nil {
		return nil, false, errors.New("no logic")
	}
	defer func() {
		if r := recover(); r != nil {
			next, keep, err = nil, false, fmt.Errorf("panic: %v", r)
		}
	}()
	return l(job)
}
