package francetravail_test

import (
	"testing"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in      string
		want    francetravail.ContentRange
		wantErr bool
	}{
		{in: "offres 0-149/3200", want: francetravail.ContentRange{First: 0, Last: 149, Total: 3200}},
		{in: "offres 150-199/200", want: francetravail.ContentRange{First: 150, Last: 199, Total: 200}},
		{in: "0-149/3200", want: francetravail.ContentRange{First: 0, Last: 149, Total: 3200}},
		{in: "  offres   0 - 149 / 3200 ", want: francetravail.ContentRange{First: 0, Last: 149, Total: 3200}},
		{in: "items 3000-3149/9999", want: francetravail.ContentRange{First: 3000, Last: 3149, Total: 9999}},
		{in: "offres -1--1/40", want: francetravail.ContentRange{First: -1, Last: -1, Total: 40}},
		{in: "-1--1/40", want: francetravail.ContentRange{First: -1, Last: -1, Total: 40}},
		{in: "*/0", want: francetravail.ContentRange{First: -1, Last: -1, Total: 0}},
		{in: "offres */0", want: francetravail.ContentRange{First: -1, Last: -1, Total: 0}},
		{in: "offres 0-9/*", want: francetravail.ContentRange{First: 0, Last: 9, Total: -1}},
		{in: "", wantErr: true},
		{in: "offres", wantErr: true},
		{in: "offres 0-149", wantErr: true},
		{in: "offres 10-5/20", wantErr: true},
		{in: "offres -2--1/20", wantErr: true},
		{in: "offres a-b/c", wantErr: true},
		{in: "offres 0-1/-5", wantErr: true},
		{in: "*/*", wantErr: true},
		{in: "offres 0-99999999999999999999/1", wantErr: true},
	}
	for _, tt := range tests {
		got, err := francetravail.ParseContentRange(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseContentRange(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && got != tt.want {
			t.Errorf("ParseContentRange(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"offres 0-149/3200", "*/0", "offres -1--1/40", "0-1/2", " items 5 - 6 / 7 ", "-1--1/*", "offres 1-0/3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := francetravail.ParseContentRange(s)
		if err != nil {
			return
		}
		switch {
		case r.Empty() && (r.First != -1 || r.Last != -1):
			t.Fatalf("%q: empty range %+v", s, r)
		case !r.Empty() && (r.First < 0 || r.First > r.Last):
			t.Fatalf("%q: range %+v", s, r)
		case r.Total < -1:
			t.Fatalf("%q: total %d", s, r.Total)
		}
	})
}
