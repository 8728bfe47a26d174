package francetravailtest

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

// ruleDiffs lists how two tables of search parameters differ: parameters
// missing from one, out of order, or with another rule.
func ruleDiffs(client, emu []francetravail.ParamRule) []string {
	var diffs []string
	names := func(rs []francetravail.ParamRule) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = r.Name
		}
		return out
	}
	if cn, en := names(client), names(emu); !slices.Equal(cn, en) {
		diffs = append(diffs, fmt.Sprintf("parameters differ:\nclient   %v\nemulator %v", cn, en))
	}
	byName := make(map[string]francetravail.ParamRule, len(client))
	for _, r := range client {
		byName[r.Name] = r
	}
	for _, e := range emu {
		if c, ok := byName[e.Name]; ok && !reflect.DeepEqual(c, e) {
			diffs = append(diffs, fmt.Sprintf("%s:\nclient   %+v\nemulator %+v", e.Name, c, e))
		}
	}
	return diffs
}

func emulatorRules() []francetravail.ParamRule {
	out := make([]francetravail.ParamRule, len(params))
	for i, p := range params {
		out[i] = p.rule
	}
	return out
}

// TestParamsMatchClient holds the emulator's table of search parameters and
// the client's to the same contract: same parameters, same order, same
// rules. Change one, change the other (and say why against the spec).
func TestParamsMatchClient(t *testing.T) {
	for _, d := range ruleDiffs(francetravail.SearchParams(), emulatorRules()) {
		t.Error(d)
	}
}

// TestRuleDiffsSeesDrift makes sure the comparison above can fail: the
// drift of issue 8 (a range pattern of [0-9]+ on one side) and a parameter
// missing from one side are both reported.
func TestRuleDiffsSeesDrift(t *testing.T) {
	client := francetravail.SearchParams()
	drifted := emulatorRules()
	drifted[0].Pattern = `^([0-9]+)-([0-9]+)$`
	if d := ruleDiffs(client, drifted); len(d) != 1 {
		t.Errorf("range pattern drift: %d differences reported, want 1: %v", len(d), d)
	}
	if d := ruleDiffs(client, emulatorRules()[1:]); len(d) == 0 {
		t.Error("a parameter missing from the emulator is not reported")
	}
	enum := emulatorRules()
	enum[1].Enum = append(enum[1].Enum, "3")
	if d := ruleDiffs(client, enum); len(d) != 1 {
		t.Errorf("enum drift: %d differences reported, want 1", len(d))
	}
}

// TestEveryParamApplied checks that the parameters the emulator filters on
// are exactly those its package comment says it applies, plus range.
func TestEveryParamApplied(t *testing.T) {
	var got []string
	for _, p := range params {
		if p.apply != nil {
			got = append(got, p.Name)
		}
	}
	want := []string{"range", "sort", "codeROME", "experience", "experienceExigence", "typeContrat", "natureContrat",
		"origineOffre", "qualification", "commune", "departement", "region", "motsCles", "publieeDepuis",
		"minCreationDate", "maxCreationDate"}
	if !slices.Equal(got, want) {
		t.Errorf("applied parameters %v, want %v", got, want)
	}
}
