package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

// Offers written for these tests (fictional).
const (
	offerCDI     = `{"id": "199CMDA", "intitule": "Boulanger (H/F)", "typeContratLibelle": "Contrat à durée indéterminée"}`
	offerInterim = `{"id": "199CMDB", "intitule": "Cariste (H/F)", "typeContratLibelle": "Intérim - 3 Mois"}`
	offerNoID    = `{"intitule": "Sans identifiant"}`
	offerBoom    = `{"id": "199CMDC", "intitule": "boom"}`
)

// testSpec drops interim offers and fails on the title "boom".
var testSpec = format.Spec{Logics: []format.LogicSpec{
	{Name: "drop_interim", JQ: `select(any(.tags[]; .name == "pole_emploi_contractType" and (.value // "" | startswith("Intérim"))) | not)`},
	{Name: "no_boom", JQ: `if .name == "boom" then error("boom is not a title") else . end`},
}}

func compile(t *testing.T, s format.Spec) *format.Chain {
	t.Helper()
	c, err := s.Compile()
	if err != nil {
		t.Fatalf("Compile() error = %v", err)
	}
	return c
}

func TestFormatOffers(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		wantCode int
		wantIDs  []string // references of the jobs written, in order
		wantErrs []string // stderr lines, each a prefix
	}{
		{"all kept", offerCDI + "\n" + offerCDI, cli.ExitSuccess, []string{"199CMDA", "199CMDA"}, nil},
		{"discards are not failures", offerInterim + "\n" + offerCDI, cli.ExitSuccess, []string{"199CMDA"}, nil},
		{"empty input", "", cli.ExitSuccess, nil, nil},
		{"format failure", offerNoID + "\n" + offerCDI, cli.ExitSuccessWithFailures, []string{"199CMDA"},
			[]string{`offer (no id): format_failure: format "pole_emploi": offer has no id`}},
		{"logics failure", offerBoom + "\n" + offerCDI, cli.ExitSuccessWithFailures, []string{"199CMDA"},
			[]string{`offer 199CMDC: logics_failure: logics[1] "no_boom": jq: boom is not a title`}},
		{"malformed line, goes on", offerCDI + "\n{\"id\": \n" + offerInterim + "\n" + offerCDI, cli.ExitSuccessWithFailures, []string{"199CMDA", "199CMDA"},
			[]string{"input: line 2: malformed JSON"}},
		{"array", "[" + offerCDI + "," + offerInterim + "," + offerNoID + "]", cli.ExitSuccessWithFailures, []string{"199CMDA"},
			[]string{"offer (no id): format_failure:"}},
		{"search response", `{"resultats": [` + offerCDI + `, ` + offerCDI + `], "filtresPossibles": []}`, cli.ExitSuccess, []string{"199CMDA", "199CMDA"}, nil},
		{"truncated array", "[" + offerCDI + ", {", cli.ExitSuccessWithFailures, []string{"199CMDA"}, []string{"input: read offers: item 1:"}},
	}
	chain := compile(t, testSpec)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errw bytes.Buffer
			code := formatOffers(context.Background(), chain, strings.NewReader(tt.input), &out, &errw)
			if code != tt.wantCode {
				t.Errorf("formatOffers() = %d, want %d (stderr %q)", code, tt.wantCode, errw.String())
			}
			if got := references(t, out.Bytes()); strings.Join(got, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("jobs written = %q, want %q", got, tt.wantIDs)
			}
			lines := nonEmptyLines(errw.String())
			if len(lines) != len(tt.wantErrs) {
				t.Fatalf("stderr = %q, want %d lines like %q", lines, len(tt.wantErrs), tt.wantErrs)
			}
			for i, want := range tt.wantErrs {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("stderr line %d = %q, want it to start with %q", i+1, lines[i], want)
				}
			}
		})
	}
}

// TestFormatOffersSameAsWorker checks that each line is the job the worker
// would push: Apply, then json.Marshal.
func TestFormatOffersSameAsWorker(t *testing.T) {
	offer, err := os.ReadFile(filepath.Join("..", "..", "pkg", "format", "testdata", "offers", "complete.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{format.NamePoleEmploi, format.NameRich} {
		chain := compile(t, format.Spec{Format: format.FormatSpec{Name: name}})
		var out, errw bytes.Buffer
		if code := formatOffers(context.Background(), chain, bytes.NewReader(offer), &out, &errw); code != cli.ExitSuccess {
			t.Fatalf("%s: formatOffers() = %d, stderr %q", name, code, errw.String())
		}
		job, _, err := chain.Apply(francetravail.Offer(offer))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(job)
		if got := bytes.TrimSuffix(out.Bytes(), []byte("\n")); !bytes.Equal(got, want) {
			t.Errorf("%s: formatOffers() wrote\n%s\nwant\n%s", name, got, want)
		}
	}
}

func TestFormatOffersStops(t *testing.T) {
	chain := compile(t, format.Spec{})
	input := strings.Repeat(offerCDI+"\n", 3)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errw bytes.Buffer
	if code := formatOffers(ctx, chain, strings.NewReader(input), &out, &errw); code != cli.ExitFatal || out.Len() != 0 {
		t.Errorf("cancelled: formatOffers() = %d, wrote %q; want %d and nothing", code, out.String(), cli.ExitFatal)
	}
	if !strings.Contains(errw.String(), "stopped: context canceled") {
		t.Errorf("cancelled: stderr = %q, want the reason", errw.String())
	}

	errw.Reset()
	if code := formatOffers(context.Background(), chain, strings.NewReader(input), failingWriter{}, &errw); code != cli.ExitFatal {
		t.Errorf("unwritable output: formatOffers() = %d, want %d", code, cli.ExitFatal)
	}
	if !strings.Contains(errw.String(), "stopped: write: disk full") {
		t.Errorf("unwritable output: stderr = %q, want the reason", errw.String())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// references returns the reference of each job line.
func references(t *testing.T, out []byte) []string {
	t.Helper()
	var refs []string
	for _, line := range nonEmptyLines(string(out)) {
		var job map[string]any
		if err := json.Unmarshal([]byte(line), &job); err != nil {
			t.Fatalf("output line %q is not a JSON object: %v", line, err)
		}
		ref, _ := job["reference"].(string)
		refs = append(refs, ref)
	}
	return refs
}

func nonEmptyLines(s string) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
