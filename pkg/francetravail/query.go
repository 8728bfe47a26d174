package francetravail

import (
	"errors"
	"fmt"
	"strings"
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
// configuration decodes straight into it. The rule of each parameter is in
// SearchParams.
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
	// Domaine takes comma-separated codes of the domaines referential.
	Domaine string `json:"domaine,omitempty" yaml:"domaine,omitempty"`
	// CodeROME takes up to 200 comma-separated ROME codes such as "M1805".
	CodeROME string `json:"codeROME,omitempty" yaml:"codeROME,omitempty"`
	// Theme takes comma-separated numeric codes of the themes referential.
	Theme string `json:"theme,omitempty" yaml:"theme,omitempty"`
	// Appellation takes comma-separated numeric codes of the appellations
	// referential.
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
	// TempsPlein filters on full-time work (true) or not (false).
	TempsPlein *bool `json:"tempsPlein,omitempty" yaml:"tempsPlein,omitempty"`
	// Commune takes up to 5 comma-separated INSEE commune codes.
	Commune string `json:"commune,omitempty" yaml:"commune,omitempty"`
	// Distance in km around Commune (the API's default is 10; 0 is the commune
	// only). The API reads it only with Commune, so Values drops it otherwise:
	// the seed's default of 10 then changes nothing.
	Distance *int `json:"distance,omitempty" yaml:"distance,omitempty"`
	// Departement takes up to 5 comma-separated codes ("01", "2A", "971").
	Departement string `json:"departement,omitempty" yaml:"departement,omitempty"`
	// InclureLimitrophes adds the départements bordering Departement.
	InclureLimitrophes *bool `json:"inclureLimitrophes,omitempty" yaml:"inclureLimitrophes,omitempty"`
	// Region takes codes of the regions referential.
	Region string `json:"region,omitempty" yaml:"region,omitempty"`
	// PaysContinent takes numeric codes of the pays or continents
	// referentials.
	PaysContinent string `json:"paysContinent,omitempty" yaml:"paysContinent,omitempty"`
	// NiveauFormation takes codes of the niveauxFormations referential.
	NiveauFormation string `json:"niveauFormation,omitempty" yaml:"niveauFormation,omitempty"`
	// Permis takes codes of the permis (driving licences) referential.
	Permis string `json:"permis,omitempty" yaml:"permis,omitempty"`
	// MotsCles takes up to 7 comma-separated keywords of 2 characters or
	// more; the API ANDs them.
	MotsCles string `json:"motsCles,omitempty" yaml:"motsCles,omitempty"`
	// SalaireMin is the lowest salary, in euros per PeriodeSalaire; the two
	// go together.
	SalaireMin *float64 `json:"salaireMin,omitempty" yaml:"salaireMin,omitempty"`
	// PeriodeSalaire is the period of SalaireMin: "M" (month), "A" (year),
	// "H" (hour) or "C" (cachet).
	PeriodeSalaire string `json:"periodeSalaire,omitempty" yaml:"periodeSalaire,omitempty"`
	// AccesTravailleurHandicape keeps offers open to disabled workers.
	AccesTravailleurHandicape *bool `json:"accesTravailleurHandicape,omitempty" yaml:"accesTravailleurHandicape,omitempty"`
	// OffresMRS keeps offers recruiting by simulation (méthode de
	// recrutement par simulation).
	OffresMRS *bool `json:"offresMRS,omitempty" yaml:"offresMRS,omitempty"`
	// OffresManqueCandidats keeps offers of trades short of candidates.
	OffresManqueCandidats *bool `json:"offresManqueCandidats,omitempty" yaml:"offresManqueCandidats,omitempty"`
	// EntreprisesAdaptees keeps offers of entreprises adaptées.
	EntreprisesAdaptees *bool `json:"entreprisesAdaptees,omitempty" yaml:"entreprisesAdaptees,omitempty"`
	// EmployeursHandiEngages keeps offers of employers committed to
	// disabled workers.
	EmployeursHandiEngages *bool `json:"employeursHandiEngages,omitempty" yaml:"employeursHandiEngages,omitempty"`
	// GrandDomaine is one of A B C C15 D E F G H I J K L L14 M M13 … M18 N.
	GrandDomaine string `json:"grandDomaine,omitempty" yaml:"grandDomaine,omitempty"`
	// PublieeDepuis is "1", "3", "7", "14" or "31" (days).
	PublieeDepuis string `json:"publieeDepuis,omitempty" yaml:"publieeDepuis,omitempty"`
	// MinCreationDate is the earliest creation date, in CreationDateLayout
	// ("2025-08-01T00:00:00Z"); it goes with MaxCreationDate and must not
	// be after it.
	MinCreationDate string `json:"minCreationDate,omitempty" yaml:"minCreationDate,omitempty"`
	// MaxCreationDate is the latest creation date, in CreationDateLayout;
	// it goes with MinCreationDate.
	MaxCreationDate string `json:"maxCreationDate,omitempty" yaml:"maxCreationDate,omitempty"`
	// Partenaires takes comma-separated partner codes; it goes with
	// ModeSelectionPartenaires.
	Partenaires string `json:"partenaires,omitempty" yaml:"partenaires,omitempty"`
	// ModeSelectionPartenaires is "INCLUS" (only the offers of Partenaires)
	// or "EXCLU" (all but theirs); it goes with Partenaires.
	ModeSelectionPartenaires string `json:"modeSelectionPartenaires,omitempty" yaml:"modeSelectionPartenaires,omitempty"`
	// DureeHebdo is "0" (unspecified), "1" (full time) or "2" (part time).
	DureeHebdo string `json:"dureeHebdo,omitempty" yaml:"dureeHebdo,omitempty"`
	// DureeHebdoMin is the fewest weekly hours as an HHMM number (3530 is
	// 35 h 30); Values sends it on four digits. At most DureeHebdoMax.
	DureeHebdoMin *int `json:"dureeHebdoMin,omitempty" yaml:"dureeHebdoMin,omitempty"`
	// DureeHebdoMax is the most weekly hours, as DureeHebdoMin.
	DureeHebdoMax *int `json:"dureeHebdoMax,omitempty" yaml:"dureeHebdoMax,omitempty"`
	// DureeContratMin is the shortest contract in months, 0 to 99 (decimals
	// allowed); at most DureeContratMax.
	DureeContratMin *float64 `json:"dureeContratMin,omitempty" yaml:"dureeContratMin,omitempty"`
	// DureeContratMax is the longest contract in months, 0 to 99.
	DureeContratMax *float64 `json:"dureeContratMax,omitempty" yaml:"dureeContratMax,omitempty"`
}

// ValidationError is one rule of the API that a Query breaks.
type ValidationError struct {
	// Field is the API's parameter name.
	Field string
	// Value is the offending value as it would be sent; "" for a missing
	// one.
	Value string
	// Rule says what the API expects, in French as the API's own messages.
	Rule string
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
