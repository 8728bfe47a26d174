package francetravail

import "slices"

// ReferentialEntry is one entry of a France Travail referential
// (GET /referentiel/{name}). Communes add CodePostal and CodeDepartement;
// départements add Region. Fields the API leaves out stay empty.
type ReferentialEntry struct {
	// Code is the entry's code, what search parameters take ("74", "CDI").
	Code string `json:"code"`
	// Libelle is the entry's label ("Haute-Savoie").
	Libelle string `json:"libelle"`
	// CodePostal is a commune's postal code.
	CodePostal string `json:"codePostal,omitempty"`
	// CodeDepartement is a commune's département code.
	CodeDepartement string `json:"codeDepartement,omitempty"`
	// Region is a département's région.
	Region *ReferentialEntry `json:"region,omitempty"`
}

// Names of the referentials the API serves under /referentiel/{name}.
const (
	RefAppellations      = "appellations"
	RefNafs              = "nafs"
	RefCommunes          = "communes"
	RefContinents        = "continents"
	RefDepartements      = "departements"
	RefDomaines          = "domaines"
	RefLangues           = "langues"
	RefMetiers           = "metiers"
	RefNaturesContrats   = "naturesContrats"
	RefNiveauxFormations = "niveauxFormations"
	RefPays              = "pays"
	RefPermis            = "permis"
	RefRegions           = "regions"
	RefSecteursActivites = "secteursActivites"
	RefThemes            = "themes"
	RefTypesContrats     = "typesContrats"
)

// ReferentialNames lists every referential name the API serves, sorted.
func ReferentialNames() []string {
	return []string{RefAppellations, RefCommunes, RefContinents, RefDepartements, RefDomaines,
		RefLangues, RefMetiers, RefNafs, RefNaturesContrats, RefNiveauxFormations, RefPays,
		RefPermis, RefRegions, RefSecteursActivites, RefThemes, RefTypesContrats}
}

// The closed referentials below are small and stable, so Query.Validate checks
// membership in them without a network call. They are written from the public
// INSEE codes and the codes France Travail offers carry.
//
// UNVERIFIED: that they are complete copies of the live referentials. A code
// France Travail adds later is rejected by Validate until it is added here;
// open referentials (ROME codes, communes, NAF codes, appellations, …) are only
// checked for shape for that reason.

var regions = []ReferentialEntry{
	{Code: "01", Libelle: "Guadeloupe"},
	{Code: "02", Libelle: "Martinique"},
	{Code: "03", Libelle: "Guyane"},
	{Code: "04", Libelle: "La Réunion"},
	{Code: "06", Libelle: "Mayotte"},
	{Code: "11", Libelle: "Île-de-France"},
	{Code: "24", Libelle: "Centre-Val de Loire"},
	{Code: "27", Libelle: "Bourgogne-Franche-Comté"},
	{Code: "28", Libelle: "Normandie"},
	{Code: "32", Libelle: "Hauts-de-France"},
	{Code: "44", Libelle: "Grand Est"},
	{Code: "52", Libelle: "Pays de la Loire"},
	{Code: "53", Libelle: "Bretagne"},
	{Code: "75", Libelle: "Nouvelle-Aquitaine"},
	{Code: "76", Libelle: "Occitanie"},
	{Code: "84", Libelle: "Auvergne-Rhône-Alpes"},
	{Code: "93", Libelle: "Provence-Alpes-Côte d'Azur"},
	{Code: "94", Libelle: "Corse"},
}

// departements: code, libellé, region code.
var departements = [][3]string{
	{"01", "Ain", "84"}, {"02", "Aisne", "32"}, {"03", "Allier", "84"},
	{"04", "Alpes-de-Haute-Provence", "93"}, {"05", "Hautes-Alpes", "93"},
	{"06", "Alpes-Maritimes", "93"}, {"07", "Ardèche", "84"}, {"08", "Ardennes", "44"},
	{"09", "Ariège", "76"}, {"10", "Aube", "44"}, {"11", "Aude", "76"},
	{"12", "Aveyron", "76"}, {"13", "Bouches-du-Rhône", "93"}, {"14", "Calvados", "28"},
	{"15", "Cantal", "84"}, {"16", "Charente", "75"}, {"17", "Charente-Maritime", "75"},
	{"18", "Cher", "24"}, {"19", "Corrèze", "75"}, {"2A", "Corse-du-Sud", "94"},
	{"2B", "Haute-Corse", "94"}, {"21", "Côte-d'Or", "27"}, {"22", "Côtes-d'Armor", "53"},
	{"23", "Creuse", "75"}, {"24", "Dordogne", "75"}, {"25", "Doubs", "27"},
	{"26", "Drôme", "84"}, {"27", "Eure", "28"}, {"28", "Eure-et-Loir", "24"},
	{"29", "Finistère", "53"}, {"30", "Gard", "76"}, {"31", "Haute-Garonne", "76"},
	{"32", "Gers", "76"}, {"33", "Gironde", "75"}, {"34", "Hérault", "76"},
	{"35", "Ille-et-Vilaine", "53"}, {"36", "Indre", "24"}, {"37", "Indre-et-Loire", "24"},
	{"38", "Isère", "84"}, {"39", "Jura", "27"}, {"40", "Landes", "75"},
	{"41", "Loir-et-Cher", "24"}, {"42", "Loire", "84"}, {"43", "Haute-Loire", "84"},
	{"44", "Loire-Atlantique", "52"}, {"45", "Loiret", "24"}, {"46", "Lot", "76"},
	{"47", "Lot-et-Garonne", "75"}, {"48", "Lozère", "76"}, {"49", "Maine-et-Loire", "52"},
	{"50", "Manche", "28"}, {"51", "Marne", "44"}, {"52", "Haute-Marne", "44"},
	{"53", "Mayenne", "52"}, {"54", "Meurthe-et-Moselle", "44"}, {"55", "Meuse", "44"},
	{"56", "Morbihan", "53"}, {"57", "Moselle", "44"}, {"58", "Nièvre", "27"},
	{"59", "Nord", "32"}, {"60", "Oise", "32"}, {"61", "Orne", "28"},
	{"62", "Pas-de-Calais", "32"}, {"63", "Puy-de-Dôme", "84"},
	{"64", "Pyrénées-Atlantiques", "75"}, {"65", "Hautes-Pyrénées", "76"},
	{"66", "Pyrénées-Orientales", "76"}, {"67", "Bas-Rhin", "44"}, {"68", "Haut-Rhin", "44"},
	{"69", "Rhône", "84"}, {"70", "Haute-Saône", "27"}, {"71", "Saône-et-Loire", "27"},
	{"72", "Sarthe", "52"}, {"73", "Savoie", "84"}, {"74", "Haute-Savoie", "84"},
	{"75", "Paris", "11"}, {"76", "Seine-Maritime", "28"}, {"77", "Seine-et-Marne", "11"},
	{"78", "Yvelines", "11"}, {"79", "Deux-Sèvres", "75"}, {"80", "Somme", "32"},
	{"81", "Tarn", "76"}, {"82", "Tarn-et-Garonne", "76"}, {"83", "Var", "93"},
	{"84", "Vaucluse", "93"}, {"85", "Vendée", "52"}, {"86", "Vienne", "75"},
	{"87", "Haute-Vienne", "75"}, {"88", "Vosges", "44"}, {"89", "Yonne", "27"},
	{"90", "Territoire de Belfort", "27"}, {"91", "Essonne", "11"},
	{"92", "Hauts-de-Seine", "11"}, {"93", "Seine-Saint-Denis", "11"},
	{"94", "Val-de-Marne", "11"}, {"95", "Val-d'Oise", "11"},
	{"971", "Guadeloupe", "01"}, {"972", "Martinique", "02"}, {"973", "Guyane", "03"},
	{"974", "La Réunion", "04"}, {"976", "Mayotte", "06"},
}

var typesContrats = []ReferentialEntry{
	{Code: "CCE", Libelle: "Profession commerciale"},
	{Code: "CDD", Libelle: "Contrat à durée déterminée"},
	{Code: "CDI", Libelle: "Contrat à durée indéterminée"},
	{Code: "DDI", Libelle: "CDD insertion"},
	{Code: "DIN", Libelle: "CDI intérimaire"},
	{Code: "FRA", Libelle: "Franchise"},
	{Code: "LIB", Libelle: "Profession libérale"},
	{Code: "MIS", Libelle: "Mission intérimaire"},
	{Code: "REP", Libelle: "Reprise d'entreprise"},
	{Code: "SAI", Libelle: "Contrat travail saisonnier"},
	{Code: "TTI", Libelle: "Contrat travail temporaire insertion"},
}

var naturesContrats = []ReferentialEntry{
	{Code: "CC", Libelle: "CDI de chantier ou d'opération"},
	{Code: "CI", Libelle: "Contrat d'insertion"},
	{Code: "CU", Libelle: "Contrat d'usage"},
	{Code: "E1", Libelle: "Contrat travail"},
	{Code: "E2", Libelle: "Contrat apprentissage"},
	{Code: "EE", Libelle: "Contrat d'engagement éducatif"},
	{Code: "FA", Libelle: "Cont. Adaptation"},
	{Code: "FJ", Libelle: "Cont. Sécurisation Professionnelle"},
	{Code: "FS", Libelle: "Cont. professionnalisation"},
	{Code: "FT", Libelle: "CUI - CAE"},
	{Code: "FU", Libelle: "CUI - CIE"},
	{Code: "I1", Libelle: "Insertion par l'activ.éco."},
	{Code: "NS", Libelle: "Emploi non salarié"},
	{Code: "PS", Libelle: "Portage salarial"},
}

// BuiltinReferential returns a fresh copy of a referential this package
// embeds (RefDepartements, RefRegions, RefTypesContrats, RefNaturesContrats),
// or nil for any other name. The emulator serves these, so that what it
// accepts is what Query.Validate accepts.
func BuiltinReferential(name string) []ReferentialEntry {
	switch name {
	case RefRegions:
		return slices.Clone(regions)
	case RefTypesContrats:
		return slices.Clone(typesContrats)
	case RefNaturesContrats:
		return slices.Clone(naturesContrats)
	case RefDepartements:
		out := make([]ReferentialEntry, len(departements))
		for i, d := range departements {
			r := regionByCode(d[2])
			out[i] = ReferentialEntry{Code: d[0], Libelle: d[1], Region: &r}
		}
		return out
	}
	return nil
}

func regionByCode(code string) ReferentialEntry {
	for _, r := range regions {
		if r.Code == code {
			return r
		}
	}
	return ReferentialEntry{Code: code}
}

func inReferential(entries []ReferentialEntry, code string) bool {
	for _, e := range entries {
		if e.Code == code {
			return true
		}
	}
	return false
}

// inBuiltinReferential reports whether code is in the referential name,
// one of those BuiltinReferential holds (false for any other name).
func inBuiltinReferential(name, code string) bool {
	switch name {
	case RefDepartements:
		return isDepartement(code)
	case RefRegions:
		return inReferential(regions, code)
	case RefTypesContrats:
		return inReferential(typesContrats, code)
	case RefNaturesContrats:
		return inReferential(naturesContrats, code)
	}
	return false
}

func isDepartement(code string) bool {
	for _, d := range departements {
		if d[0] == code {
			return true
		}
	}
	return false
}

// grandDomaines are the values the spec lists for grandDomaine.
var grandDomaines = []string{"A", "B", "C", "C15", "D", "E", "F", "G", "H", "I", "J", "K", "L", "L14",
	"M", "M13", "M14", "M15", "M16", "M17", "M18", "N"}
