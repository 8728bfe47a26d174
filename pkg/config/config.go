// Package config reads a pulljobs configuration: YAML whose sections and
// keys are named as in the seed's pull_jobs action (origin_parameters,
// target_parameters, action_parameters), plus a pipeline section and, for a
// profile of `fetcher serve`, a schedule.
//
// Reading is strict: an unknown key is an error (a typo must not silently
// change a run), every error names its key, and ${VAR} (or ${VAR:-default})
// in a value is replaced from the environment, so that secrets can stay out
// of the file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
)

// Config is a whole configuration file.
type Config struct {
	Origin   Origin            `yaml:"origin_parameters"`
	Target   Target            `yaml:"target_parameters"`
	Action   format.Spec       `yaml:"action_parameters"`
	Pipeline pipeline.Settings `yaml:"pipeline"`
	// Schedule, when set, makes `fetcher serve` start runs by itself.
	Schedule *Schedule `yaml:"schedule"`
}

// Origin is origin_parameters: the France Travail credentials and endpoints,
// and every search criterion, named as the API names them.
type Origin struct {
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	APIBaseURL   string `yaml:"api_base_url"`
	TokenURL     string `yaml:"token_url"`
	// RateLimit is the France Travail quota in calls per second; absent
	// means francetravail.DefaultRateLimit, 0 means no limit.
	RateLimit           *float64 `yaml:"rate_limit"`
	francetravail.Query `yaml:",inline"`
}

// Target is target_parameters: the HrFlow credentials, the board, and what
// a run may do to it.
type Target struct {
	APISecret         string `yaml:"api_secret"`
	APIUser           string `yaml:"api_user"`
	BoardKey          string `yaml:"board_key"`
	Sync              *bool  `yaml:"sync"` // default true
	UpdateContent     bool   `yaml:"update_content"`
	EnrichWithParsing bool   `yaml:"enrich_with_parsing"`
	APIBaseURL        string `yaml:"api_base_url"`
	// RateLimit is the HrFlow quota shared by every pusher: calls per
	// second, or auto to learn it; absent means DefaultHrFlowRateLimit, 0
	// means no limit.
	RateLimit *HrFlowRate `yaml:"rate_limit"`
	// ListLimit is the jobs a page of the board's listing asks for; absent
	// or 0 means hrflow.DefaultListLimit. The client falls back to 30 when
	// HrFlow refuses it or serves fewer.
	ListLimit int `yaml:"list_limit"`
	// SyncMaxShare is the largest share of the board's live jobs that sync
	// may archive; absent means pipeline.DefaultSyncMaxShare.
	SyncMaxShare *float64 `yaml:"sync_max_share"`
	// ForceSync lifts the SyncMaxShare guard for the runs it starts.
	ForceSync bool `yaml:"force_sync"`
	// Weight is the share of the fleet (its workers, and the HrFlow quota
	// their calls wait for) that the runs get against the other runs in
	// flight: weight 2 is served twice as fast as weight 1 while both have
	// items waiting. Absent means 1.
	Weight *float64 `yaml:"weight"`
}

// DefaultHrFlowRateLimit is the HrFlow calls per second all pushers share
// when the configuration says nothing.
const DefaultHrFlowRateLimit = 10

// HrFlowRate is target_parameters.rate_limit: a fixed rate in calls per
// second (0: no limit), or, written auto, a rate learned from HrFlow's
// answers (ratelimit.NewAdaptive).
type HrFlowRate struct {
	Auto      bool
	PerSecond float64
}

// rateAuto is how a configuration asks for an adaptive rate.
const rateAuto = "auto"

// UnmarshalYAML reads a number or auto.
func (r *HrFlowRate) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && strings.EqualFold(n.Value, rateAuto) {
		*r = HrFlowRate{Auto: true}
		return nil
	}
	var f float64
	if err := n.Decode(&f); err != nil {
		return fmt.Errorf("line %d: %q: want calls per second, or auto", n.Line, n.Value)
	}
	*r = HrFlowRate{PerSecond: f}
	return nil
}

// String is the rate as a configuration writes it.
func (r HrFlowRate) String() string {
	if r.Auto {
		return rateAuto
	}
	return strconv.FormatFloat(r.PerSecond, 'g', -1, 64)
}

// Sections, as named in the file; an Error's Section is one of them.
const (
	SectionOrigin   = "origin_parameters"
	SectionTarget   = "target_parameters"
	SectionAction   = "action_parameters"
	SectionPipeline = "pipeline"
)

// Error is a configuration error; Key names the key at fault
// ("origin_parameters.departement"), or is empty for the file as a whole.
type Error struct {
	Key string
	Err error
}

func (e *Error) Error() string {
	if e.Key == "" {
		return "configuration: " + e.Err.Error()
	}
	return "configuration: " + e.Key + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// ExitCode makes a command refused for a configuration error exit with
// cli.ExitUsage, before any network call.
func (e *Error) ExitCode() int { return cli.ExitUsage }

// Reason returns the report's reason for a run refused because of this
// error: bad_origin_parameters, bad_target_parameters,
// bad_action_parameters, or bad_pipeline_parameters.
func (e *Error) Reason() string {
	section, _, _ := strings.Cut(e.Key, ".")
	switch section {
	case SectionOrigin:
		return "bad_origin_parameters"
	case SectionTarget:
		return "bad_target_parameters"
	case SectionAction:
		return "bad_action_parameters"
	case SectionPipeline:
		return "bad_pipeline_parameters"
	case SectionSchedule:
		return "bad_schedule"
	}
	return "bad_configuration"
}

func errorf(key, format string, args ...any) *Error {
	return &Error{Key: key, Err: fmt.Errorf(format, args...)}
}

// Load reads and decodes the file at path; see Parse.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, &Error{Err: err}
	}
	return Parse(bytes.NewReader(b), os.LookupEnv)
}

// Parse decodes a configuration: ${VAR} references are expanded with
// lookup, unknown keys are refused, defaults are filled in. It checks the
// shape of the file; Validate checks what a given role needs.
func Parse(r io.Reader, lookup func(string) (string, bool)) (Config, error) {
	var c Config
	var doc yaml.Node
	dec := yaml.NewDecoder(r)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return c, &Error{Err: errors.New("empty file")}
		}
		return c, &Error{Err: err}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return c, &Error{Err: fmt.Errorf("line %d: want a mapping of sections", root.Line)}
	}
	if err := expand(root, "", lookup); err != nil {
		return c, err
	}
	if err := checkKeys(root, reflect.TypeOf(c), ""); err != nil {
		return c, err
	}
	// Decode section by section, so that an error names its section.
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i].Value, root.Content[i+1]
		var err error
		switch key {
		case SectionOrigin:
			err = val.Decode(&c.Origin)
		case SectionTarget:
			err = val.Decode(&c.Target)
		case SectionAction:
			err = val.Decode(&c.Action)
		case SectionPipeline:
			err = val.Decode(&c.Pipeline)
		case SectionSchedule:
			err = val.Decode(&c.Schedule)
		}
		if err != nil {
			return c, &Error{Key: key, Err: cleanYAMLError(err)}
		}
	}
	return c, nil
}

// cleanYAMLError drops the library's Go type names from a decoding error.
func cleanYAMLError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			m = strings.ReplaceAll(m, "cannot unmarshal !!str", "cannot read the string")
			msgs[i] = strings.TrimPrefix(m, "yaml: ")
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return err
}

// Role is what a process does, and so which parts of the configuration it
// needs: a formatter needs no credentials, a pusher no France Travail ones.
type Role int

// Roles.
const (
	RoleFetcher   Role = 1 << iota // needs origin credentials, the board, the action
	RoleFormatter                  // needs only the pipeline section
	RolePusher                     // needs target credentials
	RoleReplay                     // a fetcher replaying a stored run: the board and the action
	RoleAll       = RoleFetcher | RoleFormatter | RolePusher
)

// Validate checks what role needs, before any network call, and returns the
// first error, naming its key.
func (c Config) Validate(role Role) error {
	if err := c.Pipeline.Validate(); err != nil {
		return &Error{Key: SectionPipeline, Err: err}
	}
	if err := c.validateSchedule(); err != nil {
		return err
	}
	if role&RoleFetcher != 0 {
		if err := c.validateOrigin(); err != nil {
			return err
		}
	}
	if role&(RoleFetcher|RoleReplay) != 0 {
		if err := c.validateBoard(); err != nil {
			return err
		}
		if _, err := c.Action.Compile(); err != nil {
			return ActionError(err)
		}
	}
	if role&RolePusher != 0 {
		if err := c.validateTarget(); err != nil {
			return err
		}
	}
	return nil
}

// ActionError turns an error of format.Spec.Compile into a configuration
// error naming the part of action_parameters at fault.
func ActionError(err error) *Error {
	key := SectionAction
	var se *format.SpecError
	if errors.As(err, &se) && se.Field != "" {
		key += "." + se.Field
		err = se.Err
		if se.Name != "" {
			err = fmt.Errorf("%q: %w", se.Name, se.Err)
		}
	}
	return &Error{Key: key, Err: err}
}

func (c Config) validateOrigin() error {
	o := c.Origin
	if o.ClientID == "" {
		return errorf(SectionOrigin+".client_id", "required (the France Travail application's client id)")
	}
	if o.ClientSecret == "" {
		return errorf(SectionOrigin+".client_secret", "required (the France Travail application's secret)")
	}
	if o.RateLimit != nil && *o.RateLimit < 0 {
		return errorf(SectionOrigin+".rate_limit", "%v: want calls per second ≥ 0 (0 = no limit)", *o.RateLimit)
	}
	if err := o.Query.Validate(); err != nil {
		var ve *francetravail.ValidationError
		if errors.As(err, &ve) {
			return &Error{Key: SectionOrigin + "." + ve.Field, Err: err}
		}
		return &Error{Key: SectionOrigin, Err: err}
	}
	if _, err := francetravail.NewClient(c.FranceTravail()); err != nil {
		return &Error{Key: SectionOrigin, Err: err}
	}
	return nil
}

func (c Config) validateBoard() error {
	t := c.Target
	if t.BoardKey == "" {
		return errorf(SectionTarget+".board_key", "required (the HrFlow board's key)")
	}
	if w := c.Target.Weight; w != nil && !(*w > 0 && *w <= MaxWeight) {
		return errorf(SectionTarget+".weight", "%v: want a weight in (0, %d] (1 by default)", *w, MaxWeight)
	}
	spec := pipeline.RunSpec{BoardKey: t.BoardKey, SyncMaxShare: c.syncMaxShare(), ReplayOf: "-"}
	if err := spec.Validate(); err != nil {
		key := SectionTarget + ".board_key"
		if strings.HasPrefix(err.Error(), "sync_max_share") {
			key = SectionTarget + ".sync_max_share"
		}
		return &Error{Key: key, Err: err}
	}
	return nil
}

func (c Config) validateTarget() error {
	t := c.Target
	if t.APISecret == "" {
		return errorf(SectionTarget+".api_secret", "required (the HrFlow API key, sent as X-API-KEY)")
	}
	if t.APIUser == "" {
		return errorf(SectionTarget+".api_user", "required (the HrFlow user's e-mail, sent as X-USER-EMAIL)")
	}
	if t.RateLimit != nil && t.RateLimit.PerSecond < 0 {
		return errorf(SectionTarget+".rate_limit", "%v: want calls per second ≥ 0 (0 = no limit), or auto", t.RateLimit)
	}
	if t.ListLimit < 0 {
		return errorf(SectionTarget+".list_limit", "%d: want jobs a page ≥ 1 (0 = %d)", t.ListLimit, hrflow.DefaultListLimit)
	}
	if _, err := hrflow.NewClient(c.HrFlow()); err != nil {
		return &Error{Key: SectionTarget, Err: err}
	}
	return nil
}

func (c Config) syncMaxShare() float64 {
	if c.Target.SyncMaxShare == nil {
		return pipeline.DefaultSyncMaxShare
	}
	return *c.Target.SyncMaxShare
}

// FranceTravail returns the client configuration of origin_parameters.
func (c Config) FranceTravail() francetravail.Config {
	fc := francetravail.Config{
		ClientID:     c.Origin.ClientID,
		ClientSecret: c.Origin.ClientSecret,
		APIBaseURL:   c.Origin.APIBaseURL,
		TokenURL:     c.Origin.TokenURL,
	}
	if r := c.Origin.RateLimit; r != nil {
		fc.RateLimit = *r
		if *r == 0 {
			fc.RateLimit = -1 // the client's "no limit"
		}
	}
	return fc
}

// HrFlow returns the client configuration of target_parameters, without
// its rate limiter: the caller plugs in the one shared by all replicas
// (HrFlowRateLimit says how fast).
func (c Config) HrFlow() hrflow.Config {
	return hrflow.Config{APISecret: c.Target.APISecret, APIUser: c.Target.APIUser, BaseURL: c.Target.APIBaseURL,
		ListLimit: c.Target.ListLimit}
}

// HrFlowRateLimit is the HrFlow rate shared by all pushers: auto, or calls
// per second, 0 meaning no limit.
func (c Config) HrFlowRateLimit() HrFlowRate {
	if c.Target.RateLimit == nil {
		return HrFlowRate{PerSecond: DefaultHrFlowRateLimit}
	}
	return *c.Target.RateLimit
}

// RunSpec returns the spec of a run of this configuration: everything but
// the secrets.
func (c Config) RunSpec() pipeline.RunSpec {
	sync := c.Target.Sync == nil || *c.Target.Sync
	return pipeline.RunSpec{
		BoardKey:          c.Target.BoardKey,
		Query:             c.Origin.Query,
		Sync:              sync,
		UpdateContent:     c.Target.UpdateContent,
		EnrichWithParsing: c.Target.EnrichWithParsing,
		SyncMaxShare:      c.syncMaxShare(),
		ForceSync:         c.Target.ForceSync,
		Action:            c.Action,
		Weight:            c.weight(),
	}
}

// MaxWeight bounds a run's weight (target_parameters.weight, or a
// request's): a thousand runs of weight 1 beside it are still served.
const MaxWeight = 1000

// weight is the runs' weight, 0 (which reads as 1) when unset.
func (c Config) weight() float64 {
	if c.Target.Weight == nil {
		return 0
	}
	return *c.Target.Weight
}

// expand replaces ${VAR} and ${VAR:-default} in every scalar value under n.
// $${ is a literal ${. jq's own $variables are left alone.
func expand(n *yaml.Node, path string, lookup func(string) (string, bool)) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return nil
		}
		v, err := expandString(n.Value, lookup)
		if err != nil {
			return &Error{Key: path, Err: err}
		}
		if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			// A plain value is typed as if the expanded text were written
			// there (rate_limit: ${RATE} is a number); a quoted one stays a string.
			n.Tag = ""
		}
		n.Value = v
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := expand(n.Content[i+1], join(path, n.Content[i].Value), lookup); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := expand(c, path+"["+strconv.Itoa(i)+"]", lookup); err != nil {
				return err
			}
		}
	}
	return nil
}

func expandString(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		expr := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("${%s}: not an environment variable name", expr)
		}
		v, ok := lookup(name)
		switch {
		case ok && v != "":
		case hasDef:
			v = def
		case ok:
		default:
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		b.WriteString(v)
		s = s[i+end+1:]
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// checkKeys refuses mapping keys that t does not have, naming the closest
// known key. Types that decode themselves check their own keys.
func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return nil
			}
			return errorf(path, "line %d: want a mapping", n.Line)
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			ft, ok := fields[k]
			if !ok {
				return &Error{Key: join(path, k), Err: fmt.Errorf("line %d: unknown key%s", n.Content[i].Line, suggest(k, fields))}
			}
			if err := checkKeys(n.Content[i+1], ft, join(path, k)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				if err := checkKeys(c, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// yamlFields maps the YAML keys of a struct, inlined structs included, to
// their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// suggest names the known key closest to an unknown one, if any is close.
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestD := "", 4
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if d := distance(strings.ToLower(key), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
