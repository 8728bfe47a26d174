package francetravailtest

import (
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

// The API's limits, as the emulator enforces them.
const (
	pageSize       = 150
	maxRangeStart  = 3000
	maxCodeROME    = 200
	maxNAF         = 2
	maxCommunes    = 5
	maxDepts       = 5
	maxMotsCles    = 7
	minMotCle      = 2
	maxDureeMonths = 99
	dateLayout     = "2006-01-02T15:04:05Z"
)

// Exact messages of the API's 400 answers. Those quoted in the spec are
// copied from production; the others (marked) follow the same forms and are
// UNVERIFIED.
const (
	msgRangeTooWide = "La plage de résultats demandée est trop importante."
	msgRangeFormat  = "Format du paramètre « range » incorrect. <entier>-<entier> attendu."
	msgMotsCles     = "Format du paramètre « motsCles » incorrect. 7 mots-clé au maximum séparés par des virgules et d'au moins 2 caractères."
	msgExperience   = "Format du paramètre « experience » incorrect. 0, 1, 2, 3 ou 4 attendu."
	msgExpExigence  = "Format du paramètre « experienceExigence » incorrect. D, E ou S attendu."
	msgOfferID      = "Le format de l'id de l'offre recherchée est incorrect."
)

// msgRangeStart is the 400 message of a range that starts past max, the
// largest start.
func msgRangeStart(max int) string {
	return "La position de début doit être inférieure ou égale à " + strconv.Itoa(max) + "."
}

// msgBoolean is the 400 message of a boolean parameter that is not true/false.
func msgBoolean(name string) string {
	return "Format du paramètre « " + name + " » incorrect. Booléen attendu."
}

// msgValue is the 400 message of a code unknown to its referential.
func msgValue(name string) string { return "Valeur du paramètre « " + name + " » incorrecte." }

// msgFormat is the 400 message of a malformed parameter (UNVERIFIED beyond
// the parameters the spec quotes).
func msgFormat(name, want string) string {
	return "Format du paramètre « " + name + " » incorrect. " + want + " attendu."
}

// msgOrder is the 400 message of a lower bound above its upper bound
// (UNVERIFIED).
func msgOrder(lo, hi string) string {
	return "Le paramètre « " + lo + " » doit être inférieur ou égal au paramètre « " + hi + " »."
}

// msgTogether is the 400 message of parameters that go in pairs (UNVERIFIED).
func msgTogether(a, b string) string {
	return "Les paramètres « " + a + " » et « " + b + " » doivent être renseignés ensemble."
}

// searchParams is a parsed, valid search query.
type searchParams struct {
	first, last int
	sort        int
	// Filters; empty means no filter.
	romes, communes, depts, regions, types, natures []string
	origine, qualification, expExigence, experience byte
	motsCles                                        []string // folded
	publieeDepuis                                   int      // days, 0 = none
	minCreated, maxCreated                          int64    // ms, both 0 = none
	hasDates                                        bool
	key                                             string // identifies the filters and sort, not the range
}

var (
	reOfferID = regexp.MustCompile(`^[0-9A-Za-z]{1,20}$`)
	// reDate: time.Parse alone would also accept fractions of a second.
	reDate = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$`)
)

var grandDomaines = []string{"A", "B", "C", "C15", "D", "E", "F", "G", "H", "I", "J", "K", "L", "L14",
	"M", "M13", "M14", "M15", "M16", "M17", "M18", "N"}

var booleans = []string{"true", "false"}

// The emulator's own spelling of the rules' kinds and patterns: written
// here, not taken from the client, so that it checks the client.
const (
	kindValue  = francetravail.KindValue
	kindList   = francetravail.KindList
	kindInt    = francetravail.KindInt
	kindNumber = francetravail.KindNumber
	kindDate   = francetravail.KindDate
	kindRange  = francetravail.KindRange

	patCode    = `^[A-Za-z0-9]{1,10}$`
	patNumeric = `^[0-9]{1,10}$`
	patHHMM    = `^[0-9]{2}[0-5][0-9]$`
)

type rule = francetravail.ParamRule

// param is one search parameter as the emulator checks it.
type param struct {
	rule
	// msg is the API's 400 message for a value that breaks the rule
	// (range has three; see checkRange).
	msg string
	// apply records a valid value in the parsed query; nil for the
	// parameters the emulator validates but does not apply. Every parameter
	// with apply but range changes the result set.
	apply func(p *searchParams, v string)
}

// params is the emulator's table of the search parameters, in the order
// the API checks them (the order is UNVERIFIED: it decides which message a
// query with several faults gets). It is the same contract as
// francetravail.SearchParams, written separately; a test holds them equal.
var params = compile([]param{
	{rule{Name: "range", Kind: kindRange, Pattern: `^([0-9]{1,9})-([0-9]{1,9})$`, MaxItems: pageSize, Max: maxRangeStart}, msgRangeFormat,
		func(p *searchParams, v string) { p.first, p.last, _ = splitRange(v) }},
	{rule{Name: "sort", Kind: kindValue, Enum: []string{"0", "1", "2"}}, msgFormat("sort", "0, 1 ou 2"),
		func(p *searchParams, v string) { p.sort = int(v[0] - '0') }},
	{rule{Name: "domaine", Kind: kindList, Pattern: patCode}, msgValue("domaine"), nil},
	{rule{Name: "codeROME", Kind: kindList, Pattern: `^[A-N][0-9]{4}$`, MaxItems: maxCodeROME}, msgValue("codeROME"),
		func(p *searchParams, v string) { p.romes = list(v) }},
	{rule{Name: "theme", Kind: kindList, Pattern: patNumeric}, msgValue("theme"), nil},
	{rule{Name: "appellation", Kind: kindList, Pattern: patNumeric}, msgValue("appellation"), nil},
	{rule{Name: "secteurActivite", Kind: kindList, Pattern: `^[0-9]{2}$`, MaxItems: maxNAF}, msgValue("secteurActivite"), nil},
	{rule{Name: "codeNAF", Kind: kindList, Pattern: `^[0-9]{2}\.[0-9]{2}[A-Z]$`, MaxItems: maxNAF}, msgValue("codeNAF"), nil},
	{rule{Name: "experience", Kind: kindValue, Enum: []string{"0", "1", "2", "3", "4"}}, msgExperience,
		func(p *searchParams, v string) { p.experience = v[0] }},
	{rule{Name: "experienceExigence", Kind: kindValue, Enum: []string{"D", "S", "E"}}, msgExpExigence,
		func(p *searchParams, v string) { p.expExigence = v[0] }},
	{rule{Name: "typeContrat", Kind: kindList, Referential: francetravail.RefTypesContrats}, msgValue("typeContrat"),
		func(p *searchParams, v string) { p.types = list(v) }},
	{rule{Name: "natureContrat", Kind: kindList, Referential: francetravail.RefNaturesContrats}, msgValue("natureContrat"),
		func(p *searchParams, v string) { p.natures = list(v) }},
	{rule{Name: "origineOffre", Kind: kindValue, Enum: []string{"1", "2"}}, msgFormat("origineOffre", "1 ou 2"),
		func(p *searchParams, v string) { p.origine = v[0] }},
	{rule{Name: "qualification", Kind: kindValue, Enum: []string{"0", "9"}}, msgFormat("qualification", "0 ou 9"),
		func(p *searchParams, v string) { p.qualification = v[0] }},
	{rule{Name: "tempsPlein", Kind: kindValue, Enum: booleans}, msgBoolean("tempsPlein"), nil},
	{rule{Name: "commune", Kind: kindList, Pattern: `^([0-9]{5}|2[AB][0-9]{3})$`, MaxItems: maxCommunes}, msgValue("commune"),
		func(p *searchParams, v string) { p.communes = list(v) }},
	{rule{Name: "distance", Kind: kindInt, OnlyWith: "commune"}, msgFormat("distance", "Entier positif"), nil},
	{rule{Name: "departement", Kind: kindList, Referential: francetravail.RefDepartements, MaxItems: maxDepts}, msgValue("departement"),
		func(p *searchParams, v string) { p.depts = list(v) }},
	{rule{Name: "inclureLimitrophes", Kind: kindValue, Enum: booleans}, msgBoolean("inclureLimitrophes"), nil},
	{rule{Name: "region", Kind: kindList, Referential: francetravail.RefRegions}, msgValue("region"),
		func(p *searchParams, v string) { p.regions = list(v) }},
	{rule{Name: "paysContinent", Kind: kindList, Pattern: patNumeric}, msgValue("paysContinent"), nil},
	{rule{Name: "niveauFormation", Kind: kindList, Pattern: patCode}, msgValue("niveauFormation"), nil},
	{rule{Name: "permis", Kind: kindList, Pattern: patCode}, msgValue("permis"), nil},
	{rule{Name: "motsCles", Kind: kindList, MaxItems: maxMotsCles, MinLen: minMotCle}, msgMotsCles,
		func(p *searchParams, v string) {
			for _, w := range strings.Split(v, ",") {
				p.motsCles = append(p.motsCles, fold(strings.TrimSpace(w)))
			}
		}},
	{rule{Name: "salaireMin", Kind: kindNumber, With: "periodeSalaire"}, msgFormat("salaireMin", "Nombre positif"), nil},
	{rule{Name: "periodeSalaire", Kind: kindValue, Enum: []string{"M", "A", "H", "C"}, With: "salaireMin"}, msgFormat("periodeSalaire", "M, A, H ou C"), nil},
	{rule{Name: "accesTravailleurHandicape", Kind: kindValue, Enum: booleans}, msgBoolean("accesTravailleurHandicape"), nil},
	{rule{Name: "offresMRS", Kind: kindValue, Enum: booleans}, msgBoolean("offresMRS"), nil},
	{rule{Name: "offresManqueCandidats", Kind: kindValue, Enum: booleans}, msgBoolean("offresManqueCandidats"), nil},
	{rule{Name: "entreprisesAdaptees", Kind: kindValue, Enum: booleans}, msgBoolean("entreprisesAdaptees"), nil},
	{rule{Name: "employeursHandiEngages", Kind: kindValue, Enum: booleans}, msgBoolean("employeursHandiEngages"), nil},
	{rule{Name: "grandDomaine", Kind: kindValue, Enum: grandDomaines}, msgValue("grandDomaine"), nil},
	{rule{Name: "publieeDepuis", Kind: kindValue, Enum: []string{"1", "3", "7", "14", "31"}}, msgFormat("publieeDepuis", "1, 3, 7, 14 ou 31"),
		func(p *searchParams, v string) { p.publieeDepuis, _ = strconv.Atoi(v) }},
	{rule{Name: "minCreationDate", Kind: kindDate, Pattern: reDate.String(), With: "maxCreationDate", NotAbove: "maxCreationDate"},
		msgFormat("minCreationDate", "yyyy-MM-ddTHH:mm:ssZ"),
		func(p *searchParams, v string) { p.minCreated, p.hasDates = dateMillis(v), true }},
	{rule{Name: "maxCreationDate", Kind: kindDate, Pattern: reDate.String(), With: "minCreationDate"},
		msgFormat("maxCreationDate", "yyyy-MM-ddTHH:mm:ssZ"),
		func(p *searchParams, v string) { p.maxCreated, p.hasDates = dateMillis(v), true }},
	{rule{Name: "partenaires", Kind: kindList, Pattern: `^[A-Za-z0-9_.\-]{1,50}$`, With: "modeSelectionPartenaires"}, msgValue("partenaires"), nil},
	{rule{Name: "modeSelectionPartenaires", Kind: kindValue, Enum: []string{"INCLUS", "EXCLU"}, With: "partenaires"},
		msgFormat("modeSelectionPartenaires", "INCLUS ou EXCLU"), nil},
	{rule{Name: "dureeHebdo", Kind: kindValue, Enum: []string{"0", "1", "2"}}, msgFormat("dureeHebdo", "0, 1 ou 2"), nil},
	{rule{Name: "dureeHebdoMin", Kind: kindValue, Pattern: patHHMM, NotAbove: "dureeHebdoMax"}, msgFormat("dureeHebdoMin", "HHMM"), nil},
	{rule{Name: "dureeHebdoMax", Kind: kindValue, Pattern: patHHMM}, msgFormat("dureeHebdoMax", "HHMM"), nil},
	{rule{Name: "dureeContratMin", Kind: kindNumber, Max: maxDureeMonths, NotAbove: "dureeContratMax"},
		msgFormat("dureeContratMin", "Nombre entre 0 et 99"), nil},
	{rule{Name: "dureeContratMax", Kind: kindNumber, Max: maxDureeMonths}, msgFormat("dureeContratMax", "Nombre entre 0 et 99"), nil},
})

// compiledParam is a param with its pattern compiled.
type compiledParam struct {
	param
	re *regexp.Regexp
}

func compile(ps []param) []compiledParam {
	out := make([]compiledParam, len(ps))
	for i, p := range ps {
		out[i].param = p
		if p.Pattern != "" {
			out[i].re = regexp.MustCompile(p.Pattern)
		}
	}
	return out
}

// paramPos finds a parameter of params by name.
var paramPos = func() map[string]int {
	m := make(map[string]int, len(params))
	for i, p := range params {
		m[p.Name] = i
	}
	return m
}()

// parseSearchParams validates the query string of GET /offres/search the way
// the API does: each parameter in the order of params, then the rules
// between parameters, answering the first violation's message. Unknown
// parameters are ignored; a repeated parameter counts by its first value. It
// never panics, whatever the input.
func parseSearchParams(v url.Values) (*searchParams, string) {
	p := &searchParams{first: 0, last: pageSize - 1}
	var key strings.Builder
	for i := range params {
		sp := &params[i]
		vals, ok := v[sp.Name]
		if !ok || len(vals) == 0 {
			continue
		}
		if msg := sp.check(vals[0]); msg != "" {
			return nil, msg
		}
		if sp.apply == nil {
			continue
		}
		sp.apply(p, vals[0])
		if sp.Name != "range" {
			key.WriteString(sp.Name + "=" + vals[0] + "&")
		}
	}
	for i := range params {
		if msg := params[i].checkPair(v); msg != "" {
			return nil, msg
		}
	}
	p.key = key.String()
	return p, ""
}

// check returns the API's message for a value that breaks the rule, "" for
// a valid one.
func (sp *compiledParam) check(v string) string {
	ok := true
	switch sp.Kind {
	case kindRange:
		return checkRange(sp, v)
	case kindValue:
		ok = sp.itemOK(v)
	case kindList:
		items := strings.Split(v, ",")
		ok = sp.MaxItems == 0 || len(items) <= sp.MaxItems
		for _, it := range items {
			ok = ok && sp.itemOK(it)
		}
	case kindInt:
		n, err := strconv.Atoi(v)
		ok = err == nil && n >= 0 && (sp.Max == 0 || float64(n) <= sp.Max)
	case kindNumber:
		f, err := strconv.ParseFloat(v, 64)
		ok = err == nil && f >= 0 && !math.IsInf(f, 0) && (sp.Max == 0 || f <= sp.Max)
	case kindDate:
		_, err := time.Parse(dateLayout, v)
		ok = err == nil && sp.re.MatchString(v)
	}
	if !ok {
		return sp.msg
	}
	return ""
}

func (sp *compiledParam) itemOK(it string) bool {
	return (sp.MinLen == 0 || len([]rune(strings.TrimSpace(it))) >= sp.MinLen) &&
		(sp.re == nil || sp.re.MatchString(it)) &&
		(len(sp.Enum) == 0 || slices.Contains(sp.Enum, it)) &&
		(sp.Referential == "" || inReferential(sp.Referential, it))
}

// checkRange checks a range with the API's three messages.
func checkRange(sp *compiledParam, v string) string {
	if !sp.re.MatchString(v) {
		return msgRangeFormat
	}
	first, last, _ := splitRange(v)
	switch {
	case first > last:
		return msgRangeFormat // UNVERIFIED: a reversed range
	case last-first+1 > sp.MaxItems:
		return msgRangeTooWide
	case float64(first) > sp.Max:
		return msgRangeStart(int(sp.Max))
	}
	return ""
}

// splitRange reads the two integers of a range matched by its pattern.
func splitRange(v string) (first, last int, err error) {
	a, b, _ := strings.Cut(v, "-")
	if first, err = strconv.Atoi(a); err != nil {
		return 0, 0, err
	}
	last, err = strconv.Atoi(b)
	return first, last, err
}

// checkPair applies the rules between parameters that sp states, once each
// parameter was found valid on its own.
func (sp *compiledParam) checkPair(v url.Values) string {
	has := func(name string) bool { return len(v[name]) > 0 }
	if sp.With != "" && has(sp.Name) != has(sp.With) {
		if paramPos[sp.Name] < paramPos[sp.With] {
			return msgTogether(sp.Name, sp.With)
		}
		return msgTogether(sp.With, sp.Name)
	}
	if sp.NotAbove != "" && has(sp.Name) && has(sp.NotAbove) && above(sp.Kind, v.Get(sp.Name), v.Get(sp.NotAbove)) {
		return msgOrder(sp.Name, sp.NotAbove)
	}
	return ""
}

// above compares two valid values of a kind.
func above(kind francetravail.ParamKind, a, b string) bool {
	if kind == kindDate {
		return dateMillis(a) > dateMillis(b)
	}
	x, _ := strconv.ParseFloat(a, 64)
	y, _ := strconv.ParseFloat(b, 64)
	return x > y
}

func dateMillis(v string) int64 {
	t, _ := time.Parse(dateLayout, v)
	return t.UnixMilli()
}

// inReferential reports whether code is in the referential name.
func inReferential(name, code string) bool {
	switch name {
	case francetravail.RefDepartements:
		return isDepartement(code)
	case francetravail.RefRegions:
		return inRef(regions, code)
	case francetravail.RefTypesContrats:
		return inRef(typesContrats, code)
	case francetravail.RefNaturesContrats:
		return inRef(naturesContrats, code)
	}
	return false
}

func list(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func inRef(entries []refEntry, code string) bool {
	for _, e := range entries {
		if e.Code == code {
			return true
		}
	}
	return false
}

// fold lowercases s and strips the accents of French letters, for keyword
// matching.
func fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range strings.ToLower(s) {
		if f, ok := accentFold[r]; ok {
			b.WriteRune(f)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

var accentFold = map[rune]rune{
	'à': 'a', 'â': 'a', 'ä': 'a', 'á': 'a', 'ç': 'c', 'é': 'e', 'è': 'e', 'ê': 'e', 'ë': 'e',
	'î': 'i', 'ï': 'i', 'í': 'i', 'ô': 'o', 'ö': 'o', 'ó': 'o', 'ù': 'u', 'û': 'u', 'ü': 'u', 'ú': 'u',
	'ÿ': 'y', 'œ': 'o', 'æ': 'a',
}
