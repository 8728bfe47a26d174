package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Spec describes how a run formats and filters offers: the action
// parameters format and logics. It is plain data, so that it travels in a
// configuration file (YAML) and inside a run spec (JSON); Compile turns it
// into a Chain.
type Spec struct {
	Format FormatSpec  `json:"format" yaml:"format"`
	Logics []LogicSpec `json:"logics,omitempty" yaml:"logics,omitempty"`
}

// FormatSpec names the format: either Name, a built-in ("pole_emploi", the
// default, also called "format_job"; "rich") or a name given to Register, or
// JQ, a jq program that builds the job from the offer. Both empty means
// pole_emploi.
//
// In YAML and JSON a FormatSpec is a string (the name) or an object {jq:
// "<program>"}; null or an empty string means the default.
type FormatSpec struct {
	Name string
	JQ   string
}

// LogicSpec is one logic: exactly one of JQ, a jq program, and Func, a name
// given to RegisterLogic. Name is an optional label for errors and reports.
// In YAML and JSON a LogicSpec is an object with these keys; any other key
// is an error.
type LogicSpec struct {
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	JQ   string `json:"jq,omitempty" yaml:"jq,omitempty"`
	Func string `json:"func,omitempty" yaml:"func,omitempty"`
}

// Keys of the objects of a Spec.
const (
	keyJQ   = "jq"
	keyName = "name"
	keyFunc = "func"
)

// SpecError is the error of Compile: a Spec that cannot run, a configuration
// error (callers exit 2 or report bad_action_parameters). Field names the
// faulty part, "format" or "logics[i]" (0-based); Name is the logic's label
// when it has one.
type SpecError struct {
	Field string
	Name  string
	Err   error
}

func (e *SpecError) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("%s %q: %v", e.Field, e.Name, e.Err)
	}
	return e.Field + ": " + e.Err.Error()
}

func (e *SpecError) Unwrap() error { return e.Err }

// Compile validates s and compiles its programs, once per run: a jq program
// that does not compile, an unknown format or logic, a logic with both or
// neither of jq and func, all fail with a *SpecError naming the part. The
// Chain is safe for concurrent use.
func (s Spec) Compile() (*Chain, error) {
	c := &Chain{}
	switch f := s.Format; {
	case f.JQ != "" && f.Name != "":
		return nil, &SpecError{Field: "format", Err: fmt.Errorf("both a name (%q) and a jq program: want one", f.Name)}
	case f.JQ != "":
		if strings.TrimSpace(f.JQ) == "" {
			return nil, &SpecError{Field: "format", Err: errors.New("jq: empty program")}
		}
		fn, err := JQ(f.JQ)
		if err != nil {
			return nil, &SpecError{Field: "format", Err: err}
		}
		c.Format, c.formatName = fn, keyJQ
	default:
		name := f.Name
		if name == "" || name == NameFormatJob {
			name = NamePoleEmploi
		}
		fn, ok := lookupFormat(name)
		if !ok {
			return nil, &SpecError{Field: "format", Err: fmt.Errorf("unknown format %q (known: %s)", f.Name, strings.Join(formatNames(), ", "))}
		}
		c.Format, c.formatName = fn, name
		c.trusted = builtins[name] != nil
	}
	for i, l := range s.Logics {
		field := "logics[" + strconv.Itoa(i) + "]"
		fail := func(err error) (*Chain, error) {
			return nil, &SpecError{Field: field, Name: l.Name, Err: err}
		}
		var logic Logic
		switch {
		case l.JQ != "" && l.Func != "":
			return fail(errors.New("both jq and func: want exactly one"))
		case l.JQ != "":
			if strings.TrimSpace(l.JQ) == "" {
				return fail(errors.New("jq: empty program"))
			}
			var err error
			if logic, err = JQLogic(l.JQ); err != nil {
				return fail(err)
			}
		case l.Func != "":
			var ok bool
			if logic, ok = lookupLogic(l.Func); !ok {
				known := "none is registered"
				if names := logicNames(); len(names) > 0 {
					known = "registered: " + strings.Join(names, ", ")
				}
				return fail(fmt.Errorf("unknown func %q (%s)", l.Func, known))
			}
		default:
			return fail(errors.New("neither jq nor func: want exactly one"))
		}
		label := l.Name
		if label == "" {
			label = l.Func
		}
		c.Logics = append(c.Logics, logic)
		c.logicNames = append(c.logicNames, label)
	}
	return c, nil
}

// MarshalJSON encodes f as its name, or as {"jq": program}.
func (f FormatSpec) MarshalJSON() ([]byte, error) {
	if f.JQ != "" {
		if f.Name != "" {
			return nil, fmt.Errorf("format: both a name (%q) and a jq program", f.Name)
		}
		return json.Marshal(map[string]string{keyJQ: f.JQ})
	}
	return json.Marshal(f.Name)
}

// UnmarshalJSON decodes a name, {"jq": program} or null.
func (f *FormatSpec) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = FormatSpec{}
		return nil
	case len(b) > 0 && b[0] == '"':
		var name string
		if err := json.Unmarshal(b, &name); err != nil {
			return fmt.Errorf("format: %w", err)
		}
		*f = FormatSpec{Name: name}
		return nil
	case len(b) > 0 && b[0] == '{':
		fields, err := jsonObject(b, keyJQ)
		if err != nil {
			return fmt.Errorf("format: %w", err)
		}
		program, ok := fields[keyJQ]
		if !ok {
			return errors.New(`format: want a format name or {"jq": program}, got an object without "jq"`)
		}
		if strings.TrimSpace(program) == "" {
			return errors.New("format: jq: empty program")
		}
		*f = FormatSpec{JQ: program}
		return nil
	}
	return fmt.Errorf(`format: want a format name or {"jq": program}, got %s`, abbreviate(b))
}

// UnmarshalJSON decodes {"name", "jq", "func"}, rejecting any other key.
func (l *LogicSpec) UnmarshalJSON(b []byte) error {
	fields, err := jsonObject(b, keyName, keyJQ, keyFunc)
	if err != nil {
		return fmt.Errorf("logic: %w", err)
	}
	return l.set(fields)
}

// set fills l from decoded fields, rejecting a present but blank program.
func (l *LogicSpec) set(fields map[string]string) error {
	next := LogicSpec{Name: fields[keyName], JQ: fields[keyJQ], Func: fields[keyFunc]}
	if program, ok := fields[keyJQ]; ok && strings.TrimSpace(program) == "" {
		return logicError(next.Name, errors.New("jq: empty program"))
	}
	if name, ok := fields[keyFunc]; ok && name == "" {
		return logicError(next.Name, errors.New("func: empty name"))
	}
	*l = next
	return nil
}

func logicError(name string, err error) error {
	if name != "" {
		return fmt.Errorf("logic %q: %w", name, err)
	}
	return fmt.Errorf("logic: %w", err)
}

// jsonObject decodes a JSON object whose values are all strings, with no key
// but allowed ones.
func jsonObject(b []byte, allowed ...string) (map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("want an object with keys %s: %w", strings.Join(allowed, ", "), err)
	}
	if raw == nil {
		return nil, fmt.Errorf("want an object with keys %s, got null", strings.Join(allowed, ", "))
	}
	fields := make(map[string]string, len(raw))
	for k, v := range raw {
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("unknown key %q (want %s)", k, strings.Join(allowed, ", "))
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("%s: want a string, got %s", k, abbreviate(v))
		}
		fields[k] = s
	}
	return fields, nil
}

// MarshalYAML encodes f as its name, or as {jq: program}.
func (f FormatSpec) MarshalYAML() (any, error) {
	if f.JQ != "" {
		if f.Name != "" {
			return nil, fmt.Errorf("format: both a name (%q) and a jq program", f.Name)
		}
		return map[string]string{keyJQ: f.JQ}, nil
	}
	return f.Name, nil
}

// UnmarshalYAML decodes a name, {jq: program} or null.
func (f *FormatSpec) UnmarshalYAML(n *yaml.Node) error {
	n = resolveAlias(n)
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		*f = FormatSpec{}
		return nil
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		*f = FormatSpec{Name: n.Value}
		return nil
	case n.Kind == yaml.MappingNode:
		fields, err := yamlObject(n, keyJQ)
		if err != nil {
			return fmt.Errorf("format: %w", err)
		}
		program, ok := fields[keyJQ]
		if !ok {
			return fmt.Errorf("format: line %d: want a format name or {jq: program}, got a mapping without jq", n.Line)
		}
		if strings.TrimSpace(program) == "" {
			return fmt.Errorf("format: line %d: jq: empty program", n.Line)
		}
		*f = FormatSpec{JQ: program}
		return nil
	}
	return fmt.Errorf("format: line %d: want a format name or {jq: program}, got %s", n.Line, yamlKind(n))
}

// UnmarshalYAML decodes {name, jq, func}, rejecting any other key.
func (l *LogicSpec) UnmarshalYAML(n *yaml.Node) error {
	n = resolveAlias(n)
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("logic: line %d: want a mapping with keys name, jq, func, got %s", n.Line, yamlKind(n))
	}
	fields, err := yamlObject(n, keyName, keyJQ, keyFunc)
	if err != nil {
		return fmt.Errorf("logic: %w", err)
	}
	if err := l.set(fields); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

// yamlObject decodes a mapping whose values are all strings, with no key but
// allowed ones, each at most once.
func yamlObject(n *yaml.Node, allowed ...string) (map[string]string, error) {
	fields := make(map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolveAlias(n.Content[i]), resolveAlias(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || !slices.Contains(allowed, k.Value) {
			return nil, fmt.Errorf("line %d: unknown key %q (want %s)", k.Line, k.Value, strings.Join(allowed, ", "))
		}
		if _, dup := fields[k.Value]; dup {
			return nil, fmt.Errorf("line %d: key %q given twice", k.Line, k.Value)
		}
		if v.Kind != yaml.ScalarNode || v.Tag != "!!str" {
			return nil, fmt.Errorf("line %d: %s: want a string, got %s", v.Line, k.Value, yamlKind(v))
		}
		fields[k.Value] = v.Value
	}
	return fields, nil
}

// resolveAlias follows YAML aliases (*name) to the node they stand for.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// yamlKind describes a node for messages.
func yamlKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		return fmt.Sprintf("%s %q", strings.TrimPrefix(n.Tag, "!!"), n.Value)
	}
	return "a document"
}

// abbreviate quotes the start of a JSON text for messages.
func abbreviate(b []byte) string {
	const max = 40
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
