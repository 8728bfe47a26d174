// Package francetravail is a client of France Travail's "Offres d'emploi v2"
// API (formerly Pôle emploi): the OAuth2 client-credentials token, the
// search of job offers, one offer by id, and the referentials.
//
// A Client is made from a Config by NewClient and is safe for concurrent
// use. Every call waits for the client's rate limiter, carries a cached
// bearer token, and is retried on 429, 5xx, resets and time-outs.
//
// Client.Search streams every offer matching a Query, each once: it pages
// through the results and, past the API's cap of MaxReachable results per
// query, splits the query into windows of creation date until each window
// is within the cap. Its memory does not grow with the number of offers but
// for a compact set of the ids seen (a few bytes an offer), so a
// nationwide sweep of a million offers runs in a few tens of megabytes.
// The Summary it returns counts what was fetched, the duplicates the API
// served, and what the cap left out.
//
// Query holds the search criteria under the API's own names. SearchParams
// is their contract as data (kind, pattern, enumeration, referential,
// bounds, pairs): Query.Validate checks a query against it without any
// call, and Query.Values writes the query string from it.
//
// Offers are kept as the raw JSON the API returned (Offer), unknown fields
// included, so that the rest of the pipeline carries them untouched.
//
// Package francetravailtest is an emulator of the API, held to the same
// contract, for tests and the sandbox.
package francetravail
