package francetravailtest

import (
	"slices"
	"sort"
)

// index is what the emulator's filters and sorts read of a corpus, built
// once when the corpus is set, so that a query costs a scan of small rows
// rather than an Entry (strings, for a synthetic corpus a generation) per
// offer: rows sorted by creation date, so that a creation-date window is a
// slice found by binary search, with each string replaced by its code in a
// dictionary. About 36 bytes an offer: a million offers in 36 MB.
type index struct {
	created                          []int64 // dateCreation in ms, ascending
	rows                             []row   // in the same order; ties by corpus index, descending
	rome, commune, dept, typ, nature dict
}

// row is one offer in the index.
type row struct {
	i                                  int32 // index in the corpus
	rome, commune, dept, typ, nature   uint32
	origine, qualif, exige, experience byte
}

// dict numbers the distinct values of a field; code 0 is "" (absent).
type dict struct {
	codes map[string]uint32
	names []string
	first []int32 // the corpus index of the first offer with each value
}

func newDict() dict {
	return dict{codes: map[string]uint32{"": 0}, names: []string{""}, first: []int32{-1}}
}

func (d *dict) code(s string, i int32) uint32 {
	c, ok := d.codes[s]
	if !ok {
		c = uint32(len(d.names))
		d.codes[s] = c
		d.names = append(d.names, s)
		d.first = append(d.first, i)
	}
	return c
}

// set returns which codes are among values; nil for no values (no
// filter). A value the corpus does not hold matches nothing.
func (d *dict) set(values []string) []bool {
	if len(values) == 0 {
		return nil
	}
	out := make([]bool, len(d.names))
	for _, v := range values {
		if c, ok := d.codes[v]; ok {
			out[c] = true
		}
	}
	return out
}

func newIndex(c Corpus) *index {
	n := c.Len()
	ix := &index{created: make([]int64, n), rows: make([]row, n),
		rome: newDict(), commune: newDict(), dept: newDict(), typ: newDict(), nature: newDict()}
	for i := range n {
		en := c.Entry(i)
		k := int32(i)
		ix.created[i] = en.Created
		ix.rows[i] = row{i: k,
			rome: ix.rome.code(en.ROME, k), commune: ix.commune.code(en.Commune, k), dept: ix.dept.code(en.Departement, k),
			typ: ix.typ.code(en.TypeContrat, k), nature: ix.nature.code(en.NatureContrat, k),
			origine: en.Origine, qualif: en.Qualification, exige: en.ExperienceExige, experience: en.Experience}
	}
	sort.Sort(byCreation{ix})
	return ix
}

// byCreation sorts the rows (and their dates) by date, then by corpus index
// descending, so that reading backwards gives the API's order: newest
// first, ties by corpus index.
type byCreation struct{ *index }

func (s byCreation) Len() int { return len(s.rows) }
func (s byCreation) Less(a, b int) bool {
	if s.created[a] != s.created[b] {
		return s.created[a] < s.created[b]
	}
	return s.rows[a].i > s.rows[b].i
}
func (s byCreation) Swap(a, b int) {
	s.created[a], s.created[b] = s.created[b], s.created[a]
	s.rows[a], s.rows[b] = s.rows[b], s.rows[a]
}

// filter is a query's filters resolved to codes; a nil set filters nothing.
type filter struct {
	rome, commune, dept, region, typ, nature  []bool
	origine, exige, experience, qualification byte
}

func (ix *index) filter(p *searchParams) *filter {
	f := &filter{rome: ix.rome.set(p.romes), commune: ix.commune.set(p.communes), dept: ix.dept.set(p.depts),
		typ: ix.typ.set(p.types), nature: ix.nature.set(p.natures),
		origine: p.origine, exige: p.expExigence, experience: p.experience, qualification: p.qualification}
	if len(p.regions) > 0 {
		f.region = make([]bool, len(ix.dept.names))
		for c, d := range ix.dept.names {
			f.region[c] = slices.Contains(p.regions, regionOfDept[d])
		}
	}
	return f
}

func in(set []bool, code uint32) bool { return set == nil || set[code] }

// match applies every filter but the dates and motsCles.
func (f *filter) match(r *row) bool {
	return in(f.rome, r.rome) && in(f.commune, r.commune) && in(f.dept, r.dept) && in(f.region, r.dept) &&
		in(f.typ, r.typ) && in(f.nature, r.nature) &&
		(f.origine == 0 || r.origine == f.origine) &&
		(f.exige == 0 || r.exige == f.exige) &&
		(f.experience == 0 || r.experience == f.experience) &&
		(f.qualification != '9' || r.qualif == '9') &&
		(f.qualification != '0' || r.qualif >= '1' && r.qualif <= '8')
}

// window returns the rows created in [from, to] (ms), as a range of
// indexes.
func (ix *index) window(from, to int64) (lo, hi int) {
	lo, _ = slices.BinarySearch(ix.created, from)
	hi = sort.Search(len(ix.created), func(k int) bool { return ix.created[k] > to })
	return lo, max(lo, hi)
}
