package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/testenv"
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
    webhook_secret: %s
    image: %s/sample
    build: {args: {PYTHON_IMAGE: %q}}
    base: {dockerfile: Dockerfile.base, inputs: [requirements.txt, wheels], image: %s/sample-base}
    tests:
      - {name: unit, command: ["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], timeout: 2m}
      - {name: lint, command: ["python3", "lint.py", "app", "tests"], timeout: 1m}
    release: {branches: [master]}
`, reg.Host, reg.User, reg.Password, testHookSecret, ns, python, ns)
	config := filepath.Join(t.TempDir(), "gantry.yaml")
	must(t, os.WriteFile(config, []byte(cfg), 0o600))

	var out bytes.Buffer
	if err := run(context.Background(), []string{"exec", "--config", config, clone}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("gantry exec on the sample: %v\n%s", err, out.String())
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
	err := run(context.Background(), []string{"exec", "--config", config, clone}, func(string) string { return "" }, &out, &out)
	if err == nil {
		t.Fatalf("gantry exec with a failing test succeeded:\n%s", out.String())
	}
	for _, want := range []string{"exit 1: 1 failed", "--- log of test/unit", "assert 'local' == 'pushed'", "pipeline failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("failing exec output lacks %q:\n%s", want, out.String())
		}
	}
}
