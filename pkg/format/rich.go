package format

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// richTagRoom is the spare capacity of a tags slice for the rich format's
// extra tags, so that appending them does not reallocate in most offers.
const richTagRoom = 24

// Skill types, as HrFlow names them.
const (
	skillHard = "hard"
	skillSoft = "soft"
)

// salaryRangeName names the salary entry of ranges_float.
const salaryRangeName = "salary"

// richTags are the rich format's scalar tags, after the 13 historic ones and
// in this order: each is present, with a null value when the offer lacks the
// field. path is the field's key, or "object.key".
var richTags = [...]struct{ name, path string }{
	{tagPrefix + "company_name", "entreprise.nom"},
	{tagPrefix + "contract_code", "typeContrat"},
	{tagPrefix + "experience_code", "experienceExige"},
	{tagPrefix + "qualification_code", "qualificationCode"},
	{tagPrefix + "naf_code", "codeNAF"},
	{tagPrefix + "working_time", "dureeTravailLibelleConverti"},
	{tagPrefix + "travel", "deplacementLibelle"},
	{tagPrefix + "positions", "nombrePostes"},
	{tagPrefix + "disability_accessible", "accessibleTH"},
	{tagPrefix + "apprenticeship", "alternance"},
	{tagPrefix + "adapted_company", "entrepriseAdaptee"},
	{tagPrefix + "disability_engaged_employer", "employeurHandiEngage"},
	{tagPrefix + "hard_to_fill", "offresManqueCandidats"},
	{tagPrefix + "company_size", "trancheEffectifEtab"},
	{tagPrefix + "application_url", "contact.urlPostulation"},
	{tagPrefix + "origin", "origineOffre.origine"},
}

// Repeated tags of the rich format: one per item of the offer's list, after
// richTags, none when the list is empty or absent.
const (
	tagPartner          = tagPrefix + "partner"           // origineOffre.partenaires[].nom
	tagSchedule         = tagPrefix + "schedule"          // contexteTravail.horaires[]
	tagWorkingCondition = tagPrefix + "working_condition" // contexteTravail.conditionsExercice[]
)

// richMetadatas are the rich format's metadatas, in this order: free text
// about contacting the recruiter and about the offer. Each is present only
// when the offer has it as a non-blank string, trimmed.
var richMetadatas = [...]struct{ name, path string }{
	{tagPrefix + "contact-coordinates1", "contact.coordonnees1"},
	{tagPrefix + "contact-coordinates2", "contact.coordonnees2"},
	{tagPrefix + "contact-coordinates3", "contact.coordonnees3"},
	{tagPrefix + "contact-comment", "contact.commentaire"},
	{tagPrefix + "contact-recruiter_url", "contact.urlRecruteur"},
	{tagPrefix + "agency-phone", "agence.telephone"},
	{tagPrefix + "agency-email", "agence.courriel"},
	{tagPrefix + "salary-comment", "salaire.commentaire"},
	{tagPrefix + "experience-comment", "experienceCommentaire"},
	{tagPrefix + "complement_exercice", "complementExercice"},
}

// Rich is the "rich" format: PoleEmploi's nine keys with the same meaning,
// except that url is the offer's origineOffre.urlOrigine, plus everything
// else the offer says that HrFlow can hold (the package documentation lists
// each field with its source):
//
//   - skills: competences[].libelle and outilsBureautiques[] as {name,
//     type: "hard", value: exigence or null}, qualitesProfessionnelles[].libelle
//     as {name, type: "soft", value: null}; the exigence is the offer's code,
//     "E" required or "S" desired;
//   - languages, certifications: langues[] and permis[] (driving licences) as
//     {name: libelle, value: exigence or null};
//   - requirements: one line per formation, "<niveauLibelle> en
//     <domaineLibelle>" and the commentaire in parentheses when it adds
//     something;
//   - responsibilities: qualitesProfessionnelles[].description, one a line;
//   - culture: entreprise.description;
//   - benefits: the salary complements, one a line;
//   - ranges_float: the salary range parsed from salaire.libelle, {name:
//     "salary", value_min, value_max, unit: "EUR/month", "EUR/year",
//     "EUR/hour", "EUR/performance" or "EUR" when the label names no
//     period}, or no range when the label does not parse;
//   - tags: the 13 historic tags, then company name, contract code,
//     experience and qualification codes, NAF code, working time, travel,
//     number of positions, accessibility, apprenticeship, adapted company,
//     disability-engaged employer, hard-to-fill, company size, application URL
//     and origin (always present, null when absent), then one tag per partner,
//     schedule and working condition;
//   - metadatas: contact coordinates, comments, recruiter URL and agency
//     contact, when present.
//
// Text fields are null and lists empty when the offer has nothing for them:
// an offer missing any field still formats. Only an offer that PoleEmploi
// rejects fails. Rich never panics and is safe for concurrent use.
func Rich(offer francetravail.Offer) (hrflow.Job, error) {
	var f offerFields
	if err := gather(offer, &f); err != nil {
		return nil, err
	}
	o := index(f.top)
	c := newCopier(len(offer))
	job, err := poleEmploiJob(c, &f, richTagRoom)
	if err != nil {
		return nil, err
	}
	entreprise := f.entreprise.object()
	origine := o["origineOffre"].object()
	qualities := o["qualitesProfessionnelles"].items()

	job["url"] = nullable(c.text(origine.get("urlOrigine")))
	job["skills"] = skills(c, o, qualities)
	job["languages"] = requirementList(c, o["langues"].items())
	job["certifications"] = requirementList(c, o["permis"].items())
	job["requirements"] = lines(c, formations(o["formations"].items()))
	job["responsibilities"] = lines(c, stringsOf(qualities, "description"))
	job["culture"] = nullable(c.text(entreprise.get("description")))
	job["benefits"] = lines(c, benefits(f.salaire.object()))
	job["ranges_float"] = salaryRanges(f.salaire.object().get("libelle").view())

	tags := job["tags"].([]Tag)
	for _, t := range richTags {
		tags = append(tags, Tag{Name: t.name, Value: c.copy(t.name, lookup(o, t.path))})
	}
	for _, name := range stringsOf(origine.get("partenaires").items(), "nom") {
		tags = append(tags, Tag{Name: tagPartner, Value: c.str(name)})
	}
	contexte := o["contexteTravail"].object()
	for _, s := range stringsOf(contexte.get("horaires").items(), "") {
		tags = append(tags, Tag{Name: tagSchedule, Value: c.str(s)})
	}
	for _, s := range stringsOf(contexte.get("conditionsExercice").items(), "") {
		tags = append(tags, Tag{Name: tagWorkingCondition, Value: c.str(s)})
	}
	job["tags"] = tags

	metadatas := []any{}
	for _, m := range richMetadatas {
		if s := strings.TrimSpace(lookup(o, m.path).view()); s != "" {
			metadatas = append(metadatas, map[string]any{"name": m.name, "value": c.str(s)})
		}
	}
	job["metadatas"] = metadatas
	if c.err != nil {
		return nil, c.err
	}
	return job, nil
}

// index maps the keys of the object v to their values, the last one when a
// key is repeated.
func index(v rawValue) map[string]rawValue {
	m := make(map[string]rawValue)
	walkObject(v, 0, 0, func(k []byte, value rawValue) { m[string(k)] = value })
	return m
}

// lookup returns the value at path, a key or "object.key", or nil.
func lookup(o map[string]rawValue, path string) rawValue {
	if parent, key, ok := strings.Cut(path, "."); ok {
		return o[parent].get(key)
	}
	return o[path]
}

// nullable returns s, or nil (JSON null) when s is empty.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// stringsOf returns the trimmed, non-blank strings of items: items
// themselves when key is "", else their key field. Other values are skipped.
func stringsOf(items []rawValue, key string) []string {
	var out []string
	for _, item := range items {
		if key != "" {
			item = item.get(key)
		}
		if s := strings.TrimSpace(item.view()); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// lines returns ss joined by newlines as a copy, or nil when there are none.
func lines(c *copier, ss []string) any {
	if len(ss) == 0 {
		return nil
	}
	return c.str(strings.Join(ss, "\n"))
}

// skills lists competences and office tools as hard skills and professional
// qualities as soft skills, each name and type once.
func skills(c *copier, o map[string]rawValue, qualities []rawValue) []any {
	out := []any{}
	seen := make(map[[2]string]bool)
	add := func(name, typ string, value any) {
		if name == "" || seen[[2]string{name, typ}] {
			return
		}
		seen[[2]string{name, typ}] = true
		out = append(out, map[string]any{"name": c.str(name), "type": typ, "value": value})
	}
	for _, comp := range o["competences"].items() {
		add(strings.TrimSpace(comp.get("libelle").view()), skillHard, nullable(c.text(comp.get("exigence"))))
	}
	for _, tool := range stringsOf(o["outilsBureautiques"].items(), "") {
		add(tool, skillHard, nil)
	}
	for _, q := range stringsOf(qualities, "libelle") {
		add(q, skillSoft, nil)
	}
	return out
}

// requirementList maps langues or permis to [{name: libelle, value:
// exigence or null}], skipping items without a libelle.
func requirementList(c *copier, items []rawValue) []any {
	out := []any{}
	for _, item := range items {
		name := strings.TrimSpace(item.get("libelle").view())
		if name == "" {
			continue
		}
		out = append(out, map[string]any{"name": c.str(name), "value": nullable(c.text(item.get("exigence")))})
	}
	return out
}

// formations describes each formation as "<niveau> en <domaine>", followed by
// its commentaire in parentheses when that says something else.
func formations(items []rawValue) []string {
	var out []string
	for _, item := range items {
		level := strings.TrimSpace(item.get("niveauLibelle").view())
		domain := strings.TrimSpace(item.get("domaineLibelle").view())
		comment := strings.TrimSpace(item.get("commentaire").view())
		line := level
		switch {
		case level == "":
			line = domain
		case domain != "":
			line = level + " en " + domain
		}
		if comment != "" && comment != level && comment != domain && comment != line {
			if line == "" {
				line = comment
			} else {
				line += " (" + comment + ")"
			}
		}
		if line != "" {
			out = append(out, line)
		}
	}
	return out
}

// benefits returns the salary complements, each once.
func benefits(salaire rawValue) []string {
	var out []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		for _, have := range out {
			if have == s {
				return
			}
		}
		if s != "" {
			out = append(out, s)
		}
	}
	add(salaire.get("complement1").view())
	add(salaire.get("complement2").view())
	for _, s := range stringsOf(salaire.get("listeComplements").items(), "libelle") {
		add(s)
	}
	return out
}

// salaryRanges returns ranges_float for a salary label: one "salary" range,
// or none when the label does not parse.
func salaryRanges(label string) []any {
	r, ok := parseSalary(label)
	if !ok {
		return []any{}
	}
	return []any{map[string]any{
		"name":      salaryRangeName,
		"value_min": r.Min,
		"value_max": r.Max,
		"unit":      r.Unit,
	}}
}

// Salary units of ranges_float.
const (
	unitMonth       = "EUR/month"
	unitYear        = "EUR/year"
	unitHour        = "EUR/hour"
	unitPerformance = "EUR/performance"
	unitUnknown     = "EUR" // the label gives no period
)

// salaryPeriods maps the first word of a salary label to its unit.
var salaryPeriods = map[string]string{
	"mensuel": unitMonth,
	"annuel":  unitYear,
	"horaire": unitHour,
	"cachet":  unitPerformance,
}

// salaryLabel matches France Travail's salary labels: an optional period
// ("Mensuel", "Annuel", "Horaire", "Cachet") and "de", an amount in euros,
// optionally "à" a second amount, optionally "sur N mois". Amounts use a
// point or a comma for decimals.
var salaryLabel = regexp.MustCompile(`(?i)^\s*(?:(mensuel|annuel|horaire|cachet)\s+)?de\s+` +
	`(\d+(?:[.,]\d+)?)\s*(?:euros?|eur|€)` +
	`(?:\s+(?:à|a)\s+(\d+(?:[.,]\d+)?)\s*(?:euros?|eur|€))?` +
	`(?:\s+sur\s+\d+(?:[.,]\d+)?\s+mois)?\s*\.?\s*$`)

// salaryRange is a salary range read from a France Travail salary label.
type salaryRange struct {
	Min, Max float64
	Unit     string // unitMonth, unitYear, unitHour, unitPerformance or unitUnknown
}

// parseSalary reads a France Travail salary label, such as "Mensuel de 2000.0
// Euros à 2300.0 Euros sur 12.0 mois", "Annuel de 22000,00 Euros", "Horaire
// de 11,65 Euros à 11,65 Euros" or "De 1800,00 Euros à 2100,00 Euros" (no
// period: unitUnknown). A single amount gives Min == Max; bounds given in
// decreasing order are swapped. It reports false for any other label.
func parseSalary(label string) (salaryRange, bool) {
	m := salaryLabel.FindStringSubmatch(label)
	if m == nil {
		return salaryRange{}, false
	}
	unit := unitUnknown
	if m[1] != "" {
		unit = salaryPeriods[strings.ToLower(m[1])]
	}
	lo, err := strconv.ParseFloat(strings.Replace(m[2], ",", ".", 1), 64)
	if err != nil {
		return salaryRange{}, false
	}
	hi := lo
	if m[3] != "" {
		if hi, err = strconv.ParseFloat(strings.Replace(m[3], ",", ".", 1), 64); err != nil {
			return salaryRange{}, false
		}
	}
	if hi < lo {
		lo, hi = hi, lo
	}
	return salaryRange{Min: lo, Max: hi, Unit: unit}, true
}
