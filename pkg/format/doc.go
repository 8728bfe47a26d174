// Package format turns France Travail offers into HrFlow jobs, and filters
// them: the action parameters format and logics of pull_jobs.
//
// A run compiles a Spec once (Spec.Compile), into a Chain that formats each
// raw offer and runs the logics on the job (Chain.Apply). Apply reports what
// became of the offer as an Outcome whose name is the run report's counter:
// format_failure, logics_discard (Discarded) or logics_failure.
//
// # Three ways to format
//
// By name, a built-in format: "pole_emploi", the default (also called
// "format_job"), reproduces the historic connector's format_job field for
// field; "rich" maps everything else the offer says (skills, languages,
// driving licences, salary range, URL, more tags…). In a configuration:
//
//	action_parameters:
//	  format: rich
//
// In jq, a program that builds the job from the offer, compiled once per run
// with gojq:
//
//	action_parameters:
//	  format:
//	    jq: '{name: .intitule, reference: .id, summary: .description, tags: [{name: "rome", value: .romeCode}]}'
//
// In Go, a Func registered by the binary that embeds the pipeline, then named
// like a built-in:
//
//	func init() {
//		format.Register("with_logo", func(o francetravail.Offer) (hrflow.Job, error) {
//			job, err := format.Rich(o)
//			if err == nil {
//				job["picture"] = "https://example.com/logo.png"
//			}
//			return job, err
//		})
//	}
//
// # The built-in formats
//
// pole_emploi (PoleEmploi) is the historic format_job field for field: nine
// keys, 13 tags in order, null values kept. One deliberate fix: the
// pole_emploi_appellationLibelle tag carries the offer's appellationlibelle,
// which the historic code never found.
//
// rich (Rich) keeps the nine keys of pole_emploi with their meaning, url
// aside, and adds what else the offer says. Text fields are null and lists
// empty when the offer has nothing for them: an offer missing any field still
// formats. Field by field, from the offer:
//
//   - name, reference, created_at, updated_at, location, summary, sections:
//     as pole_emploi.
//   - url: origineOffre.urlOrigine, the offer's page on France Travail.
//   - skills: competences[].libelle as {name, type: "hard", value: exigence};
//     outilsBureautiques[] as {name, type: "hard", value: null};
//     qualitesProfessionnelles[].libelle as {name, type: "soft", value: null}.
//     The exigence is the offer's: "E" required, "S" desired, or null. Each
//     name and type once.
//   - languages: langues[] as {name: libelle, value: exigence}.
//   - certifications: permis[] (driving licences) as {name: libelle, value:
//     exigence}.
//   - requirements: formations[], one a line, "<niveauLibelle> en
//     <domaineLibelle>", then " (<commentaire>)" when the comment adds
//     something: "Bac+2 ou équivalents en Gestion (BTS MCO apprécié)".
//   - responsibilities: qualitesProfessionnelles[].description, one a line.
//   - culture: entreprise.description.
//   - benefits: salaire.complement1, complement2 and
//     listeComplements[].libelle, one a line, each once: "Primes",
//     "Complémentaire santé".
//   - ranges_float: the salary parsed from salaire.libelle, [{name: "salary",
//     value_min, value_max, unit}], or [] when the label does not parse
//     (never a failure); see below.
//   - tags: the 13 historic tags; then, always present (null when absent),
//     pole_emploi_company_name ← entreprise.nom, _contract_code ←
//     typeContrat, _experience_code ← experienceExige, _qualification_code ←
//     qualificationCode, _naf_code ← codeNAF, _working_time ←
//     dureeTravailLibelleConverti, _travel ← deplacementLibelle, _positions ←
//     nombrePostes, _disability_accessible ← accessibleTH, _apprenticeship ←
//     alternance, _adapted_company ← entrepriseAdaptee,
//     _disability_engaged_employer ← employeurHandiEngage, _hard_to_fill ←
//     offresManqueCandidats, _company_size ← trancheEffectifEtab,
//     _application_url ← contact.urlPostulation, _origin ←
//     origineOffre.origine ("1" France Travail, "2" partner); then one
//     pole_emploi_partner per origineOffre.partenaires[].nom, one
//     pole_emploi_schedule per contexteTravail.horaires[], one
//     pole_emploi_working_condition per contexteTravail.conditionsExercice[].
//     Values are copied as the offer gives them (strings, numbers, booleans).
//   - metadatas: pole_emploi_contact-coordinates1..3 ←
//     contact.coordonnees1..3, _contact-comment ← contact.commentaire,
//     _contact-recruiter_url ← contact.urlRecruteur, _agency-phone and
//     _agency-email ← agence.telephone and agence.courriel, _salary-comment ←
//     salaire.commentaire, _experience-comment ← experienceCommentaire,
//     _complement_exercice ← complementExercice; only those the offer has as
//     non-blank strings, trimmed.
//
// The salary labels ranges_float reads, and the range each gives:
//
//	Mensuel de 2000.0 Euros à 2300.0 Euros sur 12.0 mois   2000–2300 EUR/month
//	Annuel de 22000,00 Euros                                22000–22000 EUR/year
//	Horaire de 11,65 Euros à 11,65 Euros                    11.65–11.65 EUR/hour
//	Cachet de 150 Euros                                     150–150 EUR/performance
//	De 1800,00 Euros à 2100,00 Euros (partner offers)       1800–2100 EUR (no period given)
//	Annuel de, Selon profil, anything else                  no range
//
// Decimals take a point or a comma; a single amount gives min = max; "sur N
// mois" stays in the pole_emploi_salary tag.
//
// # Three ways to filter
//
// Logics run in order on the formatted job; each returns the job (maybe
// changed) to keep it, or drops it. No logic is built in: a jq program drops
// the job when it outputs null or false or nothing, and replaces it with the
// object it outputs:
//
//	action_parameters:
//	  logics:
//	    - name: drop_interim
//	      jq: 'select(any(.tags[]; .name == "pole_emploi_contractType" and (.value // "" | startswith("Intérim"))) | not)'
//	    - name: uppercase_title
//	      jq: '.name |= ascii_upcase'
//
// A Go logic is registered by name and referred to with func:
//
//	func init() {
//		format.RegisterLogic("paris_only", func(j hrflow.Job) (hrflow.Job, bool, error) {
//			location, _ := j["location"].(map[string]any)
//			text, _ := location["text"].(string)
//			return j, strings.HasPrefix(text, "75 - "), nil
//		})
//	}
//
//	logics:
//	  - func: paris_only
//
// Logics see the formatted job, each what the previous one returned; a
// discarded offer counts as logics_discard, not a failure, and its job, if on
// the board, is archived by the sync. A jq program sees no environment
// variable and gets 2 s per job. Go formats and logics must be safe for
// concurrent use; a panic in one fails that offer only.
//
// And a program that embeds the package may also build a Chain itself, from
// any Func and Logics:
//
//	chain := &format.Chain{Format: format.PoleEmploi, Logics: []format.Logic{myLogic}}
//	job, outcome, err := chain.Apply(offer) // outcome: Kept, Discarded, FormatFailed, LogicsFailed
//
// # Trying a format
//
// "formatter format" applies a configuration's format and logics to offers
// on stdin (NDJSON, a JSON array, or a whole search response as the API
// returns it) and prints one job per line, exactly what the worker would
// push. Discarded offers are left out; failures go to stderr as "offer <id>:
// <outcome>: <message>". It exits 0 when all succeeded, 3 when some failed, 2
// on a bad configuration:
//
//	go run ./cmd/formatter format --config pulljobs.yaml < offers.ndjson > jobs.ndjson
//	go run ./cmd/formatter format --format rich < search-response.json | jq -c '{reference, ranges_float}'
//
// # Jobs
//
// A job is an hrflow.Job, a map of JSON values: nil, bool, float64 (or int,
// or json.Number for numbers out of float64 range), string, []any and
// map[string]any, plus one exception for speed: the built-in formats store
// "tags" as a []Tag. Jobs made by jq programs hold plain JSON values only.
// Apply makes sure a kept job's "reference" is the offer id.
//
// # Failures
//
// An offer without an id fails whatever the format: it cannot be referenced.
// A jq program's runtime error, or a Go function's error or panic, fails
// that offer only, with a message naming the offer and the step. A Spec that
// does not compile (unknown name, jq syntax error, a logic with both jq and
// func) fails Compile with a *SpecError: a configuration error, reported
// before any network call.
package format
