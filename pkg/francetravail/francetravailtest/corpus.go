package francetravailtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

// Corpus is the set of live offers an Emulator searches. Implementations
// must be safe for concurrent reads and must not change once handed to an
// Emulator (replace the whole corpus with SetCorpus instead).
//
// The emulator reads Entry for every offer once, when the corpus is set (it
// indexes them in about 36 bytes an offer), and Offer only for the offers of
// the pages it serves (and for keyword searches), so a corpus may keep
// offers compressed or generate them on demand.
type Corpus interface {
	// Len is the number of offers, indexed 0 to Len()-1.
	Len() int
	// Entry returns the fields of offer i that filters and sorts use.
	Entry(i int) Entry
	// Offer returns offer i as the API serves it. The caller must not
	// modify the bytes.
	Offer(i int) francetravail.Offer
	// Index returns the index of the offer with that id.
	Index(id string) (int, bool)
}

// Entry is what the emulator knows of an offer without reading it: the
// fields its filters and sorts need. Fields the offer lacks are zero.
type Entry struct {
	// ID is the offer's id.
	ID string
	// Created is dateCreation in milliseconds since the Unix epoch.
	Created int64
	// Origine is '1' (France Travail) or '2' (partner).
	Origine byte
	// ROME is romeCode.
	ROME string
	// Commune is lieuTravail.commune (INSEE code).
	Commune string
	// Departement is derived from the commune, else from the "74 - …"
	// prefix of lieuTravail.libelle.
	Departement string
	// TypeContrat is typeContrat (CDI, CDD, …).
	TypeContrat string
	// NatureContrat is the code (E1, E2, …) of the natureContrat label.
	NatureContrat string
	// Qualification is qualificationCode, '1' to '9'.
	Qualification byte
	// ExperienceExige is 'D', 'S' or 'E'.
	ExperienceExige byte
	// Experience is the class of the experience filter, '0' to '4' (see
	// experienceClass).
	Experience byte
}

// explicit is a corpus of offers held in memory as given.
type explicit struct {
	offers  []francetravail.Offer
	entries []Entry
	byID    map[string]int
}

func (c *explicit) Len() int                        { return len(c.offers) }
func (c *explicit) Entry(i int) Entry               { return c.entries[i] }
func (c *explicit) Offer(i int) francetravail.Offer { return c.offers[i] }
func (c *explicit) Index(id string) (int, bool)     { i, ok := c.byID[id]; return i, ok }

// Offers returns a corpus of the given offers, kept in memory as they are
// (the slice is not copied; do not modify it afterwards). Every offer must be
// a JSON object with a non-empty string "id".
//
// An id may repeat: the emulator then serves each copy as a match of its
// own, counted in the total, as the API has been seen to (nothing in its
// contract promises one answer per id, and clients dedupe by id).
// GET /offres/{id} answers the first copy.
func Offers(offers []francetravail.Offer) (Corpus, error) {
	c := &explicit{offers: offers, entries: make([]Entry, len(offers)), byID: make(map[string]int, len(offers))}
	var p fastjson.Parser
	for i, o := range offers {
		e, err := entryOf(&p, o)
		if err != nil {
			return nil, fmt.Errorf("offer %d: %w", i, err)
		}
		if _, dup := c.byID[e.ID]; !dup {
			c.byID[e.ID] = i
		}
		c.entries[i] = e
	}
	return c, nil
}

// maxNDJSONLine bounds one offer of an NDJSON corpus.
const maxNDJSONLine = 16 << 20

// ReadNDJSON reads a corpus of one JSON offer a line; blank lines are skipped.
// The same rules as Offers apply.
func ReadNDJSON(r io.Reader) (Corpus, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxNDJSONLine)
	var offers []francetravail.Offer
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		offers = append(offers, francetravail.Offer(bytes.Clone(b)))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ndjson line %d: %w", line+1, err)
	}
	return Offers(offers)
}

// entryOf indexes one raw offer.
func entryOf(p *fastjson.Parser, o francetravail.Offer) (Entry, error) {
	v, err := p.ParseBytes(o)
	if err != nil {
		return Entry{}, fmt.Errorf("not JSON: %w", err)
	}
	if v.Type() != fastjson.TypeObject {
		return Entry{}, errors.New("not a JSON object")
	}
	str := func(keys ...string) string { return string(v.GetStringBytes(keys...)) }
	e := Entry{ID: str("id")}
	if e.ID == "" {
		return Entry{}, francetravail.ErrNoID
	}
	if t, err := parseOfferTime(str("dateCreation")); err == nil {
		e.Created = t.UnixMilli()
	}
	if o := str("origineOffre", "origine"); len(o) == 1 {
		e.Origine = o[0]
	}
	e.ROME = str("romeCode")
	e.Commune = str("lieuTravail", "commune")
	e.Departement = departementOf(e.Commune, str("lieuTravail", "libelle"))
	e.TypeContrat = str("typeContrat")
	e.NatureContrat = natureCode(str("natureContrat"))
	if q := str("qualificationCode"); len(q) == 1 {
		e.Qualification = q[0]
	}
	if x := str("experienceExige"); len(x) == 1 {
		e.ExperienceExige = x[0]
	}
	e.Experience = experienceClass(e.ExperienceExige, str("experienceLibelle"))
	return e, nil
}

// parseOfferTime reads an offer date: RFC 3339, with or without
// milliseconds or offset.
func parseOfferTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("date %q: not RFC 3339", s)
}

// departementOf derives a département from an INSEE commune code ("74191",
// "2A004", "97411"), or from a libellé such as "74 - MORZINE".
func departementOf(commune, libelle string) string {
	switch {
	case len(commune) == 5 && strings.HasPrefix(commune, "97"):
		return commune[:3]
	case len(commune) == 5:
		return commune[:2]
	}
	if code, _, ok := strings.Cut(libelle, " - "); ok {
		code = strings.TrimSpace(code)
		if isDepartement(code) {
			return code
		}
	}
	return ""
}

// experienceClass maps an offer's experience to the 0–4 classes of the
// experience filter and facet.
//
// UNVERIFIED: the API documents 1 (less than a year), 2 (1 to 3 years) and
// 3 (more than 3 years); the facets of real answers also show 0 and 4, in
// proportions that match "desired" and "beginner accepted". So: S → 0,
// D → 4, E → by the duration in experienceLibelle (2 when none is given).
func experienceClass(exige byte, libelle string) byte {
	switch exige {
	case 'S':
		return '0'
	case 'D':
		return '4'
	case 'E':
	default:
		return 0
	}
	months := -1
	f := strings.Fields(libelle)
	for i := 0; i+1 < len(f); i++ {
		n, err := strconv.Atoi(f[i])
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(f[i+1], "An"):
			months = n * 12
		case strings.HasPrefix(f[i+1], "Mois"):
			months = n
		default:
			continue
		}
		break
	}
	switch {
	case months < 0:
		return '2'
	case months < 12:
		return '1'
	case months <= 36:
		return '2'
	}
	return '3'
}

// natureCode returns the naturesContrats code of a natureContrat label as
// offers carry it ("Contrat travail" → "E1"), or the value itself when it is
// already a code.
func natureCode(label string) string {
	if label == "" {
		return ""
	}
	for _, e := range naturesContrats {
		if e.Libelle == label || e.Code == label {
			return e.Code
		}
	}
	return ""
}

// refEntry is a referential entry.
type refEntry = francetravail.ReferentialEntry

var (
	naturesContrats = francetravail.BuiltinReferential(francetravail.RefNaturesContrats)
	typesContrats   = francetravail.BuiltinReferential(francetravail.RefTypesContrats)
	departements    = francetravail.BuiltinReferential(francetravail.RefDepartements)
	regions         = francetravail.BuiltinReferential(francetravail.RefRegions)
)

func isDepartement(code string) bool {
	_, ok := regionOfDept[code]
	return ok
}

// regionOfDept maps each département code to its région code.
var regionOfDept = func() map[string]string {
	m := make(map[string]string, len(departements))
	for _, d := range departements {
		m[d.Code] = d.Region.Code
	}
	return m
}()
