package deploy_test

import (
	"bufio"
	"debug/elf"
	"fmt"
	"go/version"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/mattn/go-shellwords"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// instruction is one instruction of a Dockerfile, its continuation lines
// joined.
type instruction struct {
	keyword string   // upper case: FROM, RUN, COPY…
	flags   []string // --mount=…, --from=…, --platform=…
	args    string
	line    int
}

// stage is a FROM and the instructions up to the next.
type stage struct {
	name, image  string
	instructions []instruction
}

// readDockerfile reads the stages of a Dockerfile. It knows what
// deploy/Dockerfile uses (comments, continuation lines, instruction flags),
// not every corner of the format (heredocs, escape directives).
func readDockerfile(path string) ([]stage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		stages  []stage
		pending string
		start   int
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if pending == "" {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending += cont + " "
			continue
		}
		in := parseInstruction(pending+line, start)
		pending = ""
		if in.keyword == "FROM" {
			fields := strings.Fields(in.args)
			s := stage{image: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.name = fields[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if in.keyword == "ARG" {
				continue
			}
			return nil, fmt.Errorf("%s:%d: %s before FROM", path, in.line, in.keyword)
		}
		last := &stages[len(stages)-1]
		last.instructions = append(last.instructions, in)
	}
	if pending != "" {
		return nil, fmt.Errorf("%s: ends in a continuation line", path)
	}
	return stages, sc.Err()
}

func parseInstruction(text string, line int) instruction {
	keyword, rest, _ := strings.Cut(text, " ")
	in := instruction{keyword: strings.ToUpper(keyword), line: line}
	rest = strings.TrimSpace(rest)
	for strings.HasPrefix(rest, "--") {
		flag, after, _ := strings.Cut(rest, " ")
		in.flags = append(in.flags, flag)
		rest = strings.TrimSpace(after)
	}
	in.args = rest
	return in
}

// goBuild returns the build stage and its RUN instruction that runs go
// build.
func goBuild(stages []stage) (*stage, *instruction, error) {
	for i := range stages {
		for j := range stages[i].instructions {
			in := &stages[i].instructions[j]
			if in.keyword == "RUN" && strings.Contains(in.args, "go build") {
				return &stages[i], in, nil
			}
		}
	}
	return nil, nil, fmt.Errorf("no RUN of go build")
}

// buildArgs are the values BuildKit gives the build arguments that the go
// build line uses, for a build of this machine's architecture.
var buildArgs = map[string]string{"TARGETOS": "linux", "TARGETARCH": runtime.GOARCH}

// splitGoBuild splits the go build command line of a RUN into its
// environment assignments (build arguments expanded) and its argv.
func splitGoBuild(run string) (env, argv []string, err error) {
	words, err := shellwords.Parse(run)
	if err != nil {
		return nil, nil, err
	}
	for len(words) > 0 && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(words[0]) {
		var missing error
		env = append(env, os.Expand(words[0], func(name string) string {
			v, ok := buildArgs[name]
			if !ok {
				missing = fmt.Errorf("go build line: unknown variable $%s", name)
			}
			return v
		}))
		if missing != nil {
			return nil, nil, missing
		}
		words = words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		return nil, nil, fmt.Errorf("want VAR=value… go build …, got %q", run)
	}
	return env, words, nil
}

// dockerfileBuild returns the Dockerfile's go build command, run from the
// repository root (the build context) with its output redirected to out.
func dockerfileBuild(dockerfile, out string) (*exec.Cmd, error) {
	stages, err := readDockerfile(dockerfile)
	if err != nil {
		return nil, err
	}
	_, run, err := goBuild(stages)
	if err != nil {
		return nil, err
	}
	env, argv, err := splitGoBuild(run.args)
	if err != nil {
		return nil, err
	}
	i := slices.Index(argv, "-o")
	if i < 0 || i+1 >= len(argv) {
		return nil, fmt.Errorf("go build line: no -o")
	}
	argv[i+1] = out + string(filepath.Separator)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)
	return cmd, nil
}

// commands lists the binaries of the repository: the directories of cmd/.
func commands(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(repoRoot, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestDockerfileStages(t *testing.T) {
	stages, err := readDockerfile(filepath.Join(repoRoot, "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range stages {
		if !names[s.image] {
			checkPinned(t, "Dockerfile FROM", s.image)
		}
		names[s.name] = true
		if strings.Contains(s.image, ":debug") && !slices.ContainsFunc(s.instructions, func(in instruction) bool {
			return in.keyword == "ENTRYPOINT" && strings.TrimSpace(in.args) == "[]"
		}) {
			t.Errorf("stage %s FROM %s: no ENTRYPOINT []: the debug base's busybox shell would take the command for a script", s.name, s.image)
		}
	}

	build, _, err := goBuild(stages)
	if err != nil {
		t.Fatal(err)
	}
	repo, tag, _ := strings.Cut(build.image, ":")
	if repo != "golang" {
		t.Errorf("build stage FROM %s: want the golang image", build.image)
	}
	goMod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(goMod)
	if want == nil {
		t.Fatal("go.mod has no go line")
	}
	builder := "go" + strings.SplitN(tag, "-", 2)[0]
	if !version.IsValid(builder) || version.Compare(builder, "go"+string(want[1])) < 0 {
		t.Errorf("build stage FROM %s: its Go must be at least go.mod's go %s", build.image, want[1])
	}

	final := stages[len(stages)-1]
	if !regexp.MustCompile(`^gcr\.io/distroless/static-debian\d+:nonroot(@sha256:[0-9a-f]{64})?$`).MatchString(final.image) {
		t.Errorf("final stage FROM %s: want distroless static, nonroot", final.image)
	}
	var user, path string
	copied := false
	for _, in := range final.instructions {
		switch in.keyword {
		case "USER":
			user = in.args
		case "ENV":
			if v, ok := strings.CutPrefix(in.args, "PATH="); ok {
				path = v
			}
		case "COPY":
			copied = copied || slices.Contains(in.flags, "--from="+build.name)
		}
	}
	if !regexp.MustCompile(`^[1-9][0-9]*(:[1-9][0-9]*)?$`).MatchString(user) {
		t.Errorf("final stage USER %q: want a numeric non-root uid (Kubernetes' runAsNonRoot cannot check a name)", user)
	}
	if !copied {
		t.Errorf("final stage copies nothing from stage %q", build.name)
	}
	if !slices.Contains(filepath.SplitList(path), "/usr/local/bin") {
		t.Errorf("final stage PATH %q: the binaries in /usr/local/bin must run by name", path)
	}
}

func TestDockerfileBuildsEveryCommand(t *testing.T) {
	stages, err := readDockerfile(filepath.Join(repoRoot, "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	build, run, err := goBuild(stages)
	if err != nil {
		t.Fatal(err)
	}
	env, argv, err := splitGoBuild(run.args)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("go build env %q: want CGO_ENABLED=0 (a static binary for a distroless static base)", env)
	}
	if !slices.Contains(argv, "-trimpath") {
		t.Errorf("go build %q: want -trimpath", argv)
	}
	ldflags, _ := flagValue(argv, "ldflags")
	if f := strings.Fields(ldflags); !slices.Contains(f, "-s") || !slices.Contains(f, "-w") {
		t.Errorf("go build -ldflags %q: want -s -w (stripped)", ldflags)
	}
	var pkgs []string
	for _, a := range argv {
		if p, ok := strings.CutPrefix(a, "./cmd/"); ok {
			pkgs = append(pkgs, p)
		}
	}
	slices.Sort(pkgs)
	if want := commands(t); !slices.Equal(pkgs, want) {
		t.Errorf("go build builds %q, want every command of cmd/: %q", pkgs, want)
	}
	cached := func(in *instruction, target string) {
		t.Helper()
		if !slices.ContainsFunc(in.flags, func(f string) bool {
			return strings.HasPrefix(f, "--mount=type=cache,") && strings.Contains(f, "target="+target)
		}) {
			t.Errorf("Dockerfile:%d: RUN %s: no cache mount on %s", in.line, in.args, target)
		}
	}
	cached(run, "/go/pkg/mod")
	cached(run, "/root/.cache/go-build")
	i := slices.IndexFunc(build.instructions, func(in instruction) bool {
		return in.keyword == "RUN" && strings.HasPrefix(in.args, "go mod download")
	})
	if i < 0 {
		t.Errorf("build stage: no RUN go mod download: want the modules in a layer of their own, before the sources")
	} else {
		cached(&build.instructions[i], "/go/pkg/mod")
	}
}

// distrolessStatic is the size of gcr.io/distroless/static-debian13 as its
// README documents it ("around 2 MiB"): CA certificates, tzdata, passwd.
const distrolessStatic = 2 << 20

func TestImageBinaries(t *testing.T) {
	dir := binaries(t)
	var total int64
	for _, name := range commands(t) {
		path := filepath.Join(dir, name)
		st, err := os.Stat(path)
		if err != nil {
			t.Errorf("%s: not built: %v", name, err)
			continue
		}
		total += st.Size()
		f, err := elf.Open(path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s: dynamically linked (has an interpreter): the distroless static base has no libc", name)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s: needs shared libraries %q", name, libs)
		}
		if f.Section(".symtab") != nil {
			t.Errorf("%s: not stripped (has .symtab)", name)
		}
		f.Close()
		t.Logf("%-10s %5.1f MiB", name, float64(st.Size())/(1<<20))
	}
	t.Logf("binaries %5.1f MiB; image ≈ %.1f MiB with distroless static's ≈ 2 MiB", float64(total)/(1<<20), float64(total+distrolessStatic)/(1<<20))
}

func TestDockerignore(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot, "deploy", "Dockerfile.dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	ignored := func(path string) bool {
		t.Helper()
		m, err := pm.MatchesOrParentMatches(path)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, p := range []string{".git/HEAD", "deploy/compose.yaml", "README.md"} {
		if !ignored(p) {
			t.Errorf("%s is in the build context: the image needs only the Go sources", p)
		}
	}

	// Every file go build reads: go.mod, go.sum, and the Go and embedded
	// files of every package of this module that a command imports.
	cmd := exec.Command("go", "list", "-e", "-deps", "-f",
		`{{if and .Module .Module.Main}}{{range .GoFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{end}}`,
		"./cmd/...")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	needed := []string{"go.mod", "go.sum"}
	for _, line := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, line)
		if err != nil {
			t.Fatal(err)
		}
		needed = append(needed, filepath.ToSlash(rel))
	}
	stages, err := readDockerfile(filepath.Join(repoRoot, "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	build, _, err := goBuild(stages)
	if err != nil {
		t.Fatal(err)
	}
	var copied []string
	for _, in := range build.instructions {
		if in.keyword == "COPY" && len(in.flags) == 0 {
			f := strings.Fields(in.args)
			copied = append(copied, f[:len(f)-1]...)
		}
	}
	for _, p := range needed {
		if ignored(p) {
			t.Errorf("%s: needed by go build, but Dockerfile.dockerignore leaves it out", p)
		}
		if !slices.ContainsFunc(copied, func(src string) bool { return p == src || strings.HasPrefix(p, src+"/") }) {
			t.Errorf("%s: needed by go build, but no COPY of the build stage copies it (%q)", p, copied)
		}
	}
}

// checkPinned fails the test for an image reference without a tag or
// digest, or tagged latest.
func checkPinned(t *testing.T, where, image string) {
	t.Helper()
	if strings.Contains(image, "@sha256:") {
		return
	}
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		t.Errorf("%s %s: no tag; pin one", where, image)
		return
	}
	if tag := image[i+1:]; tag == "latest" || tag == "" {
		t.Errorf("%s %s: pin a tag other than latest", where, image)
	}
}
