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
// And a program that embeds the package may also build a Chain itself, from
// any Func and Logics.
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
