package format

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"
	"time"

	"github.com/itchyny/gojq"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// jqTimeout bounds one run of a jq program on one offer or job, so that a
// program that loops forever fails that item instead of stalling the run. A
// variable for tests.
var jqTimeout = 2 * time.Second

// compileJQ parses and compiles a jq program. The program sees no
// environment variables ($ENV and env are empty: a board must not receive
// the worker's secrets) and cannot read further inputs.
func compileJQ(program string) (*gojq.Code, error) {
	q, err := gojq.Parse(program)
	if err != nil {
		return nil, fmt.Errorf("jq: parse: %w", err)
	}
	code, err := gojq.Compile(q, gojq.WithEnvironLoader(func() []string { return nil }))
	if err != nil {
		return nil, fmt.Errorf("jq: compile: %w", err)
	}
	return code, nil
}

// runJQ runs code on v and returns its only output; ok is false when it
// produced none. More than one output is an error: a format or a logic
// makes one job of one input.
func runJQ(code *gojq.Code, v any) (out any, ok bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), jqTimeout)
	defer cancel()
	iter := code.RunWithContext(ctx, v)
	for n := 0; ; n++ {
		x, more := iter.Next()
		if !more {
			return out, n > 0, nil
		}
		if e, isErr := x.(error); isErr {
			return nil, false, jqError(e)
		}
		if n > 0 {
			return nil, false, errors.New("jq: the program produced more than one value")
		}
		out = x
	}
}

// jqError describes an error raised while a jq program runs.
func jqError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("jq: the program ran longer than %v", jqTimeout)
	}
	var halt *gojq.HaltError
	if errors.As(err, &halt) && halt.Value() == nil {
		return fmt.Errorf("jq: the program halted without a value (exit code %d)", halt.ExitCode())
	}
	var value gojq.ValueError
	if errors.As(err, &value) {
		if msg, isString := value.Value().(string); isString {
			return fmt.Errorf("jq: %s", msg) // error("…") from the program
		}
	}
	return fmt.Errorf("jq: %w", err)
}

// JQ compiles a jq program into a format. The program receives the offer
// as a JSON object (decoded as encoding/json does into an any: numbers are
// float64) and must produce exactly one JSON object, the job; no output, more
// than one, or anything else is an error. Chain.Apply sets the job's
// "reference" to the offer id when the program leaves it out.
//
// The error, if any, is a compile error. The format is safe for concurrent
// use; each run is bounded in time and sees no environment variables.
func JQ(program string) (Func, error) {
	code, err := compileJQ(program)
	if err != nil {
		return nil, err
	}
	return func(offer francetravail.Offer) (hrflow.Job, error) {
		v, err := decodeOffer(offer)
		if err != nil {
			return nil, fmt.Errorf("decode offer: %w", err)
		}
		out, ok, err := runJQ(code, v)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errors.New("jq: the program produced no job")
		}
		return jqJob(out)
	}, nil
}

// decodeOffer decodes an offer into plain JSON values, as encoding/json
// would into a map[string]any, several times faster: the scanner checks it,
// and its strings share one buffer.
func decodeOffer(offer francetravail.Offer) (map[string]any, error) {
	top, err := scanObject(offer, nil)
	if err != nil {
		return nil, err
	}
	c := newCopier(len(top))
	v, err := c.value(top)
	if err = cmp.Or(err, c.err); err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// JQLogic compiles a jq program into a logic. The program receives the job
// as a JSON object; its output replaces the job. An output of null or false,
// or no output at all, drops the job; an object keeps it; more than one
// output, any other value or a runtime error is a failure.
//
// The error, if any, is a compile error. The logic is safe for concurrent
// use; each run is bounded in time and sees no environment variables.
func JQLogic(program string) (Logic, error) {
	code, err := compileJQ(program)
	if err != nil {
		return nil, err
	}
	return func(job hrflow.Job) (hrflow.Job, bool, error) {
		in, _, err := plain(map[string]any(job))
		if err != nil {
			return nil, false, fmt.Errorf("jq: job: %w", err)
		}
		out, ok, err := runJQ(code, in)
		if err != nil {
			return nil, false, err
		}
		if !ok || out == nil || out == false {
			return nil, false, nil
		}
		next, err := jqJob(out)
		if err != nil {
			return nil, false, fmt.Errorf("%w (null or false drops the job)", err)
		}
		return next, true, nil
	}, nil
}

// jqJob turns the output of a jq program into a job.
func jqJob(out any) (hrflow.Job, error) {
	m, isObject := out.(map[string]any)
	if !isObject {
		return nil, fmt.Errorf("jq: the program produced a JSON %s, not an object", jsonType(out))
	}
	if err := normalize(m); err != nil {
		return nil, fmt.Errorf("jq: %w", err)
	}
	return hrflow.Job(m), nil
}

// normalize rewrites, in place, the numbers of a jq output that do not
// encode as JSON or are unusual in Go: NaN becomes null and ±Inf the largest
// float64, as jq prints them; a big integer becomes a float64 when exact, its
// json.Number text otherwise.
func normalize(v any) error {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			y, err := normalizeValue(x)
			if err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
			v[k] = y
		}
	case []any:
		for i, x := range v {
			y, err := normalizeValue(x)
			if err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
			v[i] = y
		}
	}
	return nil
}

func normalizeValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string, int, json.Number:
		return v, nil
	case float64:
		switch {
		case math.IsNaN(x):
			return nil, nil
		case math.IsInf(x, 1):
			return math.MaxFloat64, nil
		case math.IsInf(x, -1):
			return -math.MaxFloat64, nil
		}
		return v, nil
	case *big.Int:
		if f, acc := new(big.Float).SetInt(x).Float64(); acc == big.Exact {
			return f, nil
		}
		return json.Number(x.String()), nil
	case map[string]any, []any:
		return v, normalize(v)
	}
	return nil, fmt.Errorf("unexpected value of type %T", v)
}

// plain returns v with only the types a jq program accepts (nil, bool,
// float64, int, json.Number, *big.Int, string, []any, map[string]any), and
// whether that changed anything. What already is plain is shared, not
// copied: a map or list is copied only when something in it changes. Tags
// become maps; other Go values go through encoding/json.
func plain(v any) (out any, changed bool, err error) {
	switch x := v.(type) {
	case nil, bool, float64, int, json.Number, *big.Int, string:
		return v, false, nil
	case hrflow.Job:
		out, _, err := plain(map[string]any(x))
		return out, true, err
	case map[string]any:
		var copied map[string]any
		for k, item := range x {
			p, changed, err := plain(item)
			if err != nil {
				return nil, false, fmt.Errorf("%q: %w", k, err)
			}
			if changed && copied == nil {
				copied = maps.Clone(x)
			}
			if changed {
				copied[k] = p
			}
		}
		if copied == nil {
			return x, false, nil
		}
		return copied, true, nil
	case []any:
		var copied []any
		for i, item := range x {
			p, changed, err := plain(item)
			if err != nil {
				return nil, false, fmt.Errorf("[%d]: %w", i, err)
			}
			if changed && copied == nil {
				copied = slices.Clone(x)
			}
			if changed {
				copied[i] = p
			}
		}
		if copied == nil {
			return x, false, nil
		}
		return copied, true, nil
	case []Tag:
		list := make([]any, len(x))
		for i, t := range x {
			value, _, err := plain(t.Value)
			if err != nil {
				return nil, false, fmt.Errorf("[%d]: %w", i, err)
			}
			list[i] = map[string]any{"name": t.Name, "value": value}
		}
		return list, true, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false, err
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// jsonType names the JSON type of a decoded value, for messages.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64, int, json.Number, *big.Int:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
