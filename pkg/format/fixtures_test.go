package format

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// sharedEnv names the environment variable that points at the shared
// directory (the one holding fixtures/) when it is not an ancestor's sibling.
const sharedEnv = "PULLJOBS_SHARED"

// fixtureDir returns the directory of the France Travail fixtures, which the
// project reads but never ships (see findFixtures); it skips the test when
// there is none.
func fixtureDir(t testing.TB) string {
	t.Helper()
	dir, why := findFixtures()
	if dir == "" {
		t.Skipf("%s: skipping the test on real offers (third-party data the project does not ship)", why)
	}
	return dir
}

// findFixtures looks for the fixtures in $PULLJOBS_SHARED, else in a
// "shared" directory beside the working directory or one of its ancestors.
// It returns "" and the reason when there are none.
func findFixtures() (dir, why string) {
	const sub = "fixtures/francetravail"
	if shared := os.Getenv(sharedEnv); shared != "" {
		if d := filepath.Join(shared, sub); isDir(d) {
			return d, ""
		}
		return "", fmt.Sprintf("$%s=%s has no %s", sharedEnv, shared, sub)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Sprintf("no working directory (%v)", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if f := filepath.Join(d, "shared", sub); isDir(f) {
			return f, ""
		}
		if filepath.Dir(d) == d {
			return "", fmt.Sprintf("no shared/%s beside %s or its parents, and $%s unset", sub, wd, sharedEnv)
		}
	}
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
