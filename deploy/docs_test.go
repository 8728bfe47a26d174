package deploy_test

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/config"
)

// docs are the Markdown files of the repository: the README a user reads
// first, and those it sends them on to.
var docs = []string{"README.md", "deploy/README.md", "cmd/pulljobs/TESTING.md"}

// readmeMaxLines keeps the README readable in one sitting: what does not
// fit belongs in the files it links to.
const readmeMaxLines = 300

// TestDocLinks checks that every relative link of the Markdown files leads
// to a file of the repository, and every anchor to a heading of its file,
// so that a section moved or renamed does not leave a dead link behind.
func TestDocLinks(t *testing.T) {
	for _, doc := range docs {
		lines := readLines(t, filepath.Join(repoRoot, doc))
		if doc == "README.md" && len(lines) > readmeMaxLines {
			t.Errorf("README.md has %d lines, want at most %d: move the detail to the files it links to", len(lines), readmeMaxLines)
		}
		for _, l := range links(lines) {
			target, anchor, _ := strings.Cut(l.target, "#")
			path := filepath.Join(repoRoot, doc)
			if target != "" {
				path = filepath.Join(repoRoot, filepath.Dir(doc), target)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s:%d: link to %s: %v", doc, l.line, l.target, err)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(path, ".md") {
				t.Errorf("%s:%d: link to %s: an anchor in a file that is not Markdown", doc, l.line, l.target)
				continue
			}
			if !headings(readLines(t, path))[anchor] {
				t.Errorf("%s:%d: link to %s: no heading %q in %s", doc, l.line, l.target, anchor, filepath.Base(path))
			}
		}
	}
}

// TestExampleConfigListsEveryKey checks that deploy/pulljobs.example.yaml,
// the configuration's reference, names every key a configuration may hold,
// set or commented out.
func TestExampleConfigListsEveryKey(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "pulljobs.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	example := string(b)
	for section, keys := range configKeys(reflect.TypeFor[config.Config]()) {
		for _, key := range keys {
			// A key is written "key:" at the start of a line, maybe behind
			// "# " and a list's "- ".
			re := regexp.MustCompile(`(?m)^[ #-]*` + regexp.QuoteMeta(key) + `:`)
			if !re.MatchString(example) {
				t.Errorf("deploy/pulljobs.example.yaml does not document %s.%s", section, key)
			}
		}
	}
}

// configKeys returns the YAML keys of each section of a configuration.
func configKeys(t reflect.Type) map[string][]string {
	out := map[string][]string{}
	for _, f := range reflect.VisibleFields(t) {
		section := yamlName(f)
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		out[section] = fieldKeys(ft)
	}
	// action_parameters decodes itself: its keys are those of format.Spec
	// and of each logic.
	out[config.SectionAction] = []string{"format", "logics", "name", "jq", "func"}
	return out
}

// fieldKeys lists the YAML keys of a struct, inlined structs included.
func fieldKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if _, opts, _ := strings.Cut(f.Tag.Get("yaml"), ","); strings.Contains(opts, "inline") {
			keys = append(keys, fieldKeys(f.Type)...)
			continue
		}
		keys = append(keys, yamlName(f))
	}
	return keys
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

type link struct {
	line   int
	target string
}

var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// links returns the relative links of a Markdown file, outside code.
func links(lines []string) []link {
	var out []link
	inCode := false
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inCode = !inCode
			continue
		}
		if inCode {
			continue
		}
		for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			out = append(out, link{line: i + 1, target: target})
		}
	}
	return out
}

// headings returns the anchors of a Markdown file's headings, as GitHub
// makes them: lower case, spaces to hyphens, punctuation dropped.
func headings(lines []string) map[string]bool {
	out := map[string]bool{}
	inCode := false
	for _, line := range lines {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inCode = !inCode
			continue
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var b strings.Builder
		for _, r := range text {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 0x7f:
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}
