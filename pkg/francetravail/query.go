package francetravail

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits of the search API (see the spec of GET /offres/search).
const (
	// PageSize is the widest range one call may ask for.
	PageSize = 150
	// MaxRangeStart is the largest first index a range may have.
	MaxRangeStart = 3000
	// MaxReachable is how many hits of one query can be fetched at most:
	// indexes 0 to MaxRangeStart+PageSize-1.
	MaxReachable = MaxRangeStart + PageSize
	// CreationDateLayout is the only format minCreationDate and
	// maxCreationDate accept: UTC, second precision, no milliseconds.
	CreationDateLayout = "2006-01-02T15:04:05Z"

	maxCodeROME     = 200
	maxNAF          = 2
	maxSecteurs     = 2
	maxCommunes     = 5
	maxDepartements = 5
	maxMotsCles     = 7
	minMotCleLen    = 2
	maxDureeContrat = 99
)

// Query holds every search criterion of GET /offres/search; the zero value
// searches everything. Tags carry exactly the API's parameter names, which are
// also the seed connector's "origin_parameters" keys, so a YAML or JSON
// configuration decodes straight into it.
//
// A string field is unset when empty; a pointer field is unset when nil.
// Multi-valued criteria are comma-separated strings, as the API takes them.
// Query is a plain value: copying it is safe (pointees are never modified).
type Query struct {
	// Range is "p-d", 0-based and inclusive, at most PageSize wide, p ≤
	// MaxRangeStart. Set, Client.Search fetches exactly that range.
	Range string `json:"range,omitempty" yaml:"range,omitempty"`
	// Sort is 0 (relevance, the API's default), 1 (creation date, newest
	// first) or 2 (distance).
	Sort *int `json:"sort,omitempty" yaml:"sort,omitempty"`

	Domaine string `json:"domaine,omitempty" yaml:"domaine,omitempty"`
	// CodeROME takes up to 200 comma-separated ROME codes such as "M1805".
	CodeROME    string `json:"codeROME,omitempty" yaml:"codeROME,omitempty"`
	Theme       string `json:"theme,omitempty" yaml:"theme,omitempty"`
	Appellation string `json:"appellation,omitempty" yaml:"appellation,omitempty"`
	// SecteurActivite takes up to 2 two-digit NAF divisions ("01,02").
	SecteurActivite string `json:"secteurActivite,omitempty" yaml:"secteurActivite,omitempty"`
	// CodeNAF takes up to 2 NAF codes shaped "99.99X".
	CodeNAF string `json:"codeNAF,omitempty" yaml:"codeNAF,omitempty"`
	// Experience is "0" to "4".
	Experience string `json:"experience,omitempty" yaml:"experience,omitempty"`
	// ExperienceExigence is "D" (beginner accepted), "S" (desired) or "E"
	// (required). The historic connector sent it as "experienceExige", which
	// the API ignores; Values sends the right name.
	ExperienceExigence string `json:"experienceExigence,omitempty" yaml:"experienceExigence,omitempty"`
	// TypeContrat takes comma-separated codes of the typesContrats referential.
	TypeContrat string `json:"typeContrat,omitempty" yaml:"typeContrat,omitempty"`
	// NatureContrat takes comma-separated codes of the naturesContrats referential.
	NatureContrat string `json:"natureContrat,omitempty" yaml:"natureContrat,omitempty"`
	// OrigineOffre is "1" (France Travail) or "2" (partners).
	OrigineOffre string `json:"origineOffre,omitempty" yaml:"origineOffre,omitempty"`
	// Qualification is "0" (non-executive) or "9" (executive).
	Qualification string `json:"qualification,omitempty" yaml:"qualification,omitempty"`
	TempsPlein    *bool  `json:"tempsPlein,omitempty" yaml:"tempsPlein,omitempty"`
	// Commune takes up to 5 comma-separated INSEE commune codes.
	Commune string `json:"commune,omitempty" yaml:"commune,omitempty"`
	// Distance in km around Commune (the API's default is 10; 0 is the commune
	// only). The API reads it only with Commune, so Values drops it otherwise:
	// the seed's default of 10 then changes nothing.
	Distance *int `json:"distance,omitempty" yaml:"distance,omitempty"`
	// Departement takes up to 5 comma-separated codes ("01", "2A", "971").
	Departement        string `json:"departement,omitempty" yaml:"departement,omitempty"`
	InclureLimitrophes *bool  `json:"inclureLimitrophes,omitempty" yaml:"inclureLimitrophes,omitempty"`
	// Region takes codes of the regions referential.
	Region          string `json:"region,omitempty" yaml:"region,omitempty"`
	PaysContinent   string `json:"paysContinent,omitempty" yaml:"paysContinent,omitempty"`
	NiveauFormation string `json:"niveauFormation,omitempty" yaml:"niveauFormation,omitempty"`
	Permis          string `json:"permis,omitempty" yaml:"permis,omitempty"`
	// MotsCles takes up to 7 comma-separated keywords of 2 characters or
	// more; the API ANDs them.
	MotsCles string `json:"motsCles,omitempty" yaml:"motsCles,omitempty"`
	// SalaireMin and PeriodeSalaire go together; the period is "M" (month),
	// "A" (year), "H" (hour) or "C" (cachet).
	SalaireMin                *float64 `json:"salaireMin,omitempty" yaml:"salaireMin,omitempty"`
	PeriodeSalaire            string   `json:"periodeSalaire,omitempty" yaml:"periodeSalaire,omitempty"`
	AccesTravailleurHandicape *bool    `json:"accesTravailleurHandicape,omitempty" yaml:"accesTravailleurHandicape,omitempty"`
	OffresMRS                 *bool    `json:"offresMRS,omitempty" yaml:"offresMRS,omitempty"`
	OffresManqueCandidats     *bool    `json:"offresManqueCandidats,omitempty" yaml:"offresManqueCandidats,omitempty"`
	EntreprisesAdaptees       *bool    `json:"entreprisesAdaptees,omitempty" yaml:"entreprisesAdaptees,omitempty"`
	EmployeursHandiEngages    *bool    `json:"employeursHandiEngages,omitempty" yaml:"employeursHandiEngages,omitempty"`
	// GrandDomaine is one of A B C C15 D E F G H I J K L L14 M M13 … M18 N.
	GrandDomaine string `json:"grandDomaine,omitempty" yaml:"grandDomaine,omitempty"`
	// PublieeDepuis is "1", "3", "7", "14" or "31" (days).
	PublieeDepuis string `json:"publieeDepuis,omitempty" yaml:"publieeDepuis,omitempty"`
	// MinCreationDate and MaxCreationDate go together, in
	// CreationDateLayout ("2025-08-01T00:00:00Z").
	MinCreationDate string `json:"minCreationDate,omitempty" yaml:"minCreationDate,omitempty"`
	MaxCreationDate string `json:"maxCreationDate,omitempty" yaml:"maxCreationDate,omitempty"`
	// Partenaires (comma-separated partner codes) and
	// ModeSelectionPartenaires ("INCLUS" or "EXCLU") go together.
	Partenaires              string `json:"partenaires,omitempty" yaml:"partenaires,omitempty"`
	ModeSelectionPartenaires string `json:"modeSelectionPartenaires,omitempty" yaml:"modeSelectionPartenaires,omitempty"`
	// DureeHebdo is "0" (unspecified), "1" (full time) or "2" (part time).
	DureeHebdo string `json:"dureeHebdo,omitempty" yaml:"dureeHebdo,omitempty"`
	// DureeHebdoMin and DureeHebdoMax are weekly hours as HHMM numbers
	// (3530 is 35 h 30); Values sends them on four digits.
	DureeHebdoMin *int `json:"dureeHebdoMin,omitempty" yaml:"dureeHebdoMin,omitempty"`
	DureeHebdoMax *int `json:"dureeHebdoMax,omitempty" yaml:"dureeHebdoMax,omitempty"`
	// DureeContratMin and DureeContratMax are months, 0 to 99.
	DureeContratMin *float64 `json:"dureeContratMin,omitempty" yaml:"dureeContratMin,omitempty"`
	DureeContratMax *float64 `json:"dureeContratMax,omitempty" yaml:"dureeContratMax,omitempty"`
}

// ValidationError is one rule of the API that a Query breaks.
type ValidationError struct {
	Field string // the API's parameter name
	Value string // the offending value as it would be sent
	Rule  string // what the API expects, in French as the API's own messages
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Rule)
}

// ErrInvalidQuery is wrapped by every error of Query.Validate, so callers can
// tell a bad configuration from a failed call.
var ErrInvalidQuery = errors.New("invalid query")

// invalidQuery joins the violations; errors.Is(err, ErrInvalidQuery) holds and
// errors.As finds each *ValidationError.
type invalidQuery struct{ errs []error }

func (e *invalidQuery) Error() string {
	var b strings.Builder
	b.WriteString("invalid query: ")
	for i, err := range e.errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e *invalidQuery) Unwrap() []error { return append([]error{ErrInvalidQuery}, e.errs...) }

var (
	reRange    = regexp.MustCompile(`^([0-9]+)-([0-9]+)$`)
	reROME     = regexp.MustCompile(`^[A-N][0-9]{4}$`)
	reNAF      = regexp.MustCompile(`^[0-9]{2}\.[0-9]{2}[A-Z]$`)
	reSecteur  = regexp.MustCompile(`^[0-9]{2}$`)
	reCommune  = regexp.MustCompile(`^([0-9]{5}|2[AB][0-9]{3})$`)
	reCode     = regexp.MustCompile(`^[A-Za-z0-9]{1,10}$`)
	reNumeric  = regexp.MustCompile(`^[0-9]{1,10}$`)
	rePartners = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,50}$`)
	reDate     = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$`)
)

// ParseRange reads a range "p-d" and checks the API's rules: integers,
// p ≤ d, d-p+1 ≤ PageSize, p ≤ MaxRangeStart.
func ParseRange(s string) (first, last int, err error) {
	m := reRange.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, errors.New("format incorrect, <entier>-<entier> attendu")
	}
	first, err1 := strconv.Atoi(m[1])
	last, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("format incorrect, <entier>-<entier> attendu")
	}
	switch {
	case first > last:
		return 0, 0, errors.New("la position de début doit précéder la position de fin")
	case last-first+1 > PageSize:
		return 0, 0, fmt.Errorf("plage trop importante, %d résultats au plus", PageSize)
	case first > MaxRangeStart:
		return 0, 0, fmt.Errorf("la position de début doit être inférieure ou égale à %d", MaxRangeStart)
	}
	return first, last, nil
}

// ParseCreationDate reads a minCreationDate or maxCreationDate value:
// exactly CreationDateLayout, without fractions of a second.
func ParseCreationDate(s string) (time.Time, error) {
	if !reDate.MatchString(s) {
		return time.Time{}, fmt.Errorf("date %q: want yyyy-MM-ddTHH:mm:ssZ", s)
	}
	return time.Parse(CreationDateLayout, s)
}

// Validate checks q against every rule of the API's search parameters
// without any network call. It returns nil, or an error wrapping
// ErrInvalidQuery and one *ValidationError per violation (errors.As finds the
// first; the error's Unwrap() []error lists them all).
func (q Query) Validate() error {
	var errs []error
	bad := func(field, value, rule string, args ...any) {
		errs = append(errs, &ValidationError{Field: field, Value: value, Rule: fmt.Sprintf(rule, args...)})
	}
	// list checks comma-separated values: count and each item.
	list := func(field, value string, max int, ok func(string) bool, rule string) {
		if value == "" {
			return
		}
		items := strings.Split(value, ",")
		if max > 0 && len(items) > max {
			bad(field, value, "%d valeurs au plus, séparées par des virgules", max)
			return
		}
		for _, it := range items {
			if !ok(it) {
				bad(field, value, "%s (%q)", rule, it)
				return
			}
		}
	}
	one := func(field, value string, allowed ...string) {
		if value != "" && !slices.Contains(allowed, value) {
			bad(field, value, "%s attendu", strings.Join(allowed, ", "))
		}
	}

	if q.Range != "" {
		if _, _, err := ParseRange(q.Range); err != nil {
			bad("range", q.Range, "%s", err.Error())
		}
	}
	if q.Sort != nil && (*q.Sort < 0 || *q.Sort > 2) {
		bad("sort", strconv.Itoa(*q.Sort), "0, 1 ou 2 attendu")
	}
	list("domaine", q.Domaine, 0, reCode.MatchString, "code de domaine mal formé")
	list("codeROME", q.CodeROME, maxCodeROME, reROME.MatchString, "code ROME attendu, une lettre et 4 chiffres")
	list("theme", q.Theme, 0, reNumeric.MatchString, "code de thème numérique attendu")
	list("appellation", q.Appellation, 0, reNumeric.MatchString, "code d'appellation numérique attendu")
	list("secteurActivite", q.SecteurActivite, maxSecteurs, reSecteur.MatchString, "division NAF à 2 chiffres attendue")
	list("codeNAF", q.CodeNAF, maxNAF, reNAF.MatchString, "code NAF au format 99.99X attendu")
	one("experience", q.Experience, "0", "1", "2", "3", "4")
	one("experienceExigence", q.ExperienceExigence, "D", "S", "E")
	list("typeContrat", q.TypeContrat, 0, func(s string) bool { return inReferential(typesContrats, s) },
		"valeur inconnue du référentiel des types de contrats")
	list("natureContrat", q.NatureContrat, 0, func(s string) bool { return inReferential(naturesContrats, s) },
		"valeur inconnue du référentiel des natures de contrats")
	one("origineOffre", q.OrigineOffre, "1", "2")
	one("qualification", q.Qualification, "0", "9")
	list("commune", q.Commune, maxCommunes, reCommune.MatchString, "code INSEE de commune attendu")
	if q.Distance != nil && *q.Distance < 0 {
		bad("distance", strconv.Itoa(*q.Distance), "distance en km positive ou nulle attendue")
	}
	list("departement", q.Departement, maxDepartements, isDepartement, "valeur inconnue du référentiel des départements")
	list("region", q.Region, 0, func(s string) bool { return inReferential(regions, s) },
		"valeur inconnue du référentiel des régions")
	list("paysContinent", q.PaysContinent, 0, reNumeric.MatchString, "code de pays ou de continent numérique attendu")
	list("niveauFormation", q.NiveauFormation, 0, reCode.MatchString, "code de niveau de formation mal formé")
	list("permis", q.Permis, 0, reCode.MatchString, "code de permis mal formé")
	if q.MotsCles != "" {
		words := strings.Split(q.MotsCles, ",")
		ok := len(words) <= maxMotsCles
		for _, w := range words {
			if len([]rune(strings.TrimSpace(w))) < minMotCleLen {
				ok = false
			}
		}
		if !ok {
			bad("motsCles", q.MotsCles, "%d mots-clés au plus, séparés par des virgules, d'au moins %d caractères", maxMotsCles, minMotCleLen)
		}
	}
	switch {
	case q.SalaireMin != nil && q.PeriodeSalaire == "":
		bad("periodeSalaire", "", "obligatoire avec salaireMin")
	case q.SalaireMin == nil && q.PeriodeSalaire != "":
		bad("salaireMin", "", "obligatoire avec periodeSalaire")
	}
	if q.SalaireMin != nil && *q.SalaireMin < 0 {
		bad("salaireMin", formatFloat(*q.SalaireMin), "montant positif ou nul attendu")
	}
	one("periodeSalaire", q.PeriodeSalaire, "M", "A", "H", "C")
	one("grandDomaine", q.GrandDomaine, grandDomaines...)
	one("publieeDepuis", q.PublieeDepuis, "1", "3", "7", "14", "31")
	q.validateCreationDates(bad)
	switch {
	case q.Partenaires != "" && q.ModeSelectionPartenaires == "":
		bad("modeSelectionPartenaires", "", "obligatoire avec partenaires")
	case q.Partenaires == "" && q.ModeSelectionPartenaires != "":
		bad("partenaires", "", "obligatoire avec modeSelectionPartenaires")
	}
	list("partenaires", q.Partenaires, 0, rePartners.MatchString, "code de partenaire mal formé")
	one("modeSelectionPartenaires", q.ModeSelectionPartenaires, "INCLUS", "EXCLU")
	one("dureeHebdo", q.DureeHebdo, "0", "1", "2")
	for _, d := range []struct {
		name string
		v    *int
	}{{"dureeHebdoMin", q.DureeHebdoMin}, {"dureeHebdoMax", q.DureeHebdoMax}} {
		if d.v != nil && (*d.v < 0 || *d.v > 9959 || *d.v%100 > 59) {
			bad(d.name, strconv.Itoa(*d.v), "durée HHMM attendue (heures 0 à 99, minutes 0 à 59)")
		}
	}
	if q.DureeHebdoMin != nil && q.DureeHebdoMax != nil && *q.DureeHebdoMin > *q.DureeHebdoMax {
		bad("dureeHebdoMin", strconv.Itoa(*q.DureeHebdoMin), "ne doit pas dépasser dureeHebdoMax")
	}
	for _, d := range []struct {
		name string
		v    *float64
	}{{"dureeContratMin", q.DureeContratMin}, {"dureeContratMax", q.DureeContratMax}} {
		if d.v != nil && (*d.v < 0 || *d.v > maxDureeContrat || *d.v != *d.v) {
			bad(d.name, formatFloat(*d.v), "nombre de mois entre 0 et %d attendu", maxDureeContrat)
		}
	}
	if q.DureeContratMin != nil && q.DureeContratMax != nil && *q.DureeContratMin > *q.DureeContratMax {
		bad("dureeContratMin", formatFloat(*q.DureeContratMin), "ne doit pas dépasser dureeContratMax")
	}
	if len(errs) == 0 {
		return nil
	}
	return &invalidQuery{errs: errs}
}

func (q Query) validateCreationDates(bad func(field, value, rule string, args ...any)) {
	switch {
	case q.MinCreationDate != "" && q.MaxCreationDate == "":
		bad("maxCreationDate", "", "obligatoire avec minCreationDate")
	case q.MinCreationDate == "" && q.MaxCreationDate != "":
		bad("minCreationDate", "", "obligatoire avec maxCreationDate")
	}
	var lo, hi time.Time
	var errLo, errHi error
	if q.MinCreationDate != "" {
		if lo, errLo = ParseCreationDate(q.MinCreationDate); errLo != nil {
			bad("minCreationDate", q.MinCreationDate, "format yyyy-MM-ddTHH:mm:ssZ attendu")
		}
	}
	if q.MaxCreationDate != "" {
		if hi, errHi = ParseCreationDate(q.MaxCreationDate); errHi != nil {
			bad("maxCreationDate", q.MaxCreationDate, "format yyyy-MM-ddTHH:mm:ssZ attendu")
		}
	}
	if q.MinCreationDate != "" && q.MaxCreationDate != "" && errLo == nil && errHi == nil && lo.After(hi) {
		bad("minCreationDate", q.MinCreationDate, "ne doit pas être postérieure à maxCreationDate (%s)", q.MaxCreationDate)
	}
}

// Values returns the query string the client sends for q: the API's
// parameter names, booleans as true/false, numbers in plain decimal,
// dureeHebdoMin/Max on four digits. Unset criteria are absent; distance is
// sent only with commune. It does not validate q.
func (q Query) Values() url.Values {
	v := url.Values{}
	str := func(name, s string) {
		if s != "" {
			v.Set(name, s)
		}
	}
	boolean := func(name string, b *bool) {
		if b != nil {
			v.Set(name, strconv.FormatBool(*b))
		}
	}
	str("range", q.Range)
	if q.Sort != nil {
		v.Set("sort", strconv.Itoa(*q.Sort))
	}
	str("domaine", q.Domaine)
	str("codeROME", q.CodeROME)
	str("theme", q.Theme)
	str("appellation", q.Appellation)
	str("secteurActivite", q.SecteurActivite)
	str("codeNAF", q.CodeNAF)
	str("experience", q.Experience)
	str("experienceExigence", q.ExperienceExigence)
	str("typeContrat", q.TypeContrat)
	str("natureContrat", q.NatureContrat)
	str("origineOffre", q.OrigineOffre)
	str("qualification", q.Qualification)
	boolean("tempsPlein", q.TempsPlein)
	str("commune", q.Commune)
	if q.Distance != nil && q.Commune != "" {
		v.Set("distance", strconv.Itoa(*q.Distance))
	}
	str("departement", q.Departement)
	boolean("inclureLimitrophes", q.InclureLimitrophes)
	str("region", q.Region)
	str("paysContinent", q.PaysContinent)
	str("niveauFormation", q.NiveauFormation)
	str("permis", q.Permis)
	str("motsCles", q.MotsCles)
	if q.SalaireMin != nil {
		v.Set("salaireMin", formatFloat(*q.SalaireMin))
	}
	str("periodeSalaire", q.PeriodeSalaire)
	boolean("accesTravailleurHandicape", q.AccesTravailleurHandicape)
	boolean("offresMRS", q.OffresMRS)
	boolean("offresManqueCandidats", q.OffresManqueCandidats)
	boolean("entreprisesAdaptees", q.EntreprisesAdaptees)
	boolean("employeursHandiEngages", q.EmployeursHandiEngages)
	str("grandDomaine", q.GrandDomaine)
	str("publieeDepuis", q.PublieeDepuis)
	str("minCreationDate", q.MinCreationDate)
	str("maxCreationDate", q.MaxCreationDate)
	str("partenaires", q.Partenaires)
	str("modeSelectionPartenaires", q.ModeSelectionPartenaires)
	str("dureeHebdo", q.DureeHebdo)
	if q.DureeHebdoMin != nil {
		v.Set("dureeHebdoMin", fmt.Sprintf("%04d", *q.DureeHebdoMin))
	}
	if q.DureeHebdoMax != nil {
		v.Set("dureeHebdoMax", fmt.Sprintf("%04d", *q.DureeHebdoMax))
	}
	if q.DureeContratMin != nil {
		v.Set("dureeContratMin", formatFloat(*q.DureeContratMin))
	}
	if q.DureeContratMax != nil {
		v.Set("dureeContratMax", formatFloat(*q.DureeContratMax))
	}
	return v
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
