package format

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// sharedEnv names the environment variable that points at the shared
// directory (the one holding fixtures/) when it is not an ancestor's sibling.
const sharedEnv = "PULLJOBS_SHARED"

// fixtureDir returns the directory of the France Travail fixtures, which the
// project reads but never ships: from $PULLJOBS_SHARED, or from a "shared"
// directory beside the working directory or one of its ancestors. It skips
// the test when there is none.
func fixtureDir(t testing.TB) string {
	t.Helper()
	const sub = "fixtures/francetravail"
	if dir := os.Getenv(sharedEnv); dir != "" {
		if d := filepath.Join(dir, sub); isDir(d) {
			return d
		}
		t.Skipf("$%s=%s has no %s: skipping the test on real offers", sharedEnv, dir, sub)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Skipf("no working directory (%v): skipping the test on real offers", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if d := filepath.Join(dir, "shared", sub); isDir(d) {
			return d
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	t.Skipf("no shared/%s beside %s or its parents, and $%s unset: skipping the test on real offers (they are third-party data the project does not ship)", sub, wd, sharedEnv)
	return ""
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// readFixtureLines returns the non-blank lines of a fixture file.
func readFixtureLines(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			lines = append(lines, bytes.Clone(sc.Bytes()))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read fixture %s: %v", path, err)
	}
	return lines
}
