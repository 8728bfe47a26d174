package format

import (
	"github.com/valyala/fastjson"

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
	id           string
	intitule     *fastjson.Value
	description  *fastjson.Value
	created      *fastjson.Value
	updated      *fastjson.Value
	lieu         *fastjson.Value
	entreprise   *fastjson.Value
	contact      *fastjson.Value
	salaire      *fastjson.Value
	appellation  *fastjson.Value // appellationlibelle, the API's real key
	appellationC *fastjson.Value // appellationLibelle, the key the historic code read
	// historic holds the offer values of the tags whose value is a plain
	// top-level field, indexed like historicTags (nil for the others).
	historic [len(historicTags)]*fastjson.Value
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

// gather reads the top-level fields of o in one pass.
func gather(o *fastjson.Object, id string) *offerFields {
	f := &offerFields{id: id}
	o.Visit(func(k []byte, v *fastjson.Value) {
		switch string(k) {
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
	return f
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
	p := parsers.Get()
	defer parsers.Put(p)
	o, id, err := parseOffer(p, offer)
	if err != nil {
		return nil, err
	}
	return poleEmploiJob(newCopier(len(offer)), gather(o, id))
}

// poleEmploiJob builds the historic job from gathered fields.
func poleEmploiJob(c *copier, f *offerFields) (hrflow.Job, error) {
	job := hrflow.Job{
		"name":       c.copy("intitule", f.intitule),
		"reference":  f.id,
		"created_at": c.copy("dateCreation", f.created),
		"updated_at": c.copy("dateActualisation", f.updated),
		"location":   location(c, object(f.lieu)),
		"url":        nil,
		"summary":    c.copy("description", f.description),
		"sections":   companySections(c, object(f.entreprise)),
		"tags":       historicTagValues(c, f),
	}
	if c.err != nil {
		return nil, c.err
	}
	return job, nil
}

// location builds {lat, lng, text} from lieuTravail (nil when absent).
func location(c *copier, lieu *fastjson.Object) map[string]any {
	if lieu == nil {
		return map[string]any{"lat": nil, "lng": nil, "text": ""}
	}
	var lat, lng, libelle, postal *fastjson.Value
	lieu.Visit(func(k []byte, v *fastjson.Value) {
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
	text, code := view(libelle), view(postal)
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
func companySections(c *copier, entreprise *fastjson.Object) []any {
	desc := get(entreprise, "description")
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
// the rich format's extra tags.
func historicTagValues(c *copier, f *offerFields) []Tag {
	vals := f.historic
	vals[tagAppellation] = f.appellation
	if vals[tagAppellation] == nil || vals[tagAppellation].Type() == fastjson.TypeNull {
		vals[tagAppellation] = f.appellationC
	}
	vals[tagSalary] = get(object(f.salaire), "libelle")
	if contact := object(f.contact); contact != nil {
		contact.Visit(func(k []byte, v *fastjson.Value) {
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
	tags := make([]Tag, len(historicTags), len(historicTags)+richTagRoom)
	for i, name := range historicTags {
		tags[i] = Tag{Name: name, Value: c.copy(name, vals[i])}
	}
	return tags
}

// Tag is one entry of a job's "tags": the built-in formats fill "tags" with a
// []Tag, which encodes as the [{"name", "value"}] list HrFlow expects and
// several times faster than maps do. Value is a JSON value as decoded by
// encoding/json into an any (nil for null). Output of jq programs holds plain
// maps instead: a Go logic that reads tags should accept both, or use
// TagValue.
type Tag struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}
