package francetravail

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ParamKind is the syntax of a search parameter's value.
type ParamKind string

// The kinds of search parameters. Numbers are never negative in this API.
const (
	// KindValue is one value, checked by the rule's Pattern, Enum and
	// Referential.
	KindValue ParamKind = "value"
	// KindList is comma-separated values, each checked as a KindValue and
	// at least MinLen characters long; MaxItems bounds their number.
	KindList ParamKind = "list"
	// KindInt is a decimal integer ≥ 0, at most Max when Max > 0.
	KindInt ParamKind = "int"
	// KindNumber is a finite decimal number ≥ 0, at most Max when Max > 0.
	KindNumber ParamKind = "number"
	// KindDate is an instant written as CreationDateLayout and matched by
	// Pattern.
	KindDate ParamKind = "date"
	// KindRange is "p-d", matched by Pattern: 0-based inclusive indexes with
	// p ≤ d, d-p+1 ≤ MaxItems and p ≤ Max.
	KindRange ParamKind = "range"
)

// ParamRule is the contract of one parameter of GET /offres/search, as
// data: what Query.Validate enforces before any call, and what the API
// answers 400 to. The emulator in francetravailtest keeps its own table of
// ParamRules, written separately, and a test holds the two equal: a change
// to the contract is made in both, or fails.
//
// A rule's fields combine: a list item must match Pattern, be one of Enum
// and a code of Referential, whichever are set.
type ParamRule struct {
	// Name is the parameter's name as the API spells it (and as Query's
	// json and yaml tags spell it).
	Name string
	// Kind is the syntax of the value.
	Kind ParamKind
	// Pattern, when not empty, is an anchored regular expression (RE2
	// syntax) that the value, or each item of a list, must match.
	Pattern string
	// Enum, when not empty, lists the only values (or items) allowed.
	Enum []string
	// Referential, when not empty, names the referential (RefDepartements,
	// RefRegions, RefTypesContrats or RefNaturesContrats, which
	// BuiltinReferential holds) whose codes are the only values allowed.
	Referential string
	// MaxItems bounds the items of a list, or the width of a range (the
	// results it asks for); 0 means no bound.
	MaxItems int
	// MinLen is the fewest characters (runes) of each item of a list,
	// spaces around it trimmed; 0 means no bound.
	MinLen int
	// Max bounds a number, or the first index of a range; 0 means no bound.
	Max float64
	// With names the parameter that must be given together with this one:
	// both or neither.
	With string
	// NotAbove names the parameter whose value this one's must not exceed
	// when both are given: this one is the lower bound of a pair.
	NotAbove string
	// OnlyWith names the parameter without which this one means nothing:
	// the API ignores it alone, and Values leaves it out.
	OnlyWith string
}

// Patterns shared by several rules, or by a rule and a parser.
const (
	rangePattern        = `^([0-9]{1,9})-([0-9]{1,9})$`
	creationDatePattern = `^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$`
	codePattern         = `^[A-Za-z0-9]{1,10}$`
	numericPattern      = `^[0-9]{1,10}$`
	hhmmPattern         = `^[0-9]{2}[0-5][0-9]$`
)

// paramRow is one row of the table as written: the rule, how Query holds
// the value, and how an error says what was wanted.
type paramRow struct {
	ParamRule
	// value returns q's value as the API receives it, "" when unset.
	value func(q *Query) string
	// want says, in French as the API's messages, what a valid value (or
	// item) is; "" for a message made from the rule.
	want string
}

// searchParam is a row with its pattern compiled.
type searchParam struct {
	paramRow
	re *regexp.Regexp
}

// searchParams is the contract of GET /offres/search: one row per
// parameter, in the order of Query's fields. Validate and Values are
// driven by it, and nothing else in the package spells a parameter.
//
// Choices the spec leaves open, settled on both sides (the emulator's table
// makes the same): integers of a range have at most nine digits (a valid
// range needs four; longer ones are refused as malformed, never read
// modulo anything); numbers must be finite; and the lower bound of a pair
// (creation dates, weekly hours, contract months) must not exceed the upper
// one. UNVERIFIED: the API's answer to the last two; refusing them before
// the call costs nothing, as such queries match nothing useful.
var searchParams = compileParams([]paramRow{
	{ParamRule{Name: "range", Kind: KindRange, Pattern: rangePattern, MaxItems: PageSize, Max: MaxRangeStart},
		func(q *Query) string { return q.Range }, ""},
	{ParamRule{Name: "sort", Kind: KindValue, Enum: []string{"0", "1", "2"}},
		func(q *Query) string { return formatInt(q.Sort) }, ""},
	{ParamRule{Name: "domaine", Kind: KindList, Pattern: codePattern},
		func(q *Query) string { return q.Domaine }, "code de domaine mal formé"},
	{ParamRule{Name: "codeROME", Kind: KindList, Pattern: `^[A-N][0-9]{4}$`, MaxItems: maxCodeROME},
		func(q *Query) string { return q.CodeROME }, "code ROME attendu, une lettre et 4 chiffres"},
	{ParamRule{Name: "theme", Kind: KindList, Pattern: numericPattern},
		func(q *Query) string { return q.Theme }, "code de thème numérique attendu"},
	{ParamRule{Name: "appellation", Kind: KindList, Pattern: numericPattern},
		func(q *Query) string { return q.Appellation }, "code d'appellation numérique attendu"},
	{ParamRule{Name: "secteurActivite", Kind: KindList, Pattern: `^[0-9]{2}$`, MaxItems: maxSecteurs},
		func(q *Query) string { return q.SecteurActivite }, "division NAF à 2 chiffres attendue"},
	{ParamRule{Name: "codeNAF", Kind: KindList, Pattern: `^[0-9]{2}\.[0-9]{2}[A-Z]$`, MaxItems: maxNAF},
		func(q *Query) string { return q.CodeNAF }, "code NAF au format 99.99X attendu"},
	{ParamRule{Name: "experience", Kind: KindValue, Enum: []string{"0", "1", "2", "3", "4"}},
		func(q *Query) string { return q.Experience }, ""},
	{ParamRule{Name: "experienceExigence", Kind: KindValue, Enum: []string{"D", "S", "E"}},
		func(q *Query) string { return q.ExperienceExigence }, ""},
	{ParamRule{Name: "typeContrat", Kind: KindList, Referential: RefTypesContrats},
		func(q *Query) string { return q.TypeContrat }, "valeur inconnue du référentiel des types de contrats"},
	{ParamRule{Name: "natureContrat", Kind: KindList, Referential: RefNaturesContrats},
		func(q *Query) string { return q.NatureContrat }, "valeur inconnue du référentiel des natures de contrats"},
	{ParamRule{Name: "origineOffre", Kind: KindValue, Enum: []string{"1", "2"}},
		func(q *Query) string { return q.OrigineOffre }, ""},
	{ParamRule{Name: "qualification", Kind: KindValue, Enum: []string{"0", "9"}},
		func(q *Query) string { return q.Qualification }, ""},
	{ParamRule{Name: "tempsPlein", Kind: KindValue, Enum: booleans},
		func(q *Query) string { return formatBool(q.TempsPlein) }, ""},
	{ParamRule{Name: "commune", Kind: KindList, Pattern: `^([0-9]{5}|2[AB][0-9]{3})$`, MaxItems: maxCommunes},
		func(q *Query) string { return q.Commune }, "code INSEE de commune attendu"},
	{ParamRule{Name: "distance", Kind: KindInt, OnlyWith: "commune"},
		func(q *Query) string { return formatInt(q.Distance) }, "distance en km positive ou nulle attendue"},
	{ParamRule{Name: "departement", Kind: KindList, Referential: RefDepartements, MaxItems: maxDepartements},
		func(q *Query) string { return q.Departement }, "valeur inconnue du référentiel des départements"},
	{ParamRule{Name: "inclureLimitrophes", Kind: KindValue, Enum: booleans},
		func(q *Query) string { return formatBool(q.InclureLimitrophes) }, ""},
	{ParamRule{Name: "region", Kind: KindList, Referential: RefRegions},
		func(q *Query) string { return q.Region }, "valeur inconnue du référentiel des régions"},
	{ParamRule{Name: "paysContinent", Kind: KindList, Pattern: numericPattern},
		func(q *Query) string { return q.PaysContinent }, "code de pays ou de continent numérique attendu"},
	{ParamRule{Name: "niveauFormation", Kind: KindList, Pattern: codePattern},
		func(q *Query) string { return q.NiveauFormation }, "code de niveau de formation mal formé"},
	{ParamRule{Name: "permis", Kind: KindList, Pattern: codePattern},
		func(q *Query) string { return q.Permis }, "code de permis mal formé"},
	{ParamRule{Name: "motsCles", Kind: KindList, MaxItems: maxMotsCles, MinLen: minMotCleLen},
		func(q *Query) string { return q.MotsCles }, "mot-clé d'au moins 2 caractères attendu"},
	{ParamRule{Name: "salaireMin", Kind: KindNumber, With: "periodeSalaire"},
		func(q *Query) string { return formatFloat(q.SalaireMin) }, "montant positif ou nul attendu"},
	{ParamRule{Name: "periodeSalaire", Kind: KindValue, Enum: []string{"M", "A", "H", "C"}, With: "salaireMin"},
		func(q *Query) string { return q.PeriodeSalaire }, ""},
	{ParamRule{Name: "accesTravailleurHandicape", Kind: KindValue, Enum: booleans},
		func(q *Query) string { return formatBool(q.AccesTravailleurHandicape) }, ""},
	{ParamRule{Name: "offresMRS", Kind: KindValue, Enum: booleans},
		func(q *Query) string { return formatBool(q.OffresMRS) }, ""},
	{ParamRule{Name: "offresManqueCandidats", Kind: KindValue, Enum: booleans},
		func(q *Query) string { return formatBool(q.OffresManqueCandidats) }, ""},
	{ParamRule{Name: "entreprisesAdaptees", Kind: KindValue, Enum: booleans},
		func(q *Query) string { return formatBool(q.EntreprisesAdaptees) }, ""},
	{ParamRule{Name: "employeursHandiEngages", Kind: KindValue, Enum: booleans},
		func(q *Query) string { return formatBool(q.EmployeursHandiEngages) }, ""},
	{ParamRule{Name: "grandDomaine", Kind: KindValue, Enum: grandDomaines},
		func(q *Query) string { return q.GrandDomaine }, ""},
	{ParamRule{Name: "publieeDepuis", Kind: KindValue, Enum: []string{"1", "3", "7", "14", "31"}},
		func(q *Query) string { return q.PublieeDepuis }, ""},
	{ParamRule{Name: "minCreationDate", Kind: KindDate, Pattern: creationDatePattern, With: "maxCreationDate", NotAbove: "maxCreationDate"},
		func(q *Query) string { return q.MinCreationDate }, ""},
	{ParamRule{Name: "maxCreationDate", Kind: KindDate, Pattern: creationDatePattern, With: "minCreationDate"},
		func(q *Query) string { return q.MaxCreationDate }, ""},
	{ParamRule{Name: "partenaires", Kind: KindList, Pattern: `^[A-Za-z0-9_.\-]{1,50}$`, With: "modeSelectionPartenaires"},
		func(q *Query) string { return q.Partenaires }, "code de partenaire mal formé"},
	{ParamRule{Name: "modeSelectionPartenaires", Kind: KindValue, Enum: []string{"INCLUS", "EXCLU"}, With: "partenaires"},
		func(q *Query) string { return q.ModeSelectionPartenaires }, ""},
	{ParamRule{Name: "dureeHebdo", Kind: KindValue, Enum: []string{"0", "1", "2"}},
		func(q *Query) string { return q.DureeHebdo }, ""},
	{ParamRule{Name: "dureeHebdoMin", Kind: KindValue, Pattern: hhmmPattern, NotAbove: "dureeHebdoMax"},
		func(q *Query) string { return formatHHMM(q.DureeHebdoMin) }, hhmmWant},
	{ParamRule{Name: "dureeHebdoMax", Kind: KindValue, Pattern: hhmmPattern},
		func(q *Query) string { return formatHHMM(q.DureeHebdoMax) }, hhmmWant},
	{ParamRule{Name: "dureeContratMin", Kind: KindNumber, Max: maxDureeContrat, NotAbove: "dureeContratMax"},
		func(q *Query) string { return formatFloat(q.DureeContratMin) }, ""},
	{ParamRule{Name: "dureeContratMax", Kind: KindNumber, Max: maxDureeContrat},
		func(q *Query) string { return formatFloat(q.DureeContratMax) }, ""},
})

var booleans = []string{"true", "false"}

const hhmmWant = "durée HHMM attendue (heures 0 à 99, minutes 0 à 59)"

// paramIndex finds a row of searchParams by name.
var paramIndex = func() map[string]int {
	m := make(map[string]int, len(searchParams))
	for i, p := range searchParams {
		m[p.Name] = i
	}
	return m
}()

// compileParams compiles the patterns of a table written in this file; a
// bad pattern is a bug, caught by any test.
func compileParams(rows []paramRow) []searchParam {
	out := make([]searchParam, len(rows))
	for i, r := range rows {
		out[i].paramRow = r
		if r.Pattern != "" {
			out[i].re = regexp.MustCompile(r.Pattern)
		}
	}
	return out
}

// SearchParams returns the rules of every parameter of GET /offres/search,
// in the order of Query's fields: the contract that Query.Validate enforces
// and Query.Values follows. The result is a copy.
func SearchParams() []ParamRule {
	out := make([]ParamRule, len(searchParams))
	for i, p := range searchParams {
		out[i] = p.ParamRule
		out[i].Enum = slices.Clone(p.Enum)
	}
	return out
}

// wire returns q's values as the API receives them, indexed like
// searchParams; "" is unset.
func (q *Query) wire() []string {
	out := make([]string, len(searchParams))
	for i, p := range searchParams {
		out[i] = p.value(q)
	}
	return out
}

// Validate checks q against every rule of the API's search parameters
// (SearchParams) without any network call. It returns nil, or an error
// wrapping ErrInvalidQuery and one *ValidationError per violation (errors.As
// finds the first; the error's Unwrap() []error lists them all): first the
// values that break their own rule, in the order of Query's fields, then
// the pairs that break a rule between parameters.
func (q Query) Validate() error {
	vals := q.wire()
	var errs []error
	ok := make([]bool, len(vals)) // set and valid on its own
	for i, p := range searchParams {
		if vals[i] == "" {
			continue
		}
		if why := p.check(vals[i]); why != "" {
			errs = append(errs, &ValidationError{Field: p.Name, Value: vals[i], Rule: why})
			continue
		}
		ok[i] = true
	}
	for i, p := range searchParams {
		if p.With != "" && vals[i] != "" && vals[paramIndex[p.With]] == "" {
			errs = append(errs, &ValidationError{Field: p.With, Rule: "obligatoire avec " + p.Name})
		}
		if j := paramIndex[p.NotAbove]; p.NotAbove != "" && ok[i] && ok[j] && p.above(vals[i], vals[j]) {
			errs = append(errs, &ValidationError{Field: p.Name, Value: vals[i],
				Rule: fmt.Sprintf("ne doit pas dépasser %s (%s)", p.NotAbove, vals[j])})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &invalidQuery{errs: errs}
}

// Values returns the query string the client sends for q: the API's
// parameter names, booleans as true/false, numbers in plain decimal,
// dureeHebdoMin/Max on four digits. Unset criteria are absent, and so is a
// criterion whose OnlyWith is unset (distance without commune). It does not
// validate q.
func (q Query) Values() url.Values {
	vals := q.wire()
	v := make(url.Values, len(vals))
	for i, p := range searchParams {
		if vals[i] == "" || p.OnlyWith != "" && vals[paramIndex[p.OnlyWith]] == "" {
			continue
		}
		v.Set(p.Name, vals[i])
	}
	return v
}

// check returns the rule that the set value v breaks, "" when it keeps it.
func (p *searchParam) check(v string) string {
	switch p.Kind {
	case KindRange:
		if _, _, err := ParseRange(v); err != nil {
			return err.Error()
		}
	case KindList:
		items := strings.Split(v, ",")
		if p.MaxItems > 0 && len(items) > p.MaxItems {
			return fmt.Sprintf("%d valeurs au plus, séparées par des virgules", p.MaxItems)
		}
		for _, it := range items {
			if why := p.checkItem(it); why != "" {
				return fmt.Sprintf("%s (%q)", why, it)
			}
		}
	case KindValue:
		return p.checkItem(v)
	case KindInt:
		if n, err := strconv.Atoi(v); err != nil || n < 0 || p.Max > 0 && float64(n) > p.Max {
			return p.wantOr("entier positif ou nul attendu")
		}
	case KindNumber:
		if f, err := strconv.ParseFloat(v, 64); err != nil || !(f >= 0) || math.IsInf(f, 0) || p.Max > 0 && f > p.Max {
			return p.wantOr(p.numberRule())
		}
	case KindDate:
		if _, err := ParseCreationDate(v); err != nil {
			return p.wantOr("format yyyy-MM-ddTHH:mm:ssZ attendu")
		}
	}
	return ""
}

// checkItem checks one value of a KindValue or KindList parameter.
func (p *searchParam) checkItem(it string) string {
	switch {
	case p.MinLen > 0 && utf8.RuneCountInString(strings.TrimSpace(it)) < p.MinLen,
		p.re != nil && !p.re.MatchString(it),
		p.Referential != "" && !inBuiltinReferential(p.Referential, it):
		return p.wantOr("valeur mal formée")
	case len(p.Enum) > 0 && !slices.Contains(p.Enum, it):
		return p.wantOr(oneOf(p.Enum) + " attendu")
	}
	return ""
}

func (p *searchParam) wantOr(rule string) string {
	if p.want != "" {
		return p.want
	}
	return rule
}

func (p *searchParam) numberRule() string {
	if p.Max > 0 {
		return fmt.Sprintf("nombre entre 0 et %s attendu", formatFloat(&p.Max))
	}
	return "nombre positif ou nul attendu"
}

// above reports whether the valid value v exceeds the valid value bound.
func (p *searchParam) above(v, bound string) bool {
	if p.Kind == KindDate {
		a, _ := ParseCreationDate(v)
		b, _ := ParseCreationDate(bound)
		return a.After(b)
	}
	a, _ := strconv.ParseFloat(v, 64)
	b, _ := strconv.ParseFloat(bound, 64)
	return a > b
}

// oneOf writes values as French lists them: "D, S ou E".
func oneOf(values []string) string {
	if len(values) < 2 {
		return strings.Join(values, "")
	}
	return strings.Join(values[:len(values)-1], ", ") + " ou " + values[len(values)-1]
}

var (
	reRange = regexp.MustCompile(rangePattern)
	reDate  = regexp.MustCompile(creationDatePattern)
)

// ParseRange reads a range "p-d" and checks the API's rules: integers of
// at most nine digits, p ≤ d, d-p+1 ≤ PageSize, p ≤ MaxRangeStart.
func ParseRange(s string) (first, last int, err error) {
	m := reRange.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, errors.New("format incorrect, <entier>-<entier> attendu")
	}
	first, _ = strconv.Atoi(m[1]) // nine digits at most: no overflow
	last, _ = strconv.Atoi(m[2])
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

func formatInt(n *int) string {
	if n == nil {
		return ""
	}
	return strconv.Itoa(*n)
}

// formatHHMM writes weekly hours on four digits, as the API reads them.
func formatHHMM(n *int) string {
	if n == nil {
		return ""
	}
	return fmt.Sprintf("%04d", *n)
}

func formatBool(b *bool) string {
	if b == nil {
		return ""
	}
	return strconv.FormatBool(*b)
}

func formatFloat(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}
