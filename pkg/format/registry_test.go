package format

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// Registration is process-wide: tests use names unique per run, so that
// go test -count=N passes.
var registrations atomic.Int64

func uniqueSuffix() string  { return fmt.Sprintf("_%d", registrations.Add(1)) }
func currentSuffix() string { return fmt.Sprintf("_%d", registrations.Load()) }

func keepAll(j hrflow.Job) (hrflow.Job, bool, error) { return j, true, nil }

func TestRegister(t *testing.T) {
	name := "test_format" + uniqueSuffix()
	Register(name, func(o francetravail.Offer) (hrflow.Job, error) {
		id, err := o.ID()
		return hrflow.Job{"reference": id, "name": "custom"}, err
	})
	logic := "test_logic" + currentSuffix()
	RegisterLogic(logic, func(j hrflow.Job) (hrflow.Job, bool, error) {
		j["name"] = j["name"].(string) + "+logic"
		return j, true, nil
	})
	c := mustCompile(t, Spec{Format: FormatSpec{Name: name}, Logics: []LogicSpec{{Func: logic}}})
	job, got, err := c.Apply(francetravail.Offer(offerInterim))
	if got != Kept || job["name"] != "custom+logic" {
		t.Fatalf("Apply() = %v, %v, %v; want kept custom+logic", job, got, err)
	}
	if _, err := (Spec{Format: FormatSpec{Name: "nope"}}).Compile(); err == nil || !strings.Contains(err.Error(), name) {
		t.Errorf("unknown format error = %v, want it to list %q", err, name)
	}
}

func TestRegisterPanics(t *testing.T) {
	f := func(francetravail.Offer) (hrflow.Job, error) { return nil, nil }
	dup := "test_dup" + uniqueSuffix()
	Register(dup, f)
	dupLogic := "test_dup_logic" + currentSuffix()
	RegisterLogic(dupLogic, keepAll)
	tests := []struct {
		name string
		call func()
		want string
	}{
		{"empty name", func() { Register("", f) }, "empty name"},
		{"nil func", func() { Register("test_nil", nil) }, "nil Func"},
		{"builtin pole_emploi", func() { Register(NamePoleEmploi, f) }, "built-in"},
		{"builtin format_job", func() { Register(NameFormatJob, f) }, "built-in"},
		{"builtin rich", func() { Register(NameRich, f) }, "built-in"},
		{"duplicate", func() { Register(dup, f) }, "twice"},
		{"logic empty name", func() { RegisterLogic("", keepAll) }, "empty name"},
		{"logic nil", func() { RegisterLogic("test_nil", nil) }, "nil Logic"},
		{"logic duplicate", func() { RegisterLogic(dupLogic, keepAll) }, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), tt.want) {
					t.Errorf("panic = %v, want one containing %q", r, tt.want)
				}
			}()
			tt.call()
		})
	}
}
