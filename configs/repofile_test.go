package configs_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gantry-ci/gantry/configs"
)

// repoProject is a loaded project with a server test, a build arg the
// operator set, a base tier and tight ceilings, for the pipeline file tests.
func repoProject(t *testing.T) configs.Project {
	t.Helper()
	cfg := mustLoad(t, minimal+`    build: {args: {TOKEN: server-secret, MODE: server}}
    base: {dockerfile: Dockerfile.base, inputs: [requirements.txt], image: registry.example.com/group/app-base}
    tests: [{name: unit, command: [pytest], env: {DB_PASSWORD: hunter2}}]
    limits: {timeout: 20m, memory: 1GiB, cpus: 2, pids: 512, networks: [none]}
`, nil)
	return cfg.Projects[0]
}

func TestApplyRepoFileApplies(t *testing.T) {
	t.Parallel()
	p := repoProject(t)
	got, err := p.ApplyRepoFile([]byte(`
# what the developers own
tests:
  - {name: fast, command: [pytest, -x], timeout: 5m}
  - {name: lint, command: [flake8], env: {STRICT: "1"}}
build:
  dockerfile: docker/app.Dockerfile
  target: runtime
  args: {MODE: repo, EXTRA: "1"}
base:
  inputs: [requirements.txt, constraints.txt]
generate:
  python: {command: [python, -m, svc]}
`))
	if err != nil {
		t.Fatalf("ApplyRepoFile = %v", err)
	}
	if len(got.Tests) != 2 || got.Tests[0].Name != "fast" || got.Tests[1].Name != "lint" {
		t.Fatalf("tests = %+v, want exactly fast and lint", got.Tests)
	}
	if f := got.Tests[0]; f.Timeout.Duration != 5*time.Minute || f.Memory != 512*configs.MiB || f.Network != configs.NetworkNone || f.Pids != 256 {
		t.Errorf("fast = %+v, want its timeout and the defaults", f)
	}
	if got.Tests[1].Env["DB_PASSWORD"] != "" {
		t.Error("a file's test received the server test's environment")
	}
	if got.Build.Dockerfile != "docker/app.Dockerfile" || got.Build.Target != "runtime" {
		t.Errorf("build = %+v", got.Build)
	}
	if a := got.Build.Args; a["MODE"] != "repo" || a["EXTRA"] != "1" || a["TOKEN"] != "server-secret" {
		t.Errorf("args = %v, want the server's merged with the file's, the file winning", a)
	}
	if p.Build.Args["MODE"] != "server" {
		t.Error("ApplyRepoFile changed the server's project")
	}
	if b := got.Base; b.Image != p.Base.Image || b.Dockerfile != "Dockerfile.base" || len(b.Inputs) != 2 {
		t.Errorf("base = %+v, want the server's image and dockerfile with the file's inputs", b)
	}
	if py := got.Generate.Python; py == nil || py.Image != "python:3.11-slim" || py.Command[2] != "svc" {
		t.Errorf("generate.python = %+v", py)
	}
	if got.Image != p.Image || got.Release.Branches[0] != "master" {
		t.Error("trust settings changed")
	}
}

func TestApplyRepoFileWithoutSettings(t *testing.T) {
	t.Parallel()
	p := repoProject(t)
	for _, data := range [][]byte{nil, {}, []byte("# nothing yet\n"), []byte("---\n")} {
		got, err := p.ApplyRepoFile(data)
		if err != nil || len(got.Tests) != 1 || got.Tests[0].Name != "unit" {
			t.Errorf("ApplyRepoFile(%q) = %+v, %v; want the server's project", data, got.Tests, err)
		}
	}
	off := ""
	p.PipelineFile = &off
	if got, err := p.ApplyRepoFile([]byte("release: {}\n")); err != nil || got.Tests[0].Name != "unit" {
		t.Errorf("a project reading no file: %v", err)
	}
	// An explicit empty list runs no test; the file owns the tests.
	if got, err := repoProject(t).ApplyRepoFile([]byte("tests: []\n")); err != nil || len(got.Tests) != 0 {
		t.Errorf("tests: [] = %+v, %v", got.Tests, err)
	}
	// A file setting only tests leaves the rest as the server has it, down to the build args it
	// has none of.
	bare := mustLoad(t, minimal, nil).Projects[0]
	got, err := bare.ApplyRepoFile([]byte("tests: [{name: a, command: [x]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	got.Tests = bare.Tests
	if !reflect.DeepEqual(got, bare) {
		t.Errorf("a file setting only tests gave %+v\nwant the server's %+v", got, bare)
	}
}

// TestApplyRepoFileZeroCeilings: a project not made by Load, whose zero Limits allow no network
// and no time, refuses a file's test rather than panicking on the empty network list.
func TestApplyRepoFileZeroCeilings(t *testing.T) {
	t.Parallel()
	_, err := configs.Project{}.ApplyRepoFile([]byte("tests: [{name: a, command: [x]}]\n"))
	var rf *configs.RepoFileError
	if !errors.As(err, &rf) || !slices.ContainsFunc(rf.Problems, func(e configs.FieldError) bool {
		return e.Key == "tests[0].network" && strings.HasPrefix(e.Message, `"none" is not allowed by the server`)
	}) {
		t.Errorf("ApplyRepoFile = %v, want the test refused for its network", err)
	}
}

// TestApplyRepoFileRefuses holds the pipeline file to what its writer owns: whoever pushes
// (or opens a merge request from a fork) writes it.
func TestApplyRepoFileRefuses(t *testing.T) {
	t.Parallel()
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i, prev := 'b', 'a'; i <= 'h'; i, prev = i+1, i {
		bomb += string(i) + ": &" + string(i) + " [" + strings.Repeat("*"+string(prev)+", ", 9) + "*" + string(prev) + "]\n"
	}
	bomb += "tests: [{name: t, command: *h}]\n"
	// Each anchor wraps the one before in a list: a few bytes that nest 16 levels and more once
	// the aliases are followed.
	chain := "a: &a [x]\n"
	for i, prev := 'b', 'a'; i <= 'p'; i, prev = i+1, i {
		chain += string(i) + ": &" + string(i) + " [*" + string(prev) + "]\n"
	}
	tests := []struct {
		name, file string
		want       string // the whole one-line error
	}{
		{"release", "release: {branches: [feature]}\n", ".gantry.yml: release: set in the server's config, not the repository"},
		{"image", "image: evil.example.com/x\n", ".gantry.yml: image: set in the server's config, not the repository"},
		{"base image", "base: {image: evil.example.com/base}\n", ".gantry.yml: base.image: set in the server's config, not the repository"},
		{"registries", "registries: [{host: evil.example.com}]\n", ".gantry.yml: registries: set in the server's config, not the repository"},
		{"schedules", "schedules: [{cron: '* * * * *', ref: x}]\n", ".gantry.yml: schedules: set in the server's config, not the repository"},
		{"webhook secret", "webhook_secret: x\n", ".gantry.yml: webhook_secret: set in the server's config, not the repository"},
		{"approval", "approval: none\n", ".gantry.yml: approval: set in the server's config, not the repository"},
		{"untrusted", "untrusted: {pass: [TOKEN]}\n", ".gantry.yml: untrusted: set in the server's config, not the repository"},
		{"limits", "limits: {timeout: 100h}\n", ".gantry.yml: limits: set in the server's config, not the repository"},
		{"gitlab token", "gitlab: {token: x}\n", ".gantry.yml: gitlab: set in the server's config, not the repository"},
		{"build memory", "build: {memory: 64GiB}\n", ".gantry.yml: build.memory: set in the server's config, not the repository"},
		{"build network", "build: {network: host}\n", ".gantry.yml: build.network: set in the server's config, not the repository"},
		{"build context", "build: {context: ..}\n", ".gantry.yml: build.context: set in the server's config, not the repository"},
		{"unknown", "testz: []\n", ".gantry.yml: testz: unknown key (did you mean tests?)"},
		{"unknown in a test", "tests: [{name: a, command: [x], privileged: true}]\n", ".gantry.yml: tests[0].privileged: unknown key"},
		{"several", "release: {}\nimage: x\n", ".gantry.yml: release: set in the server's config, not the repository (and 1 more)"},
		{"timeout above", "tests: [{name: a, command: [x], timeout: 2h}]\n", ".gantry.yml: tests[0].timeout: 2h0m0s is above the server's ceiling of 20m0s (limits.timeout in the server's config)"},
		{"memory above", "tests: [{name: a, command: [x], memory: 2GiB}]\n", ".gantry.yml: tests[0].memory: 2GiB is above the server's ceiling of 1GiB (limits.memory in the server's config)"},
		{"cpus above", "tests: [{name: a, command: [x], cpus: 64}]\n", ".gantry.yml: tests[0].cpus: 64 is above the server's ceiling of 2 (limits.cpus in the server's config)"},
		{"pids above", "tests: [{name: a, command: [x], pids: 100000}]\n", ".gantry.yml: tests[0].pids: 100000 is above the server's ceiling of 512 (limits.pids in the server's config)"},
		{"network not allowed", "tests: [{name: a, command: [x], network: bridge}]\n", `.gantry.yml: tests[0].network: "bridge" is not allowed by the server (limits.networks: none)`},
		{"host network", "tests: [{name: a, command: [x], network: host}]\n", `.gantry.yml: tests[0].network: "host" is not one of none, bridge (and 1 more)`},
		{"test named release", "tests: [{name: release, command: [x]}]\n", `.gantry.yml: tests[0].name: "release" is reserved for the release job`},
		{"test named build", "tests: [{name: build, command: [x]}]\n", `.gantry.yml: tests[0].name: "build" is reserved for the build job`},
		{"test name with a slash", "tests: [{name: ../release, command: [x]}]\n", `.gantry.yml: tests[0].name: "../release" may only contain a-z, 0-9, '_', '.' and '-'`},
		{"test name too long", "tests: [{name: " + strings.Repeat("a", 64) + ", command: [x]}]\n", ".gantry.yml: tests[0].name: is 64 characters, more than 63"},
		{"duplicate test", "tests: [{name: a, command: [x]}, {name: a, command: [y]}]\n", `.gantry.yml: tests[1].name: "a" is already used by tests[0]`},
		{"too many tests", "tests: [" + strings.Repeat("{name: a, command: [x]},", 51) + "]\n", ".gantry.yml: tests: has 51 tests, more than the 50 gantry runs from a pipeline file (and 50 more)"},
		{"dockerfile escapes", "build: {dockerfile: ../../etc/passwd}\n", `.gantry.yml: build.dockerfile: "../../etc/passwd" must be a relative path inside the repository`},
		{"dockerfile absolute", "build: {dockerfile: /etc/passwd}\n", `.gantry.yml: build.dockerfile: "/etc/passwd" must be a relative path inside the repository`},
		{"base dockerfile escapes", "base: {dockerfile: a/../../x}\n", `.gantry.yml: base.dockerfile: "a/../../x" must be a relative path inside the repository`},
		{"base input glob escapes", "base: {inputs: ['../*.txt']}\n", `.gantry.yml: base.inputs[0]: "../*.txt" must be a relative path inside the repository`},
		{"base input absolute", "base: {inputs: [/root/.ssh/id_rsa]}\n", `.gantry.yml: base.inputs[0]: "/root/.ssh/id_rsa" must be a relative path inside the repository`},
		{"wheels escape", "generate: {python: {wheels: ../wheels}}\n", `.gantry.yml: generate.python.wheels: "../wheels" must be a relative path inside the repository`},
		{"BASE_IMAGE arg", "build: {args: {BASE_IMAGE: evil}}\n", ".gantry.yml: build.args.BASE_IMAGE: is reserved: gantry sets it to the base image of two-tier builds"},
		{"bad arg name", "build: {args: {'A B': x}}\n", `.gantry.yml: build.args.A B: "A B" is not a variable name ([A-Za-z_][A-Za-z0-9_]*)`},
		{"not a mapping", "- a\n- b\n", ".gantry.yml: must be a mapping, not a list"},
		{"tests not a list", "tests: unit\n", ".gantry.yml: tests: must be a list, not a single value"},
		{"not YAML", "tests: [\n", ".gantry.yml: is not YAML: line 1: did not find expected node content"},
		{"too big", "#" + strings.Repeat("x", configs.MaxRepoFileSize-1) + "\n", ".gantry.yml: is 65537 bytes, more than the 65536 gantry reads"},
		{"two documents", "tests: []\n---\nrelease: {}\n", ".gantry.yml: must hold one YAML document, not several (---)"},
		{"not UTF-8", "tests: [{name: a, command: [\"\xff\xfe\"]}]\n", ".gantry.yml: is not UTF-8 text"},
		{"alias bomb", bomb, ".gantry.yml: has more than 20000 values once its aliases are expanded"},
		{"one value too many", valuesFile(20001), ".gantry.yml: has more than 20000 values once its aliases are expanded"},
		// 16 levels are read; the file is refused for what it holds there.
		{"nesting at the limit", "tests: " + strings.Repeat("[", 16) + strings.Repeat("]", 16) + "\n", ".gantry.yml: tests[0]: must be a mapping, not a list"},
		{"deep nesting", "tests: " + strings.Repeat("[", 17) + strings.Repeat("]", 17) + "\n", ".gantry.yml: nests deeper than 16 levels"},
		{"deep nesting through aliases", chain, ".gantry.yml: nests deeper than 16 levels"},
		{"no ${} expansion", "tests: [{name: a, command: [x], timeout: '${TIMEOUT}'}]\n", `.gantry.yml: tests[0].timeout: "${TIMEOUT}" is not a duration (e.g. 90s, 10m, 1h30m)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := repoProject(t).ApplyRepoFile([]byte(tt.file))
			var rf *configs.RepoFileError
			if !errors.As(err, &rf) {
				t.Fatalf("ApplyRepoFile = %v, want a *RepoFileError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q\n            want %q", err, tt.want)
			}
			// The first problem is a commit status's description: GitLab keeps 255 characters.
			if n := utf8.RuneCountInString(err.Error()); n > 255 {
				t.Errorf("error is %d characters, more than a status description holds", n)
			}
		})
	}
}

// valuesFile is a pipeline file of n YAML values (n >= 9), one test whose command makes up the rest.
func valuesFile(n int) string {
	return "tests: [{name: a, command: [" + strings.Repeat("x, ", n-9) + "x]}]\n"
}

// TestApplyRepoFileAtTheLimits: a file at each of the pipeline file's bounds is read, so a bound
// that tightens by one step fails here; one step past each is refused in TestApplyRepoFileRefuses.
func TestApplyRepoFileAtTheLimits(t *testing.T) {
	t.Parallel()
	var fifty strings.Builder
	fifty.WriteString("tests:\n")
	for i := range 50 {
		fmt.Fprintf(&fifty, "  - {name: t%d, command: [x]}\n", i)
	}
	for name, file := range map[string]string{
		"largest file":      "#" + strings.Repeat("x", configs.MaxRepoFileSize-2) + "\n",
		"most values":       valuesFile(20000),
		"most tests":        fifty.String(),
		"longest test name": "tests: [{name: " + strings.Repeat("a", 63) + ", command: [x]}]\n",
	} {
		if _, err := repoProject(t).ApplyRepoFile([]byte(file)); err != nil {
			t.Errorf("%s: ApplyRepoFile = %v, want it read", name, err)
		}
	}
}

// TestApplyRepoFileExpandsNothing: the server's environment must not reach a file's values.
func TestApplyRepoFileExpandsNothing(t *testing.T) {
	t.Setenv("GITLAB_TOKEN", "glpat-secret")
	got, err := repoProject(t).ApplyRepoFile([]byte("tests: [{name: a, command: [echo, '${GITLAB_TOKEN}'], env: {T: '${GITLAB_TOKEN}'}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := got.Tests[0].Command[1]; c != "${GITLAB_TOKEN}" || got.Tests[0].Env["T"] != "${GITLAB_TOKEN}" {
		t.Errorf("command %q, env %q: want the text as written", c, got.Tests[0].Env["T"])
	}
}

// TestApplyRepoFileCeilingsBelowDefaults: a ceiling under a test default lowers the default
// rather than refusing a test that asked for nothing.
func TestApplyRepoFileCeilingsBelowDefaults(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, minimal+"    limits: {timeout: 1m, memory: 64MiB, cpus: 0.5, pids: 32, networks: [bridge]}\n", nil)
	got, err := cfg.Projects[0].ApplyRepoFile([]byte("tests: [{name: a, command: [x]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ts := got.Tests[0]; ts.Timeout.Duration != time.Minute || ts.Memory != 64*configs.MiB || ts.CPUs != 0.5 || ts.Pids != 32 || ts.Network != configs.NetworkBridge {
		t.Errorf("test = %+v, want the ceilings", ts)
	}
}

func TestLoadRefusesBadLimits(t *testing.T) {
	t.Parallel()
	_, err := configs.Load(writeConfig(t, minimal+"    pipeline_file: ../x.yml\n    limits: {timeout: -1s, memory: 1MiB, cpus: -1, pids: -1, networks: [host]}\n"), nil)
	errs := fieldErrors(t, err)
	var keys []string
	for _, e := range errs {
		keys = append(keys, e.Key)
	}
	want := "projects[0].pipeline_file projects[0].limits.timeout projects[0].limits.memory projects[0].limits.cpus projects[0].limits.pids projects[0].limits.networks[0]"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("keys = %s\nwant %s", got, want)
	}
}

// TestBaseImageAloneWaitsForTheFile: with the pipeline file on, the server may name only where
// base images go; the tier exists for commits whose file declares it, whole.
func TestBaseImageAloneWaitsForTheFile(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, minimal+"    base: {image: registry.example.com/group/app-base}\n", nil)
	p := cfg.Projects[0]
	got, err := p.ApplyRepoFile([]byte("base: {dockerfile: Dockerfile.base, inputs: [requirements.txt]}\n"))
	if err != nil || got.Base.Dockerfile != "Dockerfile.base" || got.Base.Image != "registry.example.com/group/app-base" {
		t.Errorf("ApplyRepoFile = %+v, %v", got.Base, err)
	}
	if _, err := p.ApplyRepoFile([]byte("base: {dockerfile: Dockerfile.base}\n")); err == nil ||
		err.Error() != ".gantry.yml: base.inputs: must not be empty: the inputs decide when the base image is rebuilt" {
		t.Errorf("a tier without inputs: %v", err)
	}
	_, err = configs.Load(writeConfig(t, minimal+"    pipeline_file: \"\"\n    base: {image: registry.example.com/group/app-base}\n"), nil)
	if errs := fieldErrors(t, err); errs[0].Key != "projects[0].base.dockerfile" {
		t.Errorf("base.image alone without a pipeline file: %v", errs)
	}
}

func TestLocalProject(t *testing.T) {
	t.Parallel()
	p := configs.Local("Sample")
	if p.Path != "local/Sample" || p.Image != "gantry-exec/sample" || p.Base.Image != "localhost/gantry-exec/sample-base" || p.PipelineFileName() != ".gantry.yml" {
		t.Errorf("Local = %+v", p)
	}
	got, err := p.ApplyRepoFile([]byte("tests: [{name: it, command: [x], network: bridge}]\n"))
	if err != nil || got.Tests[0].Network != "bridge" || got.Tests[0].Timeout.Duration != 10*time.Minute {
		t.Errorf("a local file's test: %+v, %v", got.Tests, err)
	}
}
