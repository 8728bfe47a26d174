//go:build race

package francetravail_test

// raceEnabled: the race detector slows byte-level work about tenfold, so
// the largest tests shrink their corpora (still past the cap) under -race.
const raceEnabled = true
