package jobs

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"regexp"
	"strings"
	"text/template"

	"github.com/gantry-ci/gantry/orchestrator"
)

// Names of the generated Dockerfiles: the base one in the base tier's context, the app one in
// the app's context until the label step has read it (see withoutGenerated). Either shadows a
// project file of the same name.
const (
	generatedBase = ".gantry-generated.base.Dockerfile"
	generatedApp  = ".gantry-generated.Dockerfile"
)

// The templates Options.Templates must hold, laid out as in configs.Templates.
const (
	pythonBaseTemplate = "python-base.Dockerfile.tmpl"
	pythonAppTemplate  = "python-app.Dockerfile.tmpl"
)

// Files whose presence at the root of the build context makes a project a Python project.
const (
	requirementsFile = "requirements.txt"
	pyprojectFile    = "pyproject.toml"
	setupPyFile      = "setup.py"
)

// What a value may look like to be rendered into a Dockerfile. Each pattern leaves out
// whitespace, quotes, '$' and '\': a value can neither start a line of its own, nor expand a
// build variable, nor continue a line.
var (
	imageRef  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/:@-]*$`)
	wheelsDir = regexp.MustCompile(`^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$`)
	debianPkg = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?$`)
)

// parseTemplates reads the Python Dockerfile templates from fsys.
func parseTemplates(fsys fs.FS) (*template.Template, error) {
	t, err := template.New("python").Option("missingkey=error").Funcs(template.FuncMap{
		"join":    strings.Join,
		"shquote": shellQuote,
		"json":    jsonArray,
	}).ParseFS(fsys, "templates/"+pythonBaseTemplate, "templates/"+pythonAppTemplate)
	if err != nil {
		return nil, fmt.Errorf("dockerfile templates: %w", err)
	}
	return t, nil
}

// pythonData is what the Python templates see. Every string in it has passed checkPython.
type pythonData struct {
	Image          string
	SystemPackages []string
	IndexURL       string
	// Wheels is the cleaned path of the wheels folder, empty for none.
	Wheels string
	// Requirements says the project has a requirements.txt, installed in the base.
	Requirements bool
	// InstallProject installs the project itself (pip install .) in the app image.
	InstallProject bool
	Command        []string
}

// renderPython renders the base and app Dockerfiles for g. requirements says whether the
// project has a requirements.txt. Without one, the project's own metadata (pyproject.toml or
// setup.py) is the only place its dependencies are named, so the project is installed with them
// in the app image even if g does not ask for it. Values that do not fit their place in a
// Dockerfile are refused rather than escaped: a mangled package name or image would only fail
// later, and less clearly.
func renderPython(t *template.Template, g orchestrator.GenerateSpec, requirements bool) (base, app []byte, err error) {
	if err := checkPython(g); err != nil {
		return nil, nil, err
	}
	data := pythonData{
		Image: g.Image, SystemPackages: g.SystemPackages, IndexURL: g.IndexURL,
		Requirements: requirements, InstallProject: g.SetupPy || !requirements, Command: g.Command,
	}
	if g.Wheels != "" {
		data.Wheels = relPath(g.Wheels)
	}
	var b, a bytes.Buffer
	if err := t.ExecuteTemplate(&b, pythonBaseTemplate, data); err != nil {
		return nil, nil, fmt.Errorf("render %s: %w", pythonBaseTemplate, err)
	}
	if err := t.ExecuteTemplate(&a, pythonAppTemplate, data); err != nil {
		return nil, nil, fmt.Errorf("render %s: %w", pythonAppTemplate, err)
	}
	return b.Bytes(), a.Bytes(), nil
}

// checkPython reports every value of g that cannot be rendered safely. The configuration is
// validated on load as well; this check is what the templates rely on, whoever built g.
func checkPython(g orchestrator.GenerateSpec) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("generate.python.%s: "+format, append([]any{key}, args...)...))
	}
	if !imageRef.MatchString(g.Image) {
		bad("image", "%q is not an image reference", g.Image)
	}
	if g.IndexURL != "" {
		// Quoted for the shell, so only what would break the line or the quoting is refused.
		u, err := url.Parse(g.IndexURL)
		switch {
		case err != nil || strings.ContainsAny(g.IndexURL, " \t\r\n\\") || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			bad("index_url", "is not an absolute http(s) URL without spaces") // may hold a password: not quoted
		case u.User != nil:
			// The generated Dockerfile is shown in the job log and kept in the image's history.
			bad("index_url", "must not contain credentials")
		}
	}
	if g.Wheels != "" {
		if w := relPath(g.Wheels); w == "." || !wheelsDir.MatchString(w) {
			bad("wheels", "%q must name a folder below the repository root using only A-Z, a-z, 0-9, '.', '_', '-' and '/'", g.Wheels)
		}
	}
	for i, pkg := range g.SystemPackages {
		if !debianPkg.MatchString(pkg) {
			bad(fmt.Sprintf("system_packages[%d]", i), "%q is not a Debian package name", pkg)
		}
	}
	return errors.Join(errs...)
}

// shellQuote quotes s as one word for /bin/sh. A RUN line is not expanded by the builder, so
// the shell's quoting is the only one that matters there.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// jsonArray renders args in the exec (JSON) form of CMD. JSON escapes every control character,
// so an argument holding a newline stays on the CMD line.
func jsonArray(args []string) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "&&" reads better than "\u0026\u0026" in the log
	if err := enc.Encode(args); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// generatePython turns a Python project without a Dockerfile into one the two-tier build can
// take: it renders both Dockerfiles, shows them in the job log, adds them to bc (see
// addGenerated) and returns p with the generated app Dockerfile and a base tier of the generated
// base Dockerfile and the dependency inputs that exist (requirements.txt and the wheels folder).
// The base image is p.Image + "-base" unless p.Base names one.
func generatePython(t *template.Template, p orchestrator.Project, dockerfile string, bc *buildContext, log io.Writer) (orchestrator.Project, error) {
	isFile := func(name string) bool { return bc.names[name] == tar.TypeReg }
	requirements := isFile(requirementsFile)
	if !requirements && !isFile(pyprojectFile) && !isFile(setupPyFile) {
		return p, projectFault("build: no Dockerfile %q and nothing to generate one from: build context %q has no %s, %s or %s",
			dockerfile, relPath(p.Build.Context), requirementsFile, pyprojectFile, setupPyFile)
	}
	if t == nil {
		return p, errors.New("build: cannot generate a Dockerfile: the executor has no templates (jobs.Options.Templates)")
	}
	g := *p.Generate
	base, app, err := renderPython(t, g, requirements)
	if err != nil {
		return p, projectFault("build: generate Dockerfile: %w", err)
	}
	spec := &orchestrator.BaseSpec{Dockerfile: generatedBase, Image: p.Image + "-base"}
	if p.Base != nil && p.Base.Image != "" {
		spec.Image = p.Base.Image
	}
	if requirements {
		spec.Inputs = append(spec.Inputs, requirementsFile)
	}
	if g.Wheels != "" {
		if !bc.hasDir(relPath(g.Wheels)) {
			return p, projectFault("build: wheels folder %q not found in build context %q", g.Wheels, relPath(p.Build.Context))
		}
		spec.Inputs = append(spec.Inputs, relPath(g.Wheels))
		if g.IndexURL != "" {
			fmt.Fprintln(log, "generate: index_url is not used: with wheels, pip installs offline (--no-index)")
		}
	}
	fmt.Fprintf(log, "generated Dockerfile.base:\n%s", base)
	fmt.Fprintf(log, "generated Dockerfile:\n%s", app)
	if err := bc.addGenerated(base, app, spec); err != nil {
		return p, err
	}
	p.Build.Dockerfile, p.Base = generatedApp, spec
	// A target names a stage of the project's own Dockerfile; the generated one has one stage.
	// Without a target the label step runs, and withoutGenerated after it.
	p.Build.Target = ""
	return p, nil
}

// addGenerated puts the generated app Dockerfile into the context, in place of a project file
// of that name, and collects anew what the base tier sees: readContext collected for the
// configured base, before anyone knew the Dockerfile was missing. The generated base Dockerfile
// goes into the base tier's context only.
func (bc *buildContext) addGenerated(base, app []byte, spec *orchestrator.BaseSpec) error {
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	bc.base = map[string]*contextFile{
		generatedBase: {hdr: tar.Header{Name: generatedBase, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(base))}, data: base},
	}
	err := eachEntry(&bc.tar, func(hdr *tar.Header, data []byte) error {
		if hdr.Name == generatedApp {
			return nil
		}
		// A project file named like the generated base Dockerfile must not take its place.
		if hdr.Typeflag != tar.TypeDir && hdr.Name != generatedBase && baseSees(spec, hdr.Name) {
			bc.base[hdr.Name] = &contextFile{hdr: *hdr, data: data}
		}
		return writeEntry(tw, hdr, data)
	})
	if err != nil {
		return err
	}
	if err := writeEntry(tw, &tar.Header{Name: generatedApp, Typeflag: tar.TypeReg, Mode: 0o644}, app); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("build context: %w", err)
	}
	bc.names[generatedApp] = tar.TypeReg
	bc.tar = out
	return nil
}

// withoutGenerated returns a copy of a build context without the generated app Dockerfile, so
// that COPY . . cannot put it in the image. A .dockerignore would not keep it out: the engine
// drops only the Dockerfile it builds from (here labelDockerfile) and a .dockerignore listing
// itself, and applies the rest of .dockerignore only when the docker CLI packs the context.
func withoutGenerated(context *bytes.Buffer) (*bytes.Buffer, error) {
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	err := eachEntry(context, func(hdr *tar.Header, data []byte) error {
		if hdr.Name == generatedApp {
			return nil
		}
		return writeEntry(tw, hdr, data)
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	return &out, nil
}

// eachEntry calls fn with every entry of a build context.
func eachEntry(context *bytes.Buffer, fn func(hdr *tar.Header, data []byte) error) error {
	tr := tar.NewReader(bytes.NewReader(context.Bytes()))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("build context: %w", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("build context: %w", err)
		}
		if err := fn(hdr, data); err != nil {
			return err
		}
	}
}

// hasDir reports whether the context holds the folder dir. Archives list folders as entries of
// their own, but a folder is there as well when only files below it are.
func (bc *buildContext) hasDir(dir string) bool {
	if bc.names[dir] == tar.TypeDir {
		return true
	}
	for name := range bc.names {
		if strings.HasPrefix(name, dir+"/") {
			return true
		}
	}
	return false
}
