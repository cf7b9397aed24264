package jobs

import (
	"archive/tar"
	"errors"
	"io"
	"maps"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gantry-ci/gantry/orchestrator"
)

const testSHA = "0123456789abcdef0123456789abcdef01234567"

// entry is what the tests compare of a context's tar entry.
type entry struct {
	Name string
	Type byte
	Mode int64
	Data string
}

func readEntries(t *testing.T, r io.Reader) []entry {
	t.Helper()
	var out []entry
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading context tar: %v", err)
		}
		data, _ := io.ReadAll(tr)
		out = append(out, entry{hdr.Name, hdr.Typeflag, hdr.Mode, string(data)})
	}
}

func TestReadContext(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"Dockerfile":          "FROM scratch\n",
		"run.sh":              "#!/bin/sh\n",
		"svc/Dockerfile":      "FROM busybox\n",
		"svc/app/main.py":     "print(1)\n",
		"svc-other/README.md": "not in svc\n",
	}
	tests := []struct {
		dir  string
		want []entry
	}{
		{".", []entry{
			{"Dockerfile", tar.TypeReg, 0o644, "FROM scratch\n"},
			{"run.sh", tar.TypeReg, 0o755, "#!/bin/sh\n"},
			{"svc-other/", tar.TypeDir, 0o755, ""},
			{"svc-other/README.md", tar.TypeReg, 0o644, "not in svc\n"},
			{"svc/", tar.TypeDir, 0o755, ""},
			{"svc/Dockerfile", tar.TypeReg, 0o644, "FROM busybox\n"},
			{"svc/app/", tar.TypeDir, 0o755, ""},
			{"svc/app/main.py", tar.TypeReg, 0o644, "print(1)\n"},
		}},
		{"svc", []entry{
			{"Dockerfile", tar.TypeReg, 0o644, "FROM busybox\n"},
			{"app/", tar.TypeDir, 0o755, ""},
			{"app/main.py", tar.TypeReg, 0o644, "print(1)\n"},
		}},
		{"./svc/", nil}, // same as "svc", compared below
	}
	for _, tt := range tests {
		bc, err := readContext(archive(t, testSHA, files), tt.dir, nil, DefaultMaxContextBytes)
		if err != nil {
			t.Fatalf("readContext(dir %q) error = %v", tt.dir, err)
		}
		if tt.want == nil {
			tt.want = tests[1].want
		}
		if diff := cmp.Diff(tt.want, readEntries(t, &bc.tar)); diff != "" {
			t.Errorf("readContext(dir %q) entries (-want +got):\n%s", tt.dir, diff)
		}
	}
}

func TestReadContextRefuses(t *testing.T) {
	t.Parallel()
	files := map[string]string{"Dockerfile": "FROM scratch\n", "big": strings.Repeat("x", 64<<10)}
	_, err := readContext(archive(t, testSHA, files), ".", nil, 32<<10)
	if !isProjectFault(err) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("readContext(64 KiB file, limit 32 KiB) error = %v, want a project fault about the size", err)
	}
	_, err = readContext(archive(t, testSHA, files), "nope", nil, DefaultMaxContextBytes)
	if !isProjectFault(err) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("readContext(dir nope) error = %v, want a project fault naming the directory", err)
	}
	_, err = readContext(strings.NewReader("not gzip"), ".", nil, DefaultMaxContextBytes)
	if err == nil || isProjectFault(err) {
		t.Errorf("readContext(garbage) error = %v, want an infrastructure error", err)
	}
}

func TestBaseContext(t *testing.T) {
	t.Parallel()
	base := &orchestrator.BaseSpec{Dockerfile: "Dockerfile.base", Inputs: []string{"requirements.txt", "wheels"}, Image: "x/base"}
	files := map[string]string{
		"Dockerfile":       "FROM x\n",
		"Dockerfile.base":  "FROM busybox\n",
		"requirements.txt": "pytest\n",
		"wheels/b.whl":     "b",
		"wheels/a.whl":     "a",
		"app.py":           "print(1)\n",
	}
	hash := func(files map[string]string, args map[string]string) (string, []entry) {
		t.Helper()
		bc, err := readContext(archive(t, testSHA, files), ".", base, DefaultMaxContextBytes)
		if err != nil {
			t.Fatalf("readContext() error = %v", err)
		}
		buf, h, err := bc.baseContext(base, args)
		if err != nil {
			t.Fatalf("baseContext() error = %v", err)
		}
		return h, readEntries(t, buf)
	}
	with := func(name, content string) map[string]string {
		out := maps.Clone(files)
		out[name] = content
		return out
	}

	h0, entries := hash(files, nil)
	want := []entry{
		{"Dockerfile.base", tar.TypeReg, 0o644, "FROM busybox\n"},
		{"requirements.txt", tar.TypeReg, 0o644, "pytest\n"},
		{"wheels/a.whl", tar.TypeReg, 0o644, "a"},
		{"wheels/b.whl", tar.TypeReg, 0o644, "b"},
	}
	if diff := cmp.Diff(want, entries); diff != "" {
		t.Errorf("baseContext() entries (-want +got):\n%s", diff)
	}
	if len(h0) != 64 {
		t.Errorf("baseContext() hash = %q, want 64 hex digits", h0)
	}
	if h, _ := hash(with("app.py", "print(2)\n"), nil); h != h0 {
		t.Errorf("hash after an app change = %s, want unchanged %s", h, h0)
	}
	for name, files := range map[string]map[string]string{
		"requirements.txt": with("requirements.txt", "pytest==8\n"),
		"Dockerfile.base":  with("Dockerfile.base", "FROM busybox:2\n"),
		"wheels/c.whl":     with("wheels/c.whl", "c"),
	} {
		if h, _ := hash(files, nil); h == h0 {
			t.Errorf("hash after changing %s = %s, want a new hash", name, h)
		}
	}
	if h, _ := hash(files, map[string]string{"PIP_INDEX_URL": "http://mirror"}); h == h0 {
		t.Errorf("hash with a build arg = %s, want a new hash", h)
	}

	missing := maps.Clone(files)
	delete(missing, "requirements.txt")
	bc, err := readContext(archive(t, testSHA, missing), ".", base, DefaultMaxContextBytes)
	if err != nil {
		t.Fatalf("readContext() error = %v", err)
	}
	_, _, err = bc.baseContext(base, nil)
	if !errors.Is(err, orchestrator.ErrProjectFault) || !strings.Contains(err.Error(), "requirements.txt") {
		t.Errorf("baseContext(without requirements.txt) error = %v, want a project fault naming it", err)
	}
}

func TestContextName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, dir, want string
		ok              bool
	}{
		{"app-1-2/", ".", "", false},
		{"pax_global_header", ".", "", false},
		{"app-1-2/a/b.txt", ".", "a/b.txt", true},
		{"./app-1-2/a", ".", "a", true},
		{"app-1-2/../../etc/passwd", ".", "etc/passwd", true},
		{"app-1-2/svc/x", "svc", "x", true},
		{"app-1-2/svc", "svc", "", false},
		{"app-1-2/svcx/x", "svc", "", false},
	}
	for _, tt := range tests {
		got, ok := contextName(tt.name, tt.dir)
		if got != tt.want || ok != tt.ok {
			t.Errorf("contextName(%q, %q) = %q, %v, want %q, %v", tt.name, tt.dir, got, ok, tt.want, tt.ok)
		}
	}
}

// TestDockerignore: the project's .dockerignore works as with `docker build`, exceptions
// included, and never drops the Dockerfile or itself.
func TestDockerignore(t *testing.T) {
	files := map[string]string{
		"Dockerfile":    "FROM scratch\n",
		".dockerignore": "*.log\n!keep.log\nsecrets\nDockerfile\n",
		"app.py":        "print(1)\n",
		"debug.log":     "x",
		"keep.log":      "y",
		"secrets/key":   "z",
	}
	bc, err := readContext(archive(t, testSHA, files), ".", nil, DefaultMaxContextBytes)
	if err != nil {
		t.Fatal(err)
	}
	n, err := bc.applyDockerignore("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range readEntries(t, &bc.tar) {
		got[e.Name] = true
	}
	for _, gone := range []string{"debug.log", "secrets/key", "secrets/"} {
		if _, ok := got[gone]; ok {
			t.Errorf("applyDockerignore kept %s", gone)
		}
	}
	for _, kept := range []string{"Dockerfile", ".dockerignore", "app.py", "keep.log"} {
		if _, ok := got[kept]; !ok {
			t.Errorf("applyDockerignore dropped %s", kept)
		}
	}
	if n < 2 {
		t.Errorf("applyDockerignore dropped %d entries, want at least 2", n)
	}
}

// TestBaseContextHashCovers: whatever changes the base image changes its content hash, so an
// old base is never reused for new inputs: each case differs from the reference in one thing
// the build sees and that today's file names and contents alone do not tell apart.
func TestBaseContextHashCovers(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"Dockerfile.base":  "FROM busybox\nCOPY . /deps/\n",
		"docker/base":      "FROM busybox\nRUN false\n",
		"requirements.txt": "pytest\n",
	}
	base := func(dockerfile string) *orchestrator.BaseSpec {
		return &orchestrator.BaseSpec{Dockerfile: dockerfile, Inputs: []string{"requirements.txt", "Dockerfile.base", "docker/base"}, Image: "x/base"}
	}
	hash := func(t *testing.T, spec *orchestrator.BaseSpec, args map[string]string, change func(*buildContext)) string {
		t.Helper()
		bc, err := readContext(archive(t, testSHA, files), ".", spec, DefaultMaxContextBytes)
		if err != nil {
			t.Fatalf("readContext() error = %v", err)
		}
		if change != nil {
			change(bc)
		}
		_, h, err := bc.baseContext(spec, args)
		if err != nil {
			t.Fatalf("baseContext() error = %v", err)
		}
		return h
	}
	ref := hash(t, base("Dockerfile.base"), map[string]string{"A": "1", "B": "2"}, nil)
	tests := []struct {
		name   string
		spec   *orchestrator.BaseSpec
		args   map[string]string
		change func(*buildContext)
	}{
		{"another file is the Dockerfile", base("docker/base"), map[string]string{"A": "1", "B": "2"}, nil},
		{"an input's mode", base("Dockerfile.base"), map[string]string{"A": "1", "B": "2"},
			func(bc *buildContext) { bc.base["requirements.txt"].hdr.Mode = 0o755 }},
		{"a symlink in place of a file", base("Dockerfile.base"), map[string]string{"A": "1", "B": "2"},
			func(bc *buildContext) {
				f := bc.base["requirements.txt"]
				f.hdr.Typeflag, f.hdr.Linkname, f.hdr.Size, f.data = tar.TypeSymlink, "pytest\n", 0, nil
			}},
		{"args that run together", base("Dockerfile.base"), map[string]string{"A": "1\x00arg\x00B=2"}, nil},
	}
	for _, tt := range tests {
		if h := hash(t, tt.spec, tt.args, tt.change); h == ref {
			t.Errorf("baseContext() hash with %s = %s, want another hash than the reference's", tt.name, h)
		}
	}
}
