package francetravailtest

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

// SyntheticOptions shape a synthetic corpus. The zero value gives offers
// spread over all départements and the last 31 days, 57 % from partners, as
// in the real sample.
type SyntheticOptions struct {
	// Now ends the creation dates; zero means time.Now() when the corpus is
	// made. Offers are created in [Now-Span, Now) (Now truncated to the second).
	Now time.Time
	// Span is how far back creation dates go; 0 means 31 days. A Span of a
	// second or less puts every offer in the same second: a corpus that date
	// windows cannot split.
	Span time.Duration
	// Departements the offers are in, drawn uniformly; nil means every
	// département of the referential.
	Departements []string
	// PartnerShare is the share of partner offers (origineOffre 2): 0 means
	// DefaultPartnerShare, a negative value none, 1 or more all.
	PartnerShare float64
}

// Defaults of SyntheticOptions.
const (
	DefaultSpan         = 31 * 24 * time.Hour
	DefaultPartnerShare = 0.57
	// communesPerDept synthetic communes are made in each département.
	communesPerDept = 24
	// maxPartnerIDs is the size of the partner id space (7 digits), which
	// bounds the size of a synthetic corpus.
	maxPartnerIDs = 10_000_000
	ftIDLetters   = 26 * 26 * 26 * 26
	maxFTIDs      = 1000 * ftIDLetters
)

// synthetic generates offer i from (seed, i) on demand. It keeps no state per
// offer: an Entry costs a few dozen nanoseconds, an offer a few microseconds.
type synthetic struct {
	n        int
	seed     uint64
	nowMs    int64
	spanMs   int64
	share    float64
	depts    []string
	ft, part affine
}

// affine is the bijection x → (a·x + b) mod m, with its inverse, that turns an
// index into an id so that ids look scattered but decode back to indexes.
type affine struct{ a, b, m, inv uint64 }

func newAffine(a, b, m uint64) affine {
	inv := new(big.Int).ModInverse(new(big.Int).SetUint64(a), new(big.Int).SetUint64(m))
	return affine{a: a % m, b: b % m, m: m, inv: inv.Uint64()}
}

func (f affine) apply(x uint64) uint64 { return (mulmod(f.a, x, f.m) + f.b) % f.m }
func (f affine) invert(y uint64) uint64 {
	return mulmod(f.inv, (y+f.m-f.b)%f.m, f.m)
}

// mulmod is a·b mod m; every id space is below 2^29, so a·b fits in 64 bits.
func mulmod(a, b, m uint64) uint64 { return (a % m) * (b % m) % m }

// Synthetic returns a corpus of n offers generated from seed, shaped like the
// real ones (fields, presence rates per origin, sizes: ~3.5 KB on average).
// Ids are unique and, with dates aside, every byte is determined by (n, seed,
// opts): France Travail ids look like "193MWGT", partner ids are 7 digits.
// The corpus holds no per-offer state, so n can be in the millions (up to
// 10 000 000).
func Synthetic(n int, seed uint64, opts SyntheticOptions) Corpus {
	if n < 0 || n > maxPartnerIDs {
		panic(fmt.Sprintf("francetravailtest: synthetic corpus of %d offers: want 0 to %d", n, maxPartnerIDs))
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	span := opts.Span
	if span <= 0 {
		span = DefaultSpan
	}
	share := opts.PartnerShare
	switch {
	case share == 0:
		share = DefaultPartnerShare
	case share < 0:
		share = 0
	}
	depts := opts.Departements
	if len(depts) == 0 {
		for _, d := range departements {
			depts = append(depts, d.Code)
		}
	}
	s := &synthetic{
		n:      n,
		seed:   seed,
		nowMs:  now.Truncate(time.Second).UnixMilli(),
		spanMs: max(span.Milliseconds(), 1),
		share:  share,
		depts:  depts,
		// Multipliers coprime with 2, 5 and 13, the factors of the id spaces.
		ft:   newAffine(100_000_007, mix(seed^0xf7), maxFTIDs),
		part: newAffine(7_654_321, mix(seed^0x9a), maxPartnerIDs),
	}
	if span <= time.Second {
		s.spanMs = 1000
	}
	return s
}

// SyntheticOffers returns the n offers of Synthetic(n, seed, opts),
// materialised, for tests that edit a corpus before handing it to Offers.
func SyntheticOffers(n int, seed uint64, opts SyntheticOptions) []francetravail.Offer {
	c := Synthetic(n, seed, opts)
	out := make([]francetravail.Offer, n)
	for i := range out {
		out[i] = c.Offer(i)
	}
	return out
}

func (s *synthetic) Len() int { return s.n }

// rng is splitmix64: tiny, fast, and good enough for test data.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
func (r *rng) intn(n int) int        { return int(r.next() % uint64(n)) }
func (r *rng) float() float64        { return float64(r.next()>>11) / (1 << 53) }
func (r *rng) chance(p float64) bool { return r.float() < p }
func (r *rng) skewed(n int) int      { return min(r.intn(n), r.intn(n)) } // favours low indexes
func pick[T any](r *rng, xs []T) T   { return xs[r.intn(len(xs))] }
func mix(x uint64) uint64            { r := rng{x}; return r.next() }

// meta is what Entry needs; body generation continues from the rng state
// after it.
type meta struct {
	partner     bool
	created     int64
	dept        string
	commune     int // index in the département, -1 when lieuTravail has no commune
	coords      bool
	rome        *romeJob
	typeContrat string
	nature      string
	exige       byte
	expMonths   int  // for exige E: months asked, 0 = unspecified
	expLibelle  bool // experienceLibelle present
	qualif      byte
}

func (s *synthetic) meta(i int) (meta, rng) {
	r := rng{mix(s.seed) ^ mix(uint64(i)*0x2545f4914f6cdd1d+1)}
	var m meta
	m.partner = r.chance(s.share)
	m.created = s.nowMs - s.spanMs + int64(r.float()*float64(s.spanMs))
	m.dept = pick(&r, s.depts)
	m.commune = r.skewed(communesPerDept)
	m.coords = true
	if m.partner {
		switch x := r.float(); {
		case x < 0.03:
			m.commune, m.coords = -1, false
		case x < 0.06:
			m.commune = -1
		}
	} else {
		r.next()
	}
	m.rome = &romeJobs[r.skewed(len(romeJobs))]
	m.typeContrat = weighted(&r, typeWeights)
	m.nature = weighted(&r, natureWeights)
	m.exige = weighted(&r, exigeWeights)[0]
	m.expMonths = pick(&r, expMonths)
	m.expLibelle = !m.partner || r.chance(0.88)
	switch {
	case !m.partner || r.chance(0.12):
		m.qualif = weighted(&r, qualifWeights)[0]
	default:
		r.next()
	}
	return m, r
}

var expMonths = []int{0, 0, 1, 3, 6, 12, 12, 24, 24, 36, 60}

type weight struct {
	v string
	w float64
}

var (
	typeWeights   = []weight{{"CDI", .547}, {"CDD", .234}, {"MIS", .166}, {"SAI", .035}, {"LIB", .013}, {"CCE", .002}, {"DIN", .002}, {"DDI", .001}}
	natureWeights = []weight{{"E1", .965}, {"E2", .017}, {"NS", .015}, {"CU", .002}, {"I1", .001}}
	exigeWeights  = []weight{{"D", .475}, {"E", .46}, {"S", .065}}
	qualifWeights = []weight{{"6", .33}, {"5", .24}, {"2", .11}, {"8", .07}, {"3", .06}, {"4", .055}, {"9", .045}, {"1", .04}, {"7", .05}}
)

func weighted(r *rng, ws []weight) string {
	x := r.float()
	for _, w := range ws {
		if x < w.w {
			return w.v
		}
		x -= w.w
	}
	return ws[0].v
}

func (s *synthetic) id(i int, partner bool) string {
	if partner {
		var b [7]byte
		appendDigits(b[:], int(s.part.apply(uint64(i))))
		return string(b[:])
	}
	x := s.ft.apply(uint64(i))
	d, l := x/ftIDLetters, x%ftIDLetters
	var b [7]byte
	b[0], b[1], b[2] = byte('0'+d/100), byte('0'+d/10%10), byte('0'+d%10)
	for k := 6; k >= 3; k-- {
		b[k] = byte('A' + l%26)
		l /= 26
	}
	return string(b[:])
}

func (s *synthetic) Index(id string) (int, bool) {
	var i uint64
	switch {
	case len(id) == 7 && strings.Trim(id, "0123456789") == "":
		x, _ := strconv.ParseUint(id, 10, 64)
		i = s.part.invert(x)
	case len(id) == 7 && strings.Trim(id[:3], "0123456789") == "" && strings.Trim(id[3:], "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "":
		d, _ := strconv.ParseUint(id[:3], 10, 64)
		var l uint64
		for _, c := range id[3:] {
			l = l*26 + uint64(c-'A')
		}
		i = s.ft.invert(d*ftIDLetters + l)
	default:
		return 0, false
	}
	if i >= uint64(s.n) {
		return 0, false
	}
	m, _ := s.meta(int(i))
	if s.id(int(i), m.partner) != id {
		return 0, false
	}
	return int(i), true
}

func (s *synthetic) Entry(i int) Entry {
	m, _ := s.meta(i)
	e := Entry{
		ID:              s.id(i, m.partner),
		Created:         m.created,
		Origine:         '1',
		ROME:            m.rome.code,
		Departement:     m.dept,
		TypeContrat:     m.typeContrat,
		NatureContrat:   m.nature,
		Qualification:   m.qualif,
		ExperienceExige: m.exige,
	}
	if m.partner {
		e.Origine = '2'
	}
	if m.commune >= 0 {
		e.Commune = communeCode(m.dept, m.commune)
	}
	e.Experience = experienceClassOf(m)
	return e
}

// communeCode is the synthetic INSEE code of commune k of département dept.
func communeCode(dept string, k int) string {
	var b [5]byte
	n := copy(b[:], dept)
	if n == 3 { // 971…976
		appendDigits(b[3:], 1+k*3)
	} else {
		appendDigits(b[2:], 1+k*13)
	}
	return string(b[:])
}

// appendDigits writes v in decimal into all of b, zero-padded.
func appendDigits(b []byte, v int) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}

// communeName is the synthetic name of commune k of département dept.
func communeName(dept string, k int) string {
	r := rng{mix(uint64(k)*131 + uint64(len(dept)) + uint64(dept[0])*7 + uint64(dept[len(dept)-1])*1009)}
	n := 2 + r.intn(2)
	var b strings.Builder
	if r.chance(0.25) {
		b.WriteString("SAINT ")
	}
	for j := 0; j < n; j++ {
		b.WriteString(strings.ToUpper(pick(&r, syllables)))
	}
	if r.chance(0.2) {
		b.WriteString(" LES BAINS")
	}
	return b.String()
}

// postalCode of a synthetic commune.
func postalCode(dept string, k int) string {
	switch {
	case len(dept) == 3:
		return dept + fmt.Sprintf("%02d", 10+k)
	case dept == "2A" || dept == "2B":
		return "20" + fmt.Sprintf("%03d", 100+k*10)
	}
	return dept + fmt.Sprintf("%03d", 100+k*10)
}

// deptCoords is a made-up but stable centre for a département, inside France.
func deptCoords(dept string) (lat, lon float64) {
	r := rng{mix(uint64(dept[0])<<8 | uint64(dept[len(dept)-1]))}
	return 43 + 7*r.float(), -1.5 + 8.5*r.float()
}

// experienceClassOf is experienceClass of the offer's experienceLibelle,
// without building it.
func experienceClassOf(m meta) byte {
	switch {
	case m.exige != 'E':
		return experienceClass(m.exige, "")
	case !m.expLibelle || m.expMonths == 0:
		return '2'
	case m.expMonths < 12:
		return '1'
	case m.expMonths <= 36:
		return '2'
	}
	return '3'
}

func experienceLibelle(m meta) string {
	switch m.exige {
	case 'D':
		return "Débutant accepté"
	case 'S':
		return "Expérience souhaitée"
	}
	switch {
	case m.expMonths == 0:
		return "Expérience exigée"
	case m.expMonths%12 == 0:
		return strconv.Itoa(m.expMonths/12) + " An(s)"
	}
	return strconv.Itoa(m.expMonths) + " Mois"
}

func deptName(code string) string {
	for _, d := range departements {
		if d.Code == code {
			return d.Libelle
		}
	}
	return code
}

var typeLibelles = map[string]string{}

func init() {
	for _, t := range typesContrats {
		typeLibelles[t.Code] = t.Libelle
	}
}

func natureLibelle(code string) string {
	for _, n := range naturesContrats {
		if n.Code == code {
			return n.Libelle
		}
	}
	return code
}

// Offer generates offer i.
func (s *synthetic) Offer(i int) francetravail.Offer {
	return s.AppendOffer(make([]byte, 0, offerCap), i)
}

// offerCap is room for most offers: the largest description is ~4.5 KB.
const offerCap = 4096

// AppendOffer appends offer i to dst: a page of offers costs the
// emulator one buffer, not one an offer, so a sandbox's collector does not
// run for the emulator's garbage.
func (s *synthetic) AppendOffer(dst []byte, i int) []byte {
	m, r := s.meta(i)
	id := s.id(i, m.partner)
	w := &jsonWriter{b: dst}
	w.open()
	w.str("id", id)
	job := m.rome
	appellation := pick(&r, job.appellations)
	w.str("intitule", fmt.Sprintf(pick(&r, intitulePatterns), appellation))
	w.key("description")
	w.b = append(w.b, '"')
	w.b = appendDescription(w.b, &r, m.partner)
	w.b = append(w.b, '"')
	created := time.UnixMilli(m.created).UTC()
	w.str("dateCreation", created.Format("2006-01-02T15:04:05.000Z"))
	if !m.partner || r.chance(0.88) {
		upd := created.Add(time.Duration(r.float() * float64(time.UnixMilli(s.nowMs).Sub(created))))
		w.str("dateActualisation", upd.Format("2006-01-02T15:04:05.000Z"))
	}
	w.obj("lieuTravail")
	if m.commune >= 0 {
		w.str("libelle", m.dept+" - "+communeName(m.dept, m.commune))
	} else {
		w.str("libelle", m.dept+" - "+deptName(m.dept))
	}
	if m.coords {
		lat, lon := deptCoords(m.dept)
		w.num("latitude", strconv.FormatFloat(lat+r.float()*0.6-0.3, 'f', 6, 64))
		w.num("longitude", strconv.FormatFloat(lon+r.float()*0.6-0.3, 'f', 6, 64))
	}
	if m.commune >= 0 {
		w.str("codePostal", postalCode(m.dept, m.commune))
		w.str("commune", communeCode(m.dept, m.commune))
	}
	w.close()
	w.str("romeCode", job.code)
	w.str("romeLibelle", job.libelle)
	w.str("appellationlibelle", appellation)
	w.obj("entreprise")
	if !m.partner && r.chance(0.98) || m.partner && r.chance(0.64) {
		w.str("nom", pick(&r, companyPrefix)+" "+pick(&r, companyNames))
	}
	if !m.partner && r.chance(0.35) || m.partner && r.chance(0.47) {
		w.str("description", pick(&r, companyDescriptions)+" "+pick(&r, sentences)+" "+pick(&r, sentences)+" "+pick(&r, companyDescriptions))
	}
	if !m.partner || r.chance(0.88) {
		w.boolean("entrepriseAdaptee", false)
	}
	w.close()
	w.str("typeContrat", m.typeContrat)
	w.str("typeContratLibelle", typeLibelle(&r, m.typeContrat))
	w.str("natureContrat", natureLibelle(m.nature))
	w.str("experienceExige", string(m.exige))
	if m.expLibelle {
		w.str("experienceLibelle", experienceLibelle(m))
	}
	if !m.partner {
		if r.chance(0.23) {
			w.arr("formations")
			w.elem()
			w.str("niveauLibelle", pick(&r, niveaux))
			w.str("exigence", pick(&r, []string{"E", "S"}))
			w.close()
			w.closeArr()
		}
		if r.chance(0.10) {
			w.arr("langues")
			w.elem()
			w.str("libelle", pick(&r, langues))
			w.str("exigence", "E")
			w.close()
			w.closeArr()
		}
		if r.chance(0.25) {
			w.arr("permis")
			w.elem()
			w.str("libelle", pick(&r, permisPool))
			w.str("exigence", pick(&r, []string{"E", "S"}))
			w.close()
			w.closeArr()
		}
		if r.chance(0.77) {
			w.arr("competences")
			for k, n := 0, 1+r.intn(8); k < n; k++ {
				w.elem()
				w.str("code", strconv.Itoa(100000+r.intn(400000)))
				w.str("libelle", pick(&r, competencesPool))
				w.str("exigence", "E")
				w.close()
			}
			w.closeArr()
		}
	}
	w.obj("salaire")
	if !m.partner && r.chance(0.74) || m.partner && r.chance(0.34) {
		w.str("libelle", salaire(&r))
		if !m.partner && r.chance(0.6) {
			w.str("complement1", pick(&r, []string{"Mutuelle", "Restauration", "Chèque repas", "Prime"}))
		}
	}
	w.close()
	horaires := ""
	if !m.partner && r.chance(0.99) || m.partner && r.chance(0.13) {
		horaires = pick(&r, horairesPool)
		w.str("dureeTravailLibelle", horaires)
		if !strings.HasPrefix(horaires, "Temps partiel") {
			w.str("dureeTravailLibelleConverti", "Temps plein")
		} else {
			w.str("dureeTravailLibelleConverti", "Temps partiel")
		}
	}
	w.boolean("alternance", m.nature == "E2")
	if !m.partner || r.chance(0.12) {
		w.obj("contact")
		if r.chance(0.65) {
			w.str("nom", pick(&r, companyPrefix)+" "+pick(&r, companyNames)+" - M. "+pick(&r, companyNames))
		}
		if r.chance(0.73) {
			w.str("coordonnees1", "https://candidat.francetravail.fr/offres/recherche/detail/"+id)
		}
		if !m.partner && r.chance(0.12) {
			w.str("coordonnees2", postalCode(m.dept, max(m.commune, 0))+" "+communeName(m.dept, max(m.commune, 0)))
			w.str("coordonnees3", "Pour postuler, utiliser le lien suivant : https://candidat.francetravail.fr/offres/recherche/detail/"+id)
		}
		if r.chance(0.4) {
			w.str("courriel", "recrutement"+strconv.Itoa(r.intn(1000))+"@example.fr")
		}
		w.close()
	}
	if !m.partner {
		w.obj("agence")
		if r.chance(0.11) {
			w.str("courriel", "Pour postuler, utiliser le lien suivant : https://candidat.francetravail.fr/offres/recherche/detail/"+id)
		}
		w.close()
	}
	w.num("nombrePostes", strconv.Itoa(1+r.skewed(2)*r.skewed(3)))
	if !m.partner || r.chance(0.88) {
		w.boolean("accessibleTH", r.chance(0.002))
	}
	if !m.partner && r.chance(0.41) {
		d := r.intn(len(deplacements))
		w.str("deplacementCode", strconv.Itoa(d+1))
		w.str("deplacementLibelle", deplacements[d])
	}
	if m.qualif != 0 {
		w.str("qualificationCode", string(m.qualif))
		w.str("qualificationLibelle", qualificationLibelles[m.qualif])
	}
	if !m.partner || r.chance(0.31) {
		w.str("codeNAF", job.naf)
		w.str("secteurActivite", job.naf[:2])
		w.str("secteurActiviteLibelle", job.nafLib)
	}
	if !m.partner && r.chance(0.58) {
		w.arr("qualitesProfessionnelles")
		for k, n := 0, 1+r.intn(4); k < n; k++ {
			q := pick(&r, qualitesPool)
			w.elem()
			w.str("libelle", q[0])
			w.str("description", q[1])
			w.close()
		}
		w.closeArr()
	}
	w.obj("origineOffre")
	if m.partner {
		w.str("origine", "2")
		w.str("urlOrigine", "https://candidat.francetravail.fr/offres/recherche/detail/"+id)
		p := pick(&r, partnerNames)
		w.arr("partenaires")
		w.elem()
		w.str("nom", p)
		w.str("url", "https://jobs.example.com/"+strings.ToLower(p)+"/offre/"+id)
		w.str("logo", "https://www.francetravail.fr/logos/img/partenaires/"+strings.ToLower(p)+"80.png")
		w.close()
		w.closeArr()
	} else {
		w.str("origine", "1")
		w.str("urlOrigine", "https://candidat.francetravail.fr/offres/recherche/detail/"+id)
	}
	w.close()
	if !m.partner {
		w.boolean("offresManqueCandidats", r.chance(0.05))
	}
	w.obj("contexteTravail")
	if horaires != "" {
		w.arr("horaires")
		w.elemStr(horaires)
		w.closeArr()
	}
	w.close()
	w.boolean("entrepriseAdaptee", false)
	w.boolean("employeurHandiEngage", false)
	w.close()
	return w.b
}

func typeLibelle(r *rng, code string) string {
	switch code {
	case "CDD":
		return "Contrat à durée déterminée - " + strconv.Itoa(1+r.intn(12)) + " Mois"
	case "MIS":
		return "Mission intérimaire - " + strconv.Itoa(1+r.intn(18)) + " Mois"
	case "SAI":
		return "Saisonnier - " + strconv.Itoa(2+r.intn(5)) + " Mois"
	}
	return typeLibelles[code]
}

func salaire(r *rng) string {
	switch r.intn(3) {
	case 0:
		h := 11.88 + float64(r.intn(800))/100
		return "Horaire de " + strconv.FormatFloat(h, 'f', 2, 64) + " Euros sur 12 mois"
	case 1:
		lo := 1800 + 50*r.intn(30)
		return "Mensuel de " + strconv.Itoa(lo) + ".0 Euros à " + strconv.Itoa(lo+50*r.intn(20)) + ".0 Euros sur 12.0 mois"
	}
	return "Annuel de " + strconv.Itoa(22000+1000*r.intn(30)) + ".0 Euros sur 12.0 mois"
}

// appendDescription appends to b a description of paragraphs averaging
// ~1.4 KB (France Travail) or ~1.7 KB (partners), from 100 bytes to
// ~4.5 KB, escaped for the inside of a JSON string.
func appendDescription(b []byte, r *rng, partner bool) []byte {
	n := 4 + r.intn(24) + r.intn(16)
	if partner {
		n += 4
	}
	for k := 0; k < n; k++ {
		if k > 0 {
			if r.chance(0.3) {
				b = append(b, `\n\n`...)
			} else {
				b = append(b, ' ')
			}
		}
		b = appendEscaped(b, pick(r, sentences))
	}
	return b
}

// jsonWriter appends a JSON object field by field; keys and values are
// escaped, commas placed.
type jsonWriter struct {
	b     []byte
	first bool // no comma before the next member
}

func (w *jsonWriter) sep() {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
}
func (w *jsonWriter) key(k string) { w.sep(); w.b = appendJSONString(w.b, k); w.b = append(w.b, ':') }
func (w *jsonWriter) open()        { w.b = append(w.b, '{'); w.first = true }
func (w *jsonWriter) close()       { w.b = append(w.b, '}'); w.first = false }
func (w *jsonWriter) obj(k string) { w.key(k); w.open() }
func (w *jsonWriter) arr(k string) { w.key(k); w.b = append(w.b, '['); w.first = true }
func (w *jsonWriter) elem()        { w.sep(); w.open() }
func (w *jsonWriter) elemStr(s string) {
	w.sep()
	w.b = appendJSONString(w.b, s)
}
func (w *jsonWriter) closeArr()                { w.b = append(w.b, ']'); w.first = false }
func (w *jsonWriter) str(k, v string)          { w.key(k); w.b = appendJSONString(w.b, v) }
func (w *jsonWriter) num(k, v string)          { w.key(k); w.b = append(w.b, v...) }
func (w *jsonWriter) boolean(k string, v bool) { w.key(k); w.b = strconv.AppendBool(w.b, v) }

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendEscaped(b, s)
	return append(b, '"')
}

// appendEscaped appends s escaped for the inside of a JSON string.
func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for len(s) > 0 {
		// Copy the run that needs no escape at once.
		k := 0
		for k < len(s) && s[k] >= 0x20 && s[k] != '"' && s[k] != '\\' {
			k++
		}
		b = append(b, s[:k]...)
		if k == len(s) {
			break
		}
		c := s[k]
		s = s[k+1:]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
	}
	return b
}
