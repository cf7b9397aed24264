package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/jobs"
	"github.com/gantry-ci/gantry/store"
)

// TestExec runs `gantry exec` on a fresh clone of the sample project: it succeeds; with a
// failing test added to the working tree (not even committed) it exits non-zero and shows why.
func TestExec(t *testing.T) {
	t.Parallel()
	python := testenv.Need(t, "GANTRY_TEST_PYTHON_IMAGE")
	reg := testenv.NeedRegistry(t)
	origin := newGitRepo(t, "../../testdata/sample")
	clone := t.TempDir()
	origin.git("clone", "-q", origin.dir, clone)
	ns := reg.Host + "/exec-" + randomName()
	t.Cleanup(func() { removeImages(t, ns) })
	cfg := fmt.Sprintf(`
registries:
  - {host: %q, username: %q, password: %q}
projects:
  - path: group/sample
    webhook_secret: ${APP_HOOK_SECRET}
    image: %s/sample
    build: {args: {PYTHON_IMAGE: %q}}
    base: {dockerfile: Dockerfile.base, inputs: [requirements.txt, wheels], image: %s/sample-base}
    tests:
      - {name: unit, command: ["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], timeout: 2m}
      - {name: lint, command: ["python3", "lint.py", "app", "tests"], timeout: 1m}
    release: {branches: [master]}
`, reg.Host, reg.User, reg.Password, ns, python, ns)
	config := filepath.Join(t.TempDir(), "gantry.yaml")
	must(t, os.WriteFile(config, []byte(cfg), 0o600))

	// The order the usage writes: flags after the directory. The webhook secret is unset: a
	// local run takes no webhook, so it must not ask for one.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"exec", clone, "--config", config}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("gantry exec on the sample: %v\n%s", err, out.String())
	}
	if tags := testImageTags(t, ns+"/sample"); len(tags) != 0 {
		t.Errorf("gantry exec left its images %v, want them removed", tags)
	}
	for _, want := range []string{"gantry/build", "gantry/test/unit", "success", "pipeline success"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("exec output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "gantry/release") {
		t.Errorf("gantry exec released:\n%s", out.String())
	}

	must(t, os.WriteFile(filepath.Join(clone, "tests", "test_broken.py"), []byte("def test_broken():\n    assert 'local' == 'pushed'\n"), 0o644))
	out.Reset()
	err := run(context.Background(), []string{"exec", "--keep", "--config", config, clone}, func(string) string { return "" }, &out, &out)
	if exitCode(err) != exitPipelineFailed {
		t.Fatalf("gantry exec with a failing test = %v (exit status %d), want exit status %d:\n%s", err, exitCode(err), exitPipelineFailed, out.String())
	}
	if tags := testImageTags(t, ns+"/sample"); len(tags) != 1 || !strings.Contains(out.String(), "kept the image "+ns+"/sample:"+tags[0]) {
		t.Errorf("gantry exec --keep kept %v, want its one test image, named in its output:\n%s", tags, out.String())
	}
	for _, want := range []string{"exit 1: 1 failed", "--- log of test/unit", "assert 'local' == 'pushed'", "pipeline failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("failing exec output lacks %q:\n%s", want, out.String())
		}
	}
}

// testImageTags lists the test-<id> tags of repo on the engine.
func testImageTags(t *testing.T, repo string) []string {
	t.Helper()
	out, err := exec.Command("docker", "images", "--format", "{{.Tag}}", repo).Output()
	if err != nil {
		t.Fatalf("docker images %s: %v", repo, err)
	}
	var tags []string
	for _, tag := range strings.Fields(string(out)) {
		if strings.HasPrefix(tag, "test-") {
			tags = append(tags, tag)
		}
	}
	return tags
}

// TestExecArguments: flags may follow the directory; a project the config lacks is refused
// with the configured ones listed; a config's intake-only problems (an unset webhook secret, a
// weak API token) do not stop a local run; without a config exec says it runs with defaults.
// All of it before any Docker call.
func TestExecArguments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	config := filepath.Join(t.TempDir(), "gantry.yaml")
	must(t, os.WriteFile(config, []byte(`
api: {tokens: [short]}
projects:
  - {path: group/app, webhook_secret: "${APP_HOOK_SECRET}", image: registry.example.com/group/app}
  - {path: group/lib, image: registry.example.com/group/lib}
`), 0o600))
	for _, tt := range []struct {
		args       []string
		err, notes string
	}{
		{[]string{dir, "--config", config, "--project", "nope"}, "project nope is not in the config: it has group/app, group/lib", ""},
		{[]string{dir, "--config", config}, "the config has several projects: name one with --project (group/app, group/lib)", ""},
		{[]string{dir, "--project", "group/app"}, "project group/app is not in the config: it has no projects",
			"gantry exec: no config file (looked for configs/gantry.yaml; --config or $GANTRY_CONFIG names one)\n"},
		{[]string{dir, "other", "--config", config}, `exec: one directory at most, got ["` + dir + `" "other"]`, ""},
		{[]string{"--config", config, dir, "--", "--project"}, `exec: one directory at most, got ["` + dir + `" "--project"]`, ""},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"exec"}, tt.args...), func(string) string { return "" }, &stdout, &stderr)
		if err == nil || err.Error() != tt.err || stderr.String() != tt.notes || stdout.Len() != 0 {
			t.Errorf("gantry exec %v = %v\nstderr: %q\nwant %q and stderr %q", tt.args, err, stderr.String(), tt.err, tt.notes)
		}
	}
}

// TestExecCleanUp: what a local run leaves on the engine when it ends (a test container a
// Ctrl-C stopped) is removed by its project and pipeline labels, and only that: another
// pipeline's container stays.
func TestExecCleanUp(t *testing.T) {
	t.Parallel()
	busybox := testenv.Need(t, "GANTRY_TEST_BUSYBOX_IMAGE")
	st := store.New(testenv.Redis(t), store.Options{})
	t.Cleanup(func() { st.Close() })
	docker, err := jobs.Connect(context.Background(), jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { docker.Close() })
	project := "local/cleanup-" + randomName()
	create := func(pipeline string) string {
		out, err := exec.Command("docker", "create", "--label", jobs.LabelProject+"="+project, "--label", jobs.LabelPipeline+"="+pipeline, busybox, "true").Output()
		if err != nil {
			t.Fatalf("docker create: %v", err)
		}
		id := strings.TrimSpace(string(out))
		t.Cleanup(func() { exec.Command("docker", "rm", "-f", id).Run() })
		return id
	}
	left, other := create("41"), create("42")
	var stderr bytes.Buffer
	cleanUpExec(context.Background(), st, docker, project, 41, false, &stderr)
	exists := func(id string) bool { return exec.Command("docker", "inspect", id).Run() == nil }
	if exists(left) || !exists(other) || stderr.Len() != 0 {
		t.Errorf("after clean-up of pipeline 41: its container exists %t, pipeline 42's exists %t, stderr %q; want only 42's left, nothing said",
			exists(left), exists(other), stderr.String())
	}
}

// TestExecWithoutConfig: `gantry exec` on the sample with no config anywhere runs what the
// sample's .gantry.yml says (the base tier, its two tests) on local defaults. The copy's file
// gets the test environment's Python image as a build arg, since nothing is pulled here.
func TestExecWithoutConfig(t *testing.T) {
	t.Parallel()
	python := testenv.Need(t, "GANTRY_TEST_PYTHON_IMAGE")
	dir := filepath.Join(t.TempDir(), "sample-"+randomName())
	must(t, os.CopyFS(dir, os.DirFS("../../testdata/sample")))
	file := filepath.Join(dir, ".gantry.yml")
	data, err := os.ReadFile(file)
	must(t, err)
	must(t, os.WriteFile(file, append(data, fmt.Sprintf("build: {args: {PYTHON_IMAGE: %q}}\n", python)...), 0o644))
	name := strings.ToLower(filepath.Base(dir))
	t.Cleanup(func() {
		removeImages(t, "gantry-exec/"+name)
		removeImages(t, "localhost/gantry-exec/"+name)
	})

	var out bytes.Buffer
	noEnv := func(string) string { return "" } // no GANTRY_CONFIG, and no configs/gantry.yaml here
	if err := run(context.Background(), []string{"exec", dir}, noEnv, &out, &out); err != nil {
		t.Fatalf("gantry exec without a config: %v\n%s", err, out.String())
	}
	for _, want := range []string{"gantry/build", "gantry/test/unit", "gantry/test/lint", "3 passed", "pipeline success"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("exec output lacks %q:\n%s", want, out.String())
		}
	}

	// A file that sets what the server decides is refused by name, locally too.
	must(t, os.WriteFile(file, []byte("release: {branches: [local]}\n"), 0o644))
	out.Reset()
	if err := run(context.Background(), []string{"exec", dir}, noEnv, &out, &out); err == nil {
		t.Fatalf("gantry exec with release in the file succeeded:\n%s", out.String())
	}
	if want := "gantry/build             failed   .gantry.yml: release: set in the server's config, not the repository"; !strings.Contains(out.String(), want) {
		t.Errorf("exec output lacks %q:\n%s", want, out.String())
	}
}
