// Package runstatus is the read side of pulljobs' runs: the names of the
// streams, subjects, buckets and headers the pipeline writes, the wire
// formats readers decode (an item's final record, a run's seal, its
// report, a board's lease), and the functions that read where runs stand
// (ListRuns, GetRun, ReadDeadLetters). The status page, the service's
// endpoints and `pulljobs status` read through it, without the API
// clients or the formats the run engine (pkg/pipeline) needs.
//
// Dependencies point one way:
//
//	cmd/*  ──►  service, statuspage, cli
//	              │          │
//	              ▼          ▼
//	          pipeline ──► runstatus ──► store
//	              └──────► boardindex ──► store
package runstatus

import "strings"

// Names of the streams, subjects, consumers and buckets. Subjects end with
// the run id, so that one fleet of workers serves many runs and boards and
// a run's records can be read on their own.
const (
	OffersStream     = "PULLJOBS_OFFERS"  // pulljobs.offers.<run>: raw offers, the record replay reads
	JobsStream       = "PULLJOBS_JOBS"    // pulljobs.jobs.<run>: formatted jobs, work for the pushers
	RecordsStream    = "PULLJOBS_RECORDS" // pulljobs.records.<run>: the final record of each item
	DeadLetterStream = "PULLJOBS_DLQ"     // pulljobs.dlq.<run>.<stage>: items that ended failed
	RunsBucket       = "pulljobs_runs"    // <run>.spec, .seal, .fetch, .index, .final, .report
	LeasesBucket     = "pulljobs_leases"  // <board>: the run that holds the board

	// The stages' consumers: each run has one at each stage, named by
	// RunConsumer.
	FormatterConsumer = "formatter"
	PusherConsumer    = "pusher"

	OffersSubjectPrefix     = "pulljobs.offers."  // + <run>
	JobsSubjectPrefix       = "pulljobs.jobs."    // + <run>
	RecordsSubjectPrefix    = "pulljobs.records." // + <run>
	DeadLetterSubjectPrefix = "pulljobs.dlq."     // + <run>.<stage>
	EventsSubjectPrefix     = "pulljobs.events."  // + <run>, core NATS: progress notes for waiting fetchers

	// Headers of the pipeline's messages; nats.Header keys are
	// case-sensitive.
	HeaderOfferID = "Pulljobs-Offer-Id"
	HeaderStage   = "Pulljobs-Stage"  // a dead letter's stage
	HeaderReason  = "Pulljobs-Reason" // a dead letter's reason
)

// RunConsumer names the durable consumer of a stage (FormatterConsumer on
// the offers, PusherConsumer on the jobs) for one run: each run has its
// own, so that the stage's workers serve the runs in flight in turn.
func RunConsumer(stage, run string) string { return stage + "-" + run }

// RunOfConsumer returns the run of the stage's consumer named name; ok is
// false for a name that is not one.
func RunOfConsumer(stage, name string) (run string, ok bool) {
	run, ok = strings.CutPrefix(name, stage+"-")
	return run, ok && ValidRunID(run)
}

// Keys of a run in the runs bucket.
func SpecKey(run string) string   { return run + ".spec" }
func SealKey(run string) string   { return run + ".seal" }
func FetchKey(run string) string  { return run + ".fetch" }
func IndexKey(run string) string  { return run + ".index" }
func FinalKey(run string) string  { return run + ".final" }
func ReportKey(run string) string { return run + ".report" }

// ValidRunID reports whether id can name a run (it becomes a subject token
// and a key).
func ValidRunID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
