package francetravailtest

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

// result is the complete, sorted result set of one query on one corpus,
// cached so that paging through it costs a slice per call.
type result struct {
	corpus Corpus
	ids    []int32    // offer indexes in answer order
	facets []byte     // filtresPossibles, JSON
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
	c, gen := e.corpus, e.gen
	if r, ok := e.cache[key]; ok {
		e.mu.Unlock()
		return r
	}
	e.mu.Unlock()

	r := compute(c, p, cutoff)

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

type hit struct {
	i       int32
	origine byte
	created int64
}

// compute filters and sorts the whole corpus for p.
func compute(c Corpus, p *searchParams, cutoff int64) *result {
	var hits []hit
	f := newFacets()
	var parser fastjson.Parser
	for i := 0; i < c.Len(); i++ {
		en := c.Entry(i)
		if !p.match(&en, cutoff) {
			continue
		}
		if len(p.motsCles) > 0 && !matchWords(&parser, c.Offer(i), p.motsCles) {
			continue
		}
		hits = append(hits, hit{i: int32(i), origine: en.Origine, created: en.Created})
		f.add(&en)
	}
	newestFirst := func(a, b hit) int {
		switch {
		case a.created != b.created:
			if a.created > b.created {
				return -1
			}
			return 1
		}
		return int(a.i - b.i)
	}
	switch p.sort {
	case 0:
		// Relevance: France Travail offers first, then partners, each
		// newest first.
		slices.SortFunc(hits, func(a, b hit) int {
			if a.origine != b.origine {
				return int(originRank(a.origine)) - int(originRank(b.origine))
			}
			return newestFirst(a, b)
		})
	default:
		// 1: creation date. 2: distance, which the emulator approximates by
		// creation date (it does not compute distances).
		slices.SortFunc(hits, newestFirst)
	}
	ids := make([]int32, len(hits))
	for k, h := range hits {
		ids[k] = h.i
	}
	return &result{corpus: c, ids: ids, facets: f.json()}
}

func originRank(o byte) byte {
	if o == '1' {
		return 0
	}
	return 1
}

// match applies every filter but motsCles.
func (p *searchParams) match(en *Entry, cutoff int64) bool {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	switch {
	case !in(p.romes, en.ROME),
		!in(p.communes, en.Commune),
		!in(p.depts, en.Departement),
		len(p.regions) > 0 && !slices.Contains(p.regions, regionOfDept[en.Departement]),
		!in(p.types, en.TypeContrat),
		!in(p.natures, en.NatureContrat),
		p.origine != 0 && en.Origine != p.origine,
		p.expExigence != 0 && en.ExperienceExige != p.expExigence,
		p.experience != 0 && en.Experience != p.experience,
		p.qualification == '9' && en.Qualification != '9',
		p.qualification == '0' && (en.Qualification < '1' || en.Qualification > '8'),
		cutoff != 0 && en.Created < cutoff,
		// UNVERIFIED: both bounds inclusive, to the millisecond.
		p.hasDates && (en.Created < p.minCreated || en.Created > p.maxCreated):
		return false
	}
	return true
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

// facets counts filtresPossibles over a whole result set.
type facets struct {
	typeContrat, experience, qualification, natureContrat map[string]int
}

func newFacets() *facets {
	return &facets{map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}}
}

func (f *facets) add(en *Entry) {
	if en.TypeContrat != "" {
		f.typeContrat[en.TypeContrat]++
	}
	if en.Experience != 0 {
		f.experience[string(en.Experience)]++
	}
	switch {
	case en.Qualification == '9':
		f.qualification["9"]++
	case en.Qualification >= '1' && en.Qualification <= '8':
		f.qualification["0"]++
	default:
		f.qualification["X"]++
	}
	if en.NatureContrat != "" {
		f.natureContrat[en.NatureContrat]++
	}
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
	out := make([]filtre, 0, 4)
	for _, x := range []struct {
		name string
		m    map[string]int
	}{{"typeContrat", f.typeContrat}, {"experience", f.experience}, {"qualification", f.qualification}, {"natureContrat", f.natureContrat}} {
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
