//go:build !race

package francetravail_test

const raceEnabled = false
