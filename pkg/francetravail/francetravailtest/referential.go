package francetravailtest

import (
	"net/http"
	"sort"
	"strings"

	"github.com/valyala/fastjson"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
)

// msgUnknownReferential answers a referential name the API does not serve
// (UNVERIFIED).
const msgUnknownReferential = "Le référentiel demandé n'existe pas."

// staticReferentials are small samples of the referentials the emulator
// neither filters on nor derives from its corpus.
var staticReferentials = map[string][]refEntry{
	francetravail.RefAppellations: {{Code: "10320", Libelle: "Boulanger / Boulangère"}, {Code: "38584", Libelle: "Serveur / Serveuse en restauration"}, {Code: "11573", Libelle: "Cuisinier / Cuisinière"}},
	francetravail.RefNafs:         {{Code: "56.10A", Libelle: "Restauration traditionnelle"}, {Code: "78.20Z", Libelle: "Activités des agences de travail temporaire"}, {Code: "84.11Z", Libelle: "Administration publique générale"}},
	francetravail.RefContinents:   {{Code: "01", Libelle: "Afrique"}, {Code: "02", Libelle: "Amérique"}, {Code: "03", Libelle: "Asie"}, {Code: "04", Libelle: "Europe"}, {Code: "05", Libelle: "Océanie"}},
	francetravail.RefDomaines:     {{Code: "G13", Libelle: "Hôtellerie - Restauration"}, {Code: "H23", Libelle: "Industrie - Travail du métal"}, {Code: "M16", Libelle: "Secrétariat et assistance"}},
	francetravail.RefLangues:      {{Code: "AL", Libelle: "Allemand"}, {Code: "AN", Libelle: "Anglais"}, {Code: "ES", Libelle: "Espagnol"}, {Code: "IT", Libelle: "Italien"}},
	francetravail.RefNiveauxFormations: {{Code: "AFS", Libelle: "Aucune formation scolaire"}, {Code: "CFG", Libelle: "4ème achevée"}, {Code: "NV5", Libelle: "CAP, BEP et équivalents"},
		{Code: "NV4", Libelle: "Bac ou équivalent"}, {Code: "NV3", Libelle: "Bac+2 ou équivalents"}, {Code: "NV2", Libelle: "Bac+3, Bac+4 ou équivalents"}, {Code: "NV1", Libelle: "Bac+5 et plus ou équivalents"}},
	francetravail.RefPays:              {{Code: "01", Libelle: "France"}, {Code: "05", Libelle: "Allemagne"}, {Code: "17", Libelle: "Suisse"}},
	francetravail.RefPermis:            {{Code: "B", Libelle: "B - Véhicule léger"}, {Code: "C", Libelle: "C - Poids lourd"}, {Code: "BE", Libelle: "BE - Véhicule léger attelé"}},
	francetravail.RefSecteursActivites: {{Code: "56", Libelle: "Restauration"}, {Code: "78", Libelle: "Activités liées à l'emploi"}, {Code: "85", Libelle: "Enseignement"}},
	francetravail.RefThemes:            {{Code: "1", Libelle: "Agriculture"}, {Code: "12", Libelle: "Hôtellerie - Restauration"}, {Code: "20", Libelle: "Santé"}},
}

func (e *Emulator) serveReferential(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var out []refEntry
	switch name {
	case francetravail.RefDepartements, francetravail.RefRegions, francetravail.RefTypesContrats, francetravail.RefNaturesContrats:
		out = francetravail.BuiltinReferential(name)
	case francetravail.RefMetiers, francetravail.RefCommunes:
		out = e.corpusReferential(name)
	default:
		var ok bool
		if out, ok = staticReferentials[name]; !ok {
			badRequest(w, msgUnknownReferential)
			return
		}
	}
	emulator.WriteJSON(w, http.StatusOK, out)
}

// corpusReferential derives metiers (ROME codes) or communes from the
// corpus, so that every code the filters can match is listed, and caches it
// with the search results.
func (e *Emulator) corpusReferential(name string) []refEntry {
	e.mu.Lock()
	c, ix, gen := e.corpus, e.ix, e.gen
	if r, ok := e.cache["referentiel/"+name]; ok {
		e.mu.Unlock()
		return r.ref
	}
	e.mu.Unlock()
	d := ix.rome
	if name == francetravail.RefCommunes {
		d = ix.commune
	}
	var out []refEntry
	var p fastjson.Parser
	for code, value := range d.names {
		if value == "" {
			continue
		}
		i := int(d.first[code])
		v, err := p.ParseBytes(c.Offer(i))
		if err != nil {
			continue
		}
		entry := refEntry{Code: value}
		if name == francetravail.RefMetiers {
			entry.Libelle = string(v.GetStringBytes("romeLibelle"))
		} else {
			lib := string(v.GetStringBytes("lieuTravail", "libelle"))
			if _, after, ok := strings.Cut(lib, " - "); ok {
				lib = after
			}
			entry.Libelle = lib
			entry.CodePostal = string(v.GetStringBytes("lieuTravail", "codePostal"))
			entry.CodeDepartement = c.Entry(i).Departement
		}
		out = append(out, entry)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Code < out[b].Code })
	e.mu.Lock()
	if e.gen == gen {
		e.cache["referentiel/"+name] = &result{ref: out}
	}
	e.mu.Unlock()
	return out
}
