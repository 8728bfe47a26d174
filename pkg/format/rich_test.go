package format

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fastjson"
)

func TestParseSalary(t *testing.T) {
	tests := []struct {
		label string
		want  salaryRange
		ok    bool
	}{
		{"Mensuel de 2000.0 Euros à 2300.0 Euros sur 12.0 mois", salaryRange{2000, 2300, unitMonth}, true},
		{"Mensuel de 1810.00 Euros sur 12 mois", salaryRange{1810, 1810, unitMonth}, true},
		{"Mensuel de 1650,00 Euros à 1700,00 Euros", salaryRange{1650, 1700, unitMonth}, true},
		{"Mensuel de 1764,00 Euros", salaryRange{1764, 1764, unitMonth}, true},
		{"Annuel de 25000.0 Euros sur 12.0 mois", salaryRange{25000, 25000, unitYear}, true},
		{"Annuel de 22000,00 Euros à 35000,00 Euros", salaryRange{22000, 35000, unitYear}, true},
		{"Annuel de 35000,00 Euros", salaryRange{35000, 35000, unitYear}, true},
		{"Horaire de 11.88 Euros", salaryRange{11.88, 11.88, unitHour}, true},
		{"Horaire de 11,65 Euros à 11,65 Euros", salaryRange{11.65, 11.65, unitHour}, true},
		{"Horaire de 12.0 Euros à 13.5 Euros sur 12.0 mois", salaryRange{12, 13.5, unitHour}, true},
		{"Horaire de 12.27 Euros sur 12.0 mois", salaryRange{12.27, 12.27, unitHour}, true},
		{"Cachet de 150 Euros", salaryRange{150, 150, unitPerformance}, true},
		{"De 1800,00 Euros à 2100,00 Euros", salaryRange{1800, 2100, unitUnknown}, true},
		{"  mensuel DE 2300 euros a 2000 euros  ", salaryRange{2000, 2300, unitMonth}, true},
		{"Annuel de", salaryRange{}, false},
		{"", salaryRange{}, false},
		{"Selon profil", salaryRange{}, false},
		{"Mensuel de 1 800 Euros", salaryRange{}, false},
		{"Mensuel de 2000 Dollars", salaryRange{}, false},
		{"Hebdomadaire de 500 Euros", salaryRange{}, false},
		{"Mensuel de 2000 Euros et plus", salaryRange{}, false},
	}
	for _, tt := range tests {
		got, ok := parseSalary(tt.label)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseSalary(%q) = %+v, %v; want %+v, %v", tt.label, got, ok, tt.want, tt.ok)
		}
	}
}

// TestParseSalaryFixtures checks that every salary label of the real offers
// that holds an amount gives a range.
func TestParseSalaryFixtures(t *testing.T) {
	dir := fixtureDir(t)
	var p fastjson.Parser
	labels := 0
	for i, line := range readFixtureLines(t, filepath.Join(dir, "offers-dept74-2025-08.ndjson")) {
		v, err := p.ParseBytes(line)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		label := string(v.GetStringBytes("salaire", "libelle"))
		if !strings.ContainsAny(label, "0123456789") {
			continue
		}
		labels++
		if r, ok := parseSalary(label); !ok || r.Min <= 0 || r.Max < r.Min {
			t.Errorf("line %d: parseSalary(%q) = %+v, %v; want a range", i+1, label, r, ok)
		}
	}
	if labels == 0 {
		t.Fatal("no salary label in the fixtures")
	}
}
