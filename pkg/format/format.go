package format

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// Func builds a job from one raw offer. It returns an error when it cannot:
// the run counts a format_failure. A Func must be safe for concurrent use.
type Func func(offer francetravail.Offer) (hrflow.Job, error)

// Logic transforms or drops a formatted job: keep=false discards it (a
// logics_discard), an error is a logics_failure. It may modify and return
// the job it is given. A Logic must be safe for concurrent use.
type Logic func(job hrflow.Job) (next hrflow.Job, keep bool, err error)

// builtins are the formats known without registration, by name.
var builtins = map[string]Func{
	NamePoleEmploi: PoleEmploi,
	NameFormatJob:  PoleEmploi,
	NameRich:       Rich,
}

// registry holds the formats and logics that embedders registered.
var registry struct {
	sync.RWMutex
	formats map[string]Func
	logics  map[string]Logic
}

// Register makes a Go format available by name, for FormatSpec.Name. It is
// meant to be called from an init function of the binary that embeds the
// pipeline, like sql.Register. It panics if name is empty, is the name of a
// built-in format, is already registered, or if f is nil.
func Register(name string, f Func) {
	registry.Lock()
	defer registry.Unlock()
	switch {
	case name == "":
		panic("format: Register with an empty name")
	case f == nil:
		panic(fmt.Sprintf("format: Register %q with a nil Func", name))
	case builtins[name] != nil:
		panic(fmt.Sprintf("format: Register %q: the name of a built-in format", name))
	case registry.formats[name] != nil:
		panic(fmt.Sprintf("format: Register called twice for %q", name))
	}
	if registry.formats == nil {
		registry.formats = make(map[string]Func)
	}
	registry.formats[name] = f
}

// RegisterLogic makes a Go logic available by name, for LogicSpec.Func. Like
// Register, it panics if name is empty or already registered, or if l is nil.
func RegisterLogic(name string, l Logic) {
	registry.Lock()
	defer registry.Unlock()
	switch {
	case name == "":
		panic("format: RegisterLogic with an empty name")
	case l == nil:
		panic(fmt.Sprintf("format: RegisterLogic %q with a nil Logic", name))
	case registry.logics[name] != nil:
		panic(fmt.Sprintf("format: RegisterLogic called twice for %q", name))
	}
	if registry.logics == nil {
		registry.logics = make(map[string]Logic)
	}
	registry.logics[name] = l
}

// lookupFormat returns the built-in or registered format called name.
func lookupFormat(name string) (Func, bool) {
	if f := builtins[name]; f != nil {
		return f, true
	}
	registry.RLock()
	defer registry.RUnlock()
	f := registry.formats[name]
	return f, f != nil
}

// lookupLogic returns the registered logic called name.
func lookupLogic(name string) (Logic, bool) {
	registry.RLock()
	defer registry.RUnlock()
	l := registry.logics[name]
	return l, l != nil
}

// formatNames lists the known format names, built-ins first.
func formatNames() []string {
	names := []string{NamePoleEmploi, NameRich}
	registry.RLock()
	defer registry.RUnlock()
	return append(names, slices.Sorted(maps.Keys(registry.formats))...)
}

// logicNames lists the registered logic names.
func logicNames() []string {
	registry.RLock()
	defer registry.RUnlock()
	return slices.Sorted(maps.Keys(registry.logics))
}
