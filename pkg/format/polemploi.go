package format

import (
	"bytes"
	"fmt"

	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// Names of the built-in formats.
const (
	// NamePoleEmploi is the default format: the historic format_job, field
	// for field.
	NamePoleEmploi = "pole_emploi"
	// NameFormatJob is the historic connector's name, an alias of
	// NamePoleEmploi.
	NameFormatJob = "format_job"
	// NameRich is the format that also maps what the historic one drops.
	NameRich = "rich"
)

// Fixed parts of the historic format.
const (
	tagPrefix           = "pole_emploi_"
	companySectionName  = "pole_emploi_company_description"
	companySectionTitle = "Company Description"
)

// historicTags are the tags of the historic format, in their order. Each
// takes its value from one of the offer fields gathered by offerFields.
var historicTags = [...]string{
	tagPrefix + "romeCode",
	tagPrefix + "romeLibelle",
	tagPrefix + "appellationLibelle",
	tagPrefix + "contractNature",
	tagPrefix + "contractType",
	tagPrefix + "experience",
	tagPrefix + "salary",
	tagPrefix + "working_hours",
	tagPrefix + "qualification",
	tagPrefix + "secteurActivite",
	tagPrefix + "contact-name",
	tagPrefix + "contact-email",
	tagPrefix + "contact-phone",
}

// offerFields holds the top-level fields of an offer that the built-in
// formats read, each the last occurrence of its key (nil when absent).
type offerFields struct {
	top          rawValue // the whole offer
	id           string   // may alias the offer: copy it into the job
	intitule     rawValue
	description  rawValue
	created      rawValue
	updated      rawValue
	lieu         rawValue
	entreprise   rawValue
	contact      rawValue
	salaire      rawValue
	appellation  rawValue // appellationlibelle, the API's real key
	appellationC rawValue // appellationLibelle, the key the historic code read
	// historic holds the offer values of the tags whose value is a plain
	// top-level field, indexed like historicTags (nil for the others).
	historic [len(historicTags)]rawValue
}

// Indexes in historicTags of the tags that offerFields.historic does not fill
// from a top-level key.
const (
	tagAppellation  = 2
	tagSalary       = 6
	tagContactName  = 10
	tagContactEmail = 11
	tagContactPhone = 12
)

// gather checks that offer is a JSON object with an id and reads its
// top-level fields in one pass. The id is francetravail.Offer.ID's: a
// non-empty string, or a failure wrapping francetravail.ErrNoID. Of a key
// given twice, the last counts, as in encoding/json and Python.
func gather(offer francetravail.Offer, f *offerFields) error {
	var id rawValue
	ids := 0
	top, err := scanObject(offer, func(k []byte, v rawValue) {
		switch string(k) {
		case "id":
			id = v
			ids++
		case "intitule":
			f.intitule = v
		case "description":
			f.description = v
		case "dateCreation":
			f.created = v
		case "dateActualisation":
			f.updated = v
		case "lieuTravail":
			f.lieu = v
		case "entreprise":
			f.entreprise = v
		case "contact":
			f.contact = v
		case "salaire":
			f.salaire = v
		case "appellationlibelle":
			f.appellation = v
		case "appellationLibelle":
			f.appellationC = v
		case "romeCode":
			f.historic[0] = v
		case "romeLibelle":
			f.historic[1] = v
		case "natureContrat":
			f.historic[3] = v
		case "typeContratLibelle":
			f.historic[4] = v
		case "experienceLibelle":
			f.historic[5] = v
		case "dureeTravailLibelle":
			f.historic[7] = v
		case "qualificationLibelle":
			f.historic[8] = v
		case "secteurActiviteLibelle":
			f.historic[9] = v
		}
	})
	if err != nil {
		return fmt.Errorf("%w: %w", francetravail.ErrNoID, err)
	}
	switch {
	case id.kind() != kindString:
		return francetravail.ErrNoID
	case ids > 1 || bytes.IndexByte(id, '\\') >= 0:
		// A repeated or escaped id (real ids never are): take
		// francetravail's reading, so that the job's reference is the
		// offer's id for every stage of the pipeline.
		if f.id, err = offer.ID(); err != nil {
			return err
		}
	default:
		f.id = unsafeString(id[1 : len(id)-1])
	}
	if f.id == "" {
		return francetravail.ErrNoID
	}
	f.top = top
	return nil
}

// PoleEmploi is the default format ("pole_emploi", alias "format_job"): the
// historic connector's format_job, field for field, as specified in
// format_job.md. The job has exactly nine keys: name, reference, created_at,
// updated_at, location {lat, lng, text}, url (always null), summary, sections
// and tags (13 tags in a fixed order, null values kept).
//
// It differs from the historic code in one deliberate fix: the
// pole_emploi_appellationLibelle tag reads the API's key
// "appellationlibelle" (lowercase l), falling back to "appellationLibelle"
// when that is absent or null. Where the historic code raised, it formats: a
// null or non-object contact, salaire, entreprise or lieuTravail is treated as
// absent, a non-string libelle or codePostal is left out of the location
// text, and a latitude or longitude that is not a number or a numeric string
// is null.
//
// Other values are copied verbatim, whatever their JSON type. An offer that is
// not a JSON object or has no non-empty string id fails with an error wrapping
// francetravail.ErrNoID. PoleEmploi never panics and is safe for concurrent
// use.
func PoleEmploi(offer francetravail.Offer) (hrflow.Job, error) {
	var f offerFields
	if err := gather(offer, &f); err != nil {
		return nil, err
	}
	var c copier
	c.buf.Grow(f.size())
	return poleEmploiJob(&c, &f, 0)
}

// size bounds the bytes of the strings that poleEmploiJob copies: the text
// of the fields it reads (a string is never longer unescaped than escaped).
func (f *offerFields) size() int {
	n := len(f.id) + len(f.intitule) + len(f.description) + len(f.created) + len(f.updated) +
		len(f.lieu) + len(f.entreprise) + len(f.contact) + len(f.salaire) +
		len(f.appellation) + len(f.appellationC)
	for _, v := range f.historic {
		n += len(v)
	}
	return n
}

// poleEmploiJob builds the historic job from gathered fields.
func poleEmploiJob(c *copier, f *offerFields, moreTags int) (hrflow.Job, error) {
	job := hrflow.Job{
		"name":       c.copy("intitule", f.intitule),
		"reference":  c.str(f.id),
		"created_at": c.copy("dateCreation", f.created),
		"updated_at": c.copy("dateActualisation", f.updated),
		"location":   location(c, f.lieu.object()),
		"url":        nil,
		"summary":    c.copy("description", f.description),
		"sections":   companySections(c, f.entreprise.object()),
		"tags":       historicTagValues(c, f, moreTags),
	}
	if c.err != nil {
		return nil, c.err
	}
	return job, nil
}

// location builds {lat, lng, text} from lieuTravail (nil when absent).
func location(c *copier, lieu rawValue) map[string]any {
	if lieu == nil {
		return map[string]any{"lat": nil, "lng": nil, "text": ""}
	}
	var lat, lng, libelle, postal rawValue
	walkObject(lieu, 0, 0, func(k []byte, v rawValue) {
		switch string(k) {
		case "latitude":
			lat = v
		case "longitude":
			lng = v
		case "libelle":
			libelle = v
		case "codePostal":
			postal = v
		}
	})
	text, code := libelle.view(), postal.view()
	switch {
	case text == "":
		text = c.str(code)
	case code == "":
		text = c.str(text)
	default:
		text = c.join(text, " ", code)
	}
	return map[string]any{"lat": coordinate(lat), "lng": coordinate(lng), "text": text}
}

// companySections returns the company description section when entreprise
// has a "description" key, even a null one, and an empty list otherwise.
func companySections(c *copier, entreprise rawValue) []any {
	desc := entreprise.get("description")
	if desc == nil {
		return []any{}
	}
	return []any{map[string]any{
		"name":        companySectionName,
		"title":       companySectionTitle,
		"description": c.copy("entreprise.description", desc),
	}}
}

// historicTagValues returns the 13 historic tags, in order, with room for
// more tags.
func historicTagValues(c *copier, f *offerFields, more int) []Tag {
	vals := f.historic
	vals[tagAppellation] = f.appellation
	if k := f.appellation.kind(); k == kindAbsent || k == kindNull {
		vals[tagAppellation] = f.appellationC
	}
	vals[tagSalary] = f.salaire.object().get("libelle")
	if contact := f.contact.object(); contact != nil {
		walkObject(contact, 0, 0, func(k []byte, v rawValue) {
			switch string(k) {
			case "nom":
				vals[tagContactName] = v
			case "courriel":
				vals[tagContactEmail] = v
			case "telephone":
				vals[tagContactPhone] = v
			}
		})
	}
	tags := make([]Tag, len(historicTags), len(historicTags)+more)
	for i, name := range historicTags {
		tags[i] = Tag{Name: name, Value: c.copy(name, vals[i])}
	}
	return tags
}

// Tag is one entry of a job's "tags": the built-in formats fill "tags" with a
// []Tag (an hrflow.Tag), which encodes as the [{"name", "value"}] list HrFlow
// expects, and much faster than a list of maps. A job that a jq program made
// or changed holds plain JSON values instead ([]any of map[string]any): a Go
// logic that runs after a jq logic should accept both.
type Tag = hrflow.Tag
