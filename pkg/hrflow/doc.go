// Package hrflow is a client of the HrFlow.ai API for the calls pulljobs
// makes: jobs on a board (get, create, edit, archive, list) and text parsing,
// plus the upsert of one job that a run performs, and the enrichment of a job
// with the entities that text parsing finds.
//
// Every call waits for the configured Limiter, is retried through package
// retry when it fails for a reason that may pass (network errors, time-outs,
// 429 and 5xx answers, Retry-After honoured), is bounded by a per-attempt
// time-out, and obeys its context. Permanent failures come back as *APIError,
// which carries the API's message (never the secret) and matches the
// sentinel errors ErrNotFound, ErrReferenceExists, ErrBoardNotFound,
// ErrUnauthorized and ErrOverQuota with errors.Is.
//
// A call that keeps failing ends with an error wrapping retry.ErrExhausted
// and its last failure. Jobs read from the API are decoded as
// encoding/json decodes into map[string]any (numbers as float64). Entity
// offsets of text parsing count Unicode code points, as Python's
// text[start:end] does (UNVERIFIED: the API documents the Python slice).
//
// Package hrflowtest holds an emulator of the API for tests and the sandbox.
package hrflow
