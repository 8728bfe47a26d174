package francetravailtest

import (
	"encoding/json"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

// result is the answer to one query on one corpus, cached so that paging
// through it costs a slice per call. Only the first MaxReachable matches
// can ever be served (a range starts at 3000 at most), so only those are
// kept: a result is a few kilobytes whatever the size of the corpus.
type result struct {
	corpus Corpus
	total  int        // matches
	ids    []int32    // the first MaxReachable matches, in answer order
	facets []byte     // filtresPossibles over every match, JSON
	ref    []refEntry // a referential derived from the corpus
}

// cacheGranularity is how long a publieeDepuis cut-off is reused: results of
// a query with publieeDepuis are recomputed at most once per this period.
const cacheGranularity = time.Minute

// result returns the result set of p, from the cache or computed.
func (e *Emulator) result(p *searchParams) *result {
	now := e.now()
	key := p.key
	var cutoff int64
	if p.publieeDepuis > 0 {
		t := now.Truncate(cacheGranularity)
		cutoff = t.Add(-time.Duration(p.publieeDepuis) * 24 * time.Hour).UnixMilli()
		key += "@" + t.Format(time.RFC3339)
	}
	e.mu.Lock()
	c, ix, gen := e.corpus, e.ix, e.gen
	if r, ok := e.cache[key]; ok {
		e.mu.Unlock()
		return r
	}
	e.mu.Unlock()

	r := compute(c, ix, p, cutoff)

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gen == gen { // the corpus did not change meanwhile
		if _, ok := e.cache[key]; !ok {
			if len(e.order) >= maxCachedResults {
				delete(e.cache, e.order[0])
				e.order = e.order[1:]
			}
			e.order = append(e.order, key)
		}
		e.cache[key] = r
	}
	return r
}

// compute filters the corpus for p through its index, newest first (for
// relevance, France Travail offers first, then partners'): only the rows
// of the creation-date window are read.
func compute(c Corpus, ix *index, p *searchParams, cutoff int64) *result {
	from, to := cutoff, int64(math.MaxInt64)
	if p.hasDates {
		from, to = max(from, p.minCreated), p.maxCreated
	}
	lo, hi := ix.window(from, to)
	f := ix.filter(p)
	fc := newFacets(ix)
	r := &result{corpus: c}
	var parser fastjson.Parser
	// Relevance: France Travail offers first, then the others, each
	// newest first. 1: creation date. 2: distance, which the emulator
	// approximates by creation date (it does not compute distances).
	passes := []func(origine byte) bool{func(byte) bool { return true }}
	if p.sort == 0 {
		passes = []func(byte) bool{func(o byte) bool { return o == '1' }, func(o byte) bool { return o != '1' }}
	}
	for _, pass := range passes {
		for k := hi - 1; k >= lo; k-- {
			row := &ix.rows[k]
			if !pass(row.origine) || !f.match(row) ||
				len(p.motsCles) > 0 && !matchWords(&parser, c.Offer(int(row.i)), p.motsCles) {
				continue
			}
			r.total++
			fc.add(row)
			if len(r.ids) < francetravail.MaxReachable {
				r.ids = append(r.ids, row.i)
			}
		}
	}
	r.facets = fc.json()
	return r
}

// matchWords reports whether every folded word occurs in the offer's title,
// description, appellation, ROME label or company name (the API's exact
// search fields are UNVERIFIED).
func matchWords(parser *fastjson.Parser, o francetravail.Offer, words []string) bool {
	v, err := parser.ParseBytes(o)
	if err != nil {
		return false
	}
	var text strings.Builder
	for _, path := range [][]string{{"intitule"}, {"description"}, {"appellationlibelle"}, {"romeLibelle"}, {"entreprise", "nom"}} {
		text.Write(v.GetStringBytes(path...))
		text.WriteByte(' ')
	}
	folded := fold(text.String())
	for _, w := range words {
		if !strings.Contains(folded, w) {
			return false
		}
	}
	return true
}

// facets counts filtresPossibles over a whole result set, by code.
type facets struct {
	ix                  *index
	typ, nature         []int
	experience          [256]int
	qualif9, qualif0, x int // qualification: executive, not, unknown
}

func newFacets(ix *index) *facets {
	return &facets{ix: ix, typ: make([]int, len(ix.typ.names)), nature: make([]int, len(ix.nature.names))}
}

func (f *facets) add(r *row) {
	f.typ[r.typ]++
	f.nature[r.nature]++
	f.experience[r.experience]++
	switch {
	case r.qualif == '9':
		f.qualif9++
	case r.qualif >= '1' && r.qualif <= '8':
		f.qualif0++
	default:
		f.x++
	}
}

// counts returns the non-zero counts of the non-empty values of a field.
func counts(d dict, n []int) map[string]int {
	m := map[string]int{}
	for c, k := range n {
		if k > 0 && d.names[c] != "" {
			m[d.names[c]] = k
		}
	}
	return m
}

type aggregation struct {
	Value string `json:"valeurPossible"`
	Count int    `json:"nbResultats"`
}

type filtre struct {
	Filtre      string        `json:"filtre"`
	Agregations []aggregation `json:"agregation"`
}

func (f *facets) json() []byte {
	experience := map[string]int{}
	for b, k := range f.experience {
		if k > 0 && b != 0 {
			experience[string(rune(b))] = k
		}
	}
	qualification := map[string]int{}
	for name, k := range map[string]int{"9": f.qualif9, "0": f.qualif0, "X": f.x} {
		if k > 0 {
			qualification[name] = k
		}
	}
	out := make([]filtre, 0, 4)
	for _, x := range []struct {
		name string
		m    map[string]int
	}{{"typeContrat", counts(f.ix.typ, f.typ)}, {"experience", experience}, {"qualification", qualification},
		{"natureContrat", counts(f.ix.nature, f.nature)}} {
		keys := make([]string, 0, len(x.m))
		for k := range x.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		aggs := make([]aggregation, 0, len(keys))
		for _, k := range keys {
			aggs = append(aggs, aggregation{Value: k, Count: x.m[k]})
		}
		out = append(out, filtre{Filtre: x.name, Agregations: aggs})
	}
	b, _ := json.Marshal(out)
	return b
}
