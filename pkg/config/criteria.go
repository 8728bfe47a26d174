package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

// ErrNotCriterion is matched by the error of an override that tries to set
// something else than a search criterion: a credential, an endpoint, a rate
// limit. A request may never redirect a run or replace its credentials.
var ErrNotCriterion = errors.New("not a search criterion: a request may never set credentials, endpoints or limits")

// WithCriteria returns c with some search criteria of origin_parameters
// replaced: origin is a JSON (or YAML) mapping of criteria named as in the
// file, each replacing the profile's value, null clearing it. The rest of c
// is untouched.
//
// It is as strict as the file: an unknown key is refused with the closest
// known one, a credential, endpoint or rate limit is refused with
// ErrNotCriterion, and the result is checked as Validate checks
// origin_parameters, with the same messages. Every error is an *Error
// naming its key; no error quotes the value of a refused key.
func (c Config) WithCriteria(origin []byte) (Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(origin, &doc); err != nil {
		return c, &Error{Key: SectionOrigin, Err: fmt.Errorf("unreadable: %v", cleanYAMLError(err))}
	}
	n := &doc
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == 0 || n.Tag == "!!null" {
		return c, nil
	}
	if n.Kind != yaml.MappingNode {
		return c, errorf(SectionOrigin, "want a mapping of search criteria")
	}
	criteria := yamlFields(reflect.TypeOf(francetravail.Query{}))
	origins := yamlFields(reflect.TypeOf(Origin{}))
	q := c.Origin.Query
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		key := SectionOrigin + "." + k
		if _, ok := criteria[k]; !ok {
			if _, ok := origins[k]; ok {
				return c, &Error{Key: key, Err: ErrNotCriterion}
			}
			return c, &Error{Key: key, Err: fmt.Errorf("unknown key%s", suggest(k, criteria))}
		}
		if err := setCriterion(&q, k, v); err != nil {
			return c, &Error{Key: key, Err: err}
		}
	}
	c.Origin.Query = q
	if err := c.validateOrigin(); err != nil {
		return c, err
	}
	return c, nil
}

// setCriterion decodes v into the field of q that key names; null zeroes it.
func setCriterion(q *francetravail.Query, key string, v *yaml.Node) error {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		rv := reflect.ValueOf(q).Elem()
		for i := range rv.NumField() {
			if name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("yaml"), ","); name == key {
				rv.Field(i).SetZero()
			}
		}
		return nil
	}
	m := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: key}, v}}
	if err := m.Decode(q); err != nil {
		return cleanYAMLError(err)
	}
	return nil
}

// Suggest returns " (did you mean K?)" for the known key K closest to key,
// or "" when none is close: the hint of every unknown-key error.
func Suggest(key string, known ...string) string {
	fields := make(map[string]reflect.Type, len(known))
	for _, k := range known {
		fields[k] = nil
	}
	return suggest(key, fields)
}

// Criteria returns the names of the search criteria of origin_parameters,
// sorted.
func Criteria() []string {
	names := make([]string, 0, 64)
	for k := range yamlFields(reflect.TypeOf(francetravail.Query{})) {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
