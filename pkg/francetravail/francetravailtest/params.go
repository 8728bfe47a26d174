package francetravailtest

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
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
	msgRangeStart   = "La position de début doit être inférieure ou égale à 3000."
	msgRangeFormat  = "Format du paramètre « range » incorrect. <entier>-<entier> attendu."
	msgMotsCles     = "Format du paramètre « motsCles » incorrect. 7 mots-clé au maximum séparés par des virgules et d'au moins 2 caractères."
	msgExperience   = "Format du paramètre « experience » incorrect. 0, 1, 2, 3 ou 4 attendu."
	msgExpExigence  = "Format du paramètre « experienceExigence » incorrect. D, E ou S attendu."
	msgOfferID      = "Le format de l'id de l'offre recherchée est incorrect."
)

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
	reRange   = regexp.MustCompile(`^([0-9]{1,9})-([0-9]{1,9})$`)
	reROME    = regexp.MustCompile(`^[A-N][0-9]{4}$`)
	reNAF     = regexp.MustCompile(`^[0-9]{2}\.[0-9]{2}[A-Z]$`)
	reSecteur = regexp.MustCompile(`^[0-9]{2}$`)
	reCommune = regexp.MustCompile(`^([0-9]{5}|2[AB][0-9]{3})$`)
	reCode    = regexp.MustCompile(`^[A-Za-z0-9]{1,10}$`)
	reNumeric = regexp.MustCompile(`^[0-9]{1,10}$`)
	rePartner = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,50}$`)
	reHHMM    = regexp.MustCompile(`^([0-9]{2})([0-5][0-9])$`)
	reOfferID = regexp.MustCompile(`^[0-9A-Za-z]{1,20}$`)
	// reDate: time.Parse alone would also accept fractions of a second.
	reDate = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$`)
)

var grandDomaines = []string{"A", "B", "C", "C15", "D", "E", "F", "G", "H", "I", "J", "K", "L", "L14",
	"M", "M13", "M14", "M15", "M16", "M17", "M18", "N"}

// booleanParams are the parameters that take true or false.
var booleanParams = []string{"tempsPlein", "inclureLimitrophes", "accesTravailleurHandicape", "offresMRS",
	"offresManqueCandidats", "entreprisesAdaptees", "employeursHandiEngages"}

// filterParams are the parameters that change the result set (the cache key).
var filterParams = []string{"sort", "codeROME", "commune", "departement", "region", "typeContrat",
	"natureContrat", "origineOffre", "qualification", "experienceExigence", "experience", "motsCles",
	"publieeDepuis", "minCreationDate", "maxCreationDate"}

// parseSearchParams validates the query string of GET /offres/search the way
// the API does, checking parameters in a fixed order and answering the first
// violation's message. Unknown parameters are ignored; a repeated parameter
// counts by its first value. It never panics, whatever the input.
func parseSearchParams(v url.Values) (*searchParams, string) {
	get := func(name string) string { return v.Get(name) }
	has := func(name string) bool { _, ok := v[name]; return ok }
	p := &searchParams{first: 0, last: pageSize - 1}

	if has("range") {
		m := reRange.FindStringSubmatch(get("range"))
		if m == nil {
			return nil, msgRangeFormat
		}
		first, _ := strconv.Atoi(m[1])
		last, _ := strconv.Atoi(m[2])
		switch {
		case first > last:
			return nil, msgRangeFormat // UNVERIFIED: a reversed range
		case last-first+1 > pageSize:
			return nil, msgRangeTooWide
		case first > maxRangeStart:
			return nil, msgRangeStart
		}
		p.first, p.last = first, last
	}
	if has("sort") {
		switch get("sort") {
		case "0", "1", "2":
			p.sort = int(get("sort")[0] - '0')
		default:
			return nil, msgFormat("sort", "0, 1 ou 2")
		}
	}
	// Referential codes checked for shape.
	for _, c := range []struct {
		name string
		max  int
		re   *regexp.Regexp
	}{
		{"domaine", 0, reCode}, {"codeROME", maxCodeROME, reROME}, {"theme", 0, reNumeric},
		{"appellation", 0, reNumeric}, {"secteurActivite", maxNAF, reSecteur}, {"codeNAF", maxNAF, reNAF},
	} {
		if has(c.name) && !listOK(get(c.name), c.max, c.re.MatchString) {
			return nil, msgValue(c.name)
		}
	}
	p.romes = list(get("codeROME"))
	if has("experience") {
		x := get("experience")
		if len(x) != 1 || x[0] < '0' || x[0] > '4' {
			return nil, msgExperience
		}
		p.experience = x[0]
	}
	if has("experienceExigence") {
		x := get("experienceExigence")
		if x != "D" && x != "S" && x != "E" {
			return nil, msgExpExigence
		}
		p.expExigence = x[0]
	}
	if has("typeContrat") && !listOK(get("typeContrat"), 0, func(s string) bool { return inRef(typesContrats, s) }) {
		return nil, msgValue("typeContrat")
	}
	p.types = list(get("typeContrat"))
	if has("natureContrat") && !listOK(get("natureContrat"), 0, func(s string) bool { return inRef(naturesContrats, s) }) {
		return nil, msgValue("natureContrat")
	}
	p.natures = list(get("natureContrat"))
	if has("origineOffre") {
		x := get("origineOffre")
		if x != "1" && x != "2" {
			return nil, msgFormat("origineOffre", "1 ou 2")
		}
		p.origine = x[0]
	}
	if has("qualification") {
		x := get("qualification")
		if x != "0" && x != "9" {
			return nil, msgFormat("qualification", "0 ou 9")
		}
		p.qualification = x[0]
	}
	for _, name := range booleanParams {
		if has(name) && get(name) != "true" && get(name) != "false" {
			return nil, msgBoolean(name)
		}
	}
	if has("commune") && !listOK(get("commune"), maxCommunes, reCommune.MatchString) {
		return nil, msgValue("commune")
	}
	p.communes = list(get("commune"))
	if has("distance") {
		if n, err := strconv.Atoi(get("distance")); err != nil || n < 0 {
			return nil, msgFormat("distance", "Entier positif")
		}
	}
	if has("departement") && !listOK(get("departement"), maxDepts, isDepartement) {
		return nil, msgValue("departement")
	}
	p.depts = list(get("departement"))
	if has("region") && !listOK(get("region"), 0, func(s string) bool { return inRef(regions, s) }) {
		return nil, msgValue("region")
	}
	p.regions = list(get("region"))
	for _, name := range []string{"paysContinent"} {
		if has(name) && !listOK(get(name), 0, reNumeric.MatchString) {
			return nil, msgValue(name)
		}
	}
	for _, name := range []string{"niveauFormation", "permis"} {
		if has(name) && !listOK(get(name), 0, reCode.MatchString) {
			return nil, msgValue(name)
		}
	}
	if has("motsCles") {
		words := strings.Split(get("motsCles"), ",")
		if len(words) > maxMotsCles {
			return nil, msgMotsCles
		}
		for _, w := range words {
			w = strings.TrimSpace(w)
			if len([]rune(w)) < minMotCle {
				return nil, msgMotsCles
			}
			p.motsCles = append(p.motsCles, fold(w))
		}
	}
	if has("salaireMin") != has("periodeSalaire") {
		return nil, msgTogether("salaireMin", "periodeSalaire")
	}
	if has("salaireMin") {
		if f, err := strconv.ParseFloat(get("salaireMin"), 64); err != nil || f < 0 || f != f {
			return nil, msgFormat("salaireMin", "Nombre positif")
		}
		if !slices.Contains([]string{"M", "A", "H", "C"}, get("periodeSalaire")) {
			return nil, msgFormat("periodeSalaire", "M, A, H ou C")
		}
	}
	if has("grandDomaine") && !slices.Contains(grandDomaines, get("grandDomaine")) {
		return nil, msgValue("grandDomaine")
	}
	if has("publieeDepuis") {
		switch x := get("publieeDepuis"); x {
		case "1", "3", "7", "14", "31":
			p.publieeDepuis, _ = strconv.Atoi(x)
		default:
			return nil, msgFormat("publieeDepuis", "1, 3, 7, 14 ou 31")
		}
	}
	if has("minCreationDate") != has("maxCreationDate") {
		return nil, msgTogether("minCreationDate", "maxCreationDate")
	}
	if has("minCreationDate") {
		lo, err := time.Parse(dateLayout, get("minCreationDate"))
		if err != nil || !reDate.MatchString(get("minCreationDate")) {
			return nil, msgFormat("minCreationDate", "yyyy-MM-ddTHH:mm:ssZ")
		}
		hi, err := time.Parse(dateLayout, get("maxCreationDate"))
		if err != nil || !reDate.MatchString(get("maxCreationDate")) {
			return nil, msgFormat("maxCreationDate", "yyyy-MM-ddTHH:mm:ssZ")
		}
		p.minCreated, p.maxCreated, p.hasDates = lo.UnixMilli(), hi.UnixMilli(), true
	}
	if has("partenaires") != has("modeSelectionPartenaires") {
		return nil, msgTogether("partenaires", "modeSelectionPartenaires")
	}
	if has("partenaires") {
		if !listOK(get("partenaires"), 0, rePartner.MatchString) {
			return nil, msgValue("partenaires")
		}
		if x := get("modeSelectionPartenaires"); x != "INCLUS" && x != "EXCLU" {
			return nil, msgFormat("modeSelectionPartenaires", "INCLUS ou EXCLU")
		}
	}
	if has("dureeHebdo") {
		if x := get("dureeHebdo"); x != "0" && x != "1" && x != "2" {
			return nil, msgFormat("dureeHebdo", "0, 1 ou 2")
		}
	}
	for _, name := range []string{"dureeHebdoMin", "dureeHebdoMax"} {
		if has(name) && !reHHMM.MatchString(get(name)) {
			return nil, msgFormat(name, "HHMM")
		}
	}
	for _, name := range []string{"dureeContratMin", "dureeContratMax"} {
		if has(name) {
			if f, err := strconv.ParseFloat(get(name), 64); err != nil || f < 0 || f > maxDureeMonths || f != f {
				return nil, msgFormat(name, "Nombre entre 0 et 99")
			}
		}
	}
	var key strings.Builder
	for _, name := range filterParams {
		if has(name) {
			key.WriteString(name)
			key.WriteByte('=')
			key.WriteString(get(name))
			key.WriteByte('&')
		}
	}
	p.key = key.String()
	return p, ""
}

// listOK checks a comma-separated list: at most max items (0: no bound),
// each accepted by ok.
func listOK(s string, max int, ok func(string) bool) bool {
	items := strings.Split(s, ",")
	if max > 0 && len(items) > max {
		return false
	}
	for _, it := range items {
		if !ok(it) {
			return false
		}
	}
	return true
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
