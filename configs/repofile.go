package configs

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Bounds on a repository's pipeline file. Whoever can push (or open a merge
// request from a fork) writes it, so reading it must cost little whatever it
// holds.
const (
	// MaxRepoFileSize is the largest pipeline file read; a real one is a
	// few hundred bytes.
	MaxRepoFileSize = 64 * 1024
	// maxRepoNodes bounds the YAML values of the file once its aliases are
	// followed, so that a "billion laughs" file is refused before it is
	// decoded into anything.
	maxRepoNodes = 20000
	// maxRepoDepth bounds how deeply the file nests; the deepest legal
	// value (tests[i].command[j]) sits at depth 4.
	maxRepoDepth = 16
	// maxRepoTests bounds the tests the file may define: each one is a
	// container and a commit status.
	maxRepoTests = 50
	// maxTestName keeps a test's status name (prefix/test/<name>) short.
	maxTestName = 63
)

// RepoFile is what a repository's pipeline file (.gantry.yml by default) may
// set: what the project's developers own. Everything that carries trust (the
// image repositories, the release, registries, schedules, secrets, approval,
// the build's resources and the ceilings themselves) stays in the server's
// config, and the file naming it is refused with the key named.
type RepoFile struct {
	// Tests, when present, replace the server's tests for this commit.
	Tests []Test `yaml:"tests" json:"tests"`
	// Build sets the app build's Dockerfile, args and target.
	Build RepoBuild `yaml:"build" json:"build"`
	// Base sets the base tier's Dockerfile and inputs; the base image's
	// repository comes from the server's config, which must have one.
	Base *RepoBase `yaml:"base" json:"base"`
	// Generate replaces the server's Dockerfile generator settings.
	Generate Generate `yaml:"generate" json:"generate"`
}

// RepoBuild is the part of Build the pipeline file may set.
type RepoBuild struct {
	Dockerfile string `yaml:"dockerfile" json:"dockerfile"`
	// Args are added to the server's build args; the file's value wins for a
	// name both set.
	Args   map[string]string `yaml:"args" json:"args"`
	Target string            `yaml:"target" json:"target"`
}

// RepoBase is the part of Base the pipeline file may set.
type RepoBase struct {
	Dockerfile string   `yaml:"dockerfile" json:"dockerfile"`
	Inputs     []string `yaml:"inputs" json:"inputs"`
}

// RepoFileError is a pipeline file gantry will not use. Its Error is one line
// naming the file and the first key at fault, short enough for a commit
// status's description; Problems holds every problem.
type RepoFileError struct {
	// File is the file's name in the repository, e.g. ".gantry.yml".
	File     string
	Problems Errors
}

// Error is "<file>: <key>: <message>", with a count of the other problems.
func (e *RepoFileError) Error() string {
	s := e.File + ": " + e.Problems[0].Error()
	if n := len(e.Problems) - 1; n > 0 {
		s += fmt.Sprintf(" (and %d more)", n)
	}
	return s
}

// serverKey says why a key the server's config knows is refused in the file.
const serverKey = "set in the server's config, not the repository"

// refuseRepoKey names the keys of the server's config that the file may not
// set, for a message that says where they belong instead of "unknown key".
func refuseRepoKey(t reflect.Type, name string) string {
	var server []reflect.Type
	switch t {
	case reflect.TypeFor[RepoFile]():
		server = []reflect.Type{reflect.TypeFor[Project](), reflect.TypeFor[Config]()}
	case reflect.TypeFor[RepoBuild]():
		server = []reflect.Type{reflect.TypeFor[Build]()}
	case reflect.TypeFor[RepoBase]():
		server = []reflect.Type{reflect.TypeFor[Base]()}
	}
	for _, st := range server {
		if _, ok := yamlFields(st)[name]; ok {
			return serverKey
		}
	}
	return ""
}

// ApplyRepoFile returns the project as a commit's pipeline file makes it: the
// server's project p with the file's settings applied, tests held to
// p.Limits. data is the file's content; nil (no such file at the commit) or a
// file with no settings leaves p as it is. A file gantry will not use gives a
// *RepoFileError, and nothing of it applies. The caller applies the untrusted
// settings on top, as for the server's own project.
func (p Project) ApplyRepoFile(data []byte) (Project, error) {
	name := p.PipelineFileName()
	if name == "" || data == nil {
		return p, nil
	}
	fail := func(errs Errors) (Project, error) { return Project{}, &RepoFileError{File: name, Problems: errs} }
	var errs Errors
	switch {
	case len(data) > MaxRepoFileSize:
		errs.add("", "is %d bytes, more than the %d gantry reads", len(data), MaxRepoFileSize)
		return fail(errs)
	case !utf8.Valid(data):
		errs.add("", "is not UTF-8 text")
		return fail(errs)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		errs.add("", "is not YAML: %v", strings.TrimPrefix(err.Error(), "yaml: "))
		return fail(errs)
	}
	// A second document would be ignored by the decode, and a reader of the file would not
	// know which one gantry follows.
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		errs.add("", "must hold one YAML document, not several (---)")
		return fail(errs)
	}
	if len(doc.Content) == 0 {
		return p, nil // empty, or only comments
	}
	if err := boundedTree(doc.Content[0]); err != nil {
		errs.add("", "%v", err)
		return fail(errs)
	}
	var f RepoFile
	root := doc.Content[0]
	prep := preparer{errs: &errs, expanded: map[*yaml.Node]bool{}, literal: true, refuse: refuseRepoKey}
	if prep.value(root, reflect.TypeFor[RepoFile](), "") {
		if err := root.Decode(&f); err != nil {
			errs.add("", "%v", err)
		}
	}
	if len(errs) > 0 {
		return fail(errs)
	}
	out := p.withRepoFile(f, &errs)
	if len(errs) > 0 {
		return fail(errs)
	}
	return out, nil
}

// boundedTree refuses a tree too deep or, with its aliases followed, too big
// to decode: yaml.v3 expands every alias when decoding.
func boundedTree(root *yaml.Node) error {
	budget := maxRepoNodes
	var walk func(n *yaml.Node, depth int) error
	walk = func(n *yaml.Node, depth int) error {
		if budget--; budget < 0 {
			return fmt.Errorf("has more than %d values once its aliases are expanded", maxRepoNodes)
		}
		if depth > maxRepoDepth {
			return fmt.Errorf("nests deeper than %d levels", maxRepoDepth)
		}
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			return walk(n.Alias, depth+1)
		}
		for _, c := range n.Content {
			if err := walk(c, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root, 0)
}

// withRepoFile applies a decoded file to a copy of p and checks the result.
// Key paths in the problems are the file's own.
func (p Project) withRepoFile(f RepoFile, errs *Errors) Project {
	if f.Build.Dockerfile != "" {
		p.Build.Dockerfile = f.Build.Dockerfile
	}
	if f.Build.Target != "" {
		p.Build.Target = f.Build.Target
	}
	if len(f.Build.Args) > 0 {
		args := make(map[string]string, len(p.Build.Args)+len(f.Build.Args))
		for k, v := range p.Build.Args {
			args[k] = v
		}
		for k, v := range f.Build.Args {
			args[k] = v
		}
		p.Build.Args = args
	}
	checkRepoPath(errs, "build.dockerfile", f.Build.Dockerfile)
	checkNames(errs, "build.args", f.Build.Args)
	if _, ok := f.Build.Args["BASE_IMAGE"]; ok {
		errs.add("build.args.BASE_IMAGE", "is reserved: gantry sets it to the base image of two-tier builds")
	}
	if b := f.Base; b != nil {
		if p.Base == nil {
			errs.add("base", "needs base.image in the server's config: the server says where base images go")
		} else {
			base := *p.Base
			base.Dockerfile = cmp.Or(b.Dockerfile, base.Dockerfile)
			if b.Inputs != nil {
				base.Inputs = b.Inputs
			}
			base.validatePaths(errs, "base")
			p.Base = &base
		}
	}
	if py := f.Generate.Python; py != nil {
		gen := *py
		gen.Image = cmp.Or(gen.Image, defaultPythonImage)
		gen.validate(errs, "generate.python")
		p.Generate.Python = &gen
	}
	if f.Tests != nil {
		p.Tests = p.Limits.fileTests(f.Tests)
		if len(p.Tests) > maxRepoTests {
			errs.add("tests", "has %d tests, more than the %d gantry runs from a pipeline file", len(p.Tests), maxRepoTests)
		}
		p.validateTests(errs, "tests")
		for i, t := range p.Tests {
			if len(t.Name) > maxTestName {
				errs.add(index("tests", i)+".name", "is %d characters, more than %d", len(t.Name), maxTestName)
			}
			p.Limits.check(errs, index("tests", i), t)
		}
	}
	return p
}

// fileTests fills the defaults of the file's tests, each one no more than the
// ceilings allow, so that a ceiling below a default does not refuse a test
// that asked for nothing.
func (l Limits) fileTests(tests []Test) []Test {
	out := slices.Clone(tests)
	net := NetworkNone
	if !slices.Contains(l.Networks, NetworkNone) && len(l.Networks) > 0 {
		net = l.Networks[0]
	}
	for i := range out {
		t := &out[i]
		t.Timeout = cmp.Or(t.Timeout, Duration{min(defaultTestTimeout, l.Timeout.Duration)})
		t.Memory = cmp.Or(t.Memory, min(defaultTestMemory, l.Memory))
		t.CPUs = cmp.Or(t.CPUs, min(defaultTestCPUs, l.CPUs))
		t.Pids = cmp.Or(t.Pids, min(int64(defaultTestPids), l.Pids))
		t.Network = cmp.Or(t.Network, net)
	}
	return out
}

// check refuses a test of the file that asks for more than the ceilings.
func (l Limits) check(errs *Errors, k string, t Test) {
	const above = "%s is above the server's ceiling of %s (limits.%s in the server's config)"
	if t.Timeout.Duration > l.Timeout.Duration {
		errs.add(field(k, "timeout"), above, t.Timeout, l.Timeout, "timeout")
	}
	if t.Memory > l.Memory {
		errs.add(field(k, "memory"), above, t.Memory, l.Memory, "memory")
	}
	if t.CPUs > l.CPUs {
		errs.add(field(k, "cpus"), "%v is above the server's ceiling of %v (limits.cpus in the server's config)", t.CPUs, l.CPUs)
	}
	if t.Pids > l.Pids {
		errs.add(field(k, "pids"), "%d is above the server's ceiling of %d (limits.pids in the server's config)", t.Pids, l.Pids)
	}
	if t.Network != "" && !slices.Contains(l.Networks, t.Network) {
		errs.add(field(k, "network"), "%q is not allowed by the server (limits.networks: %s)", t.Network, strings.Join(l.Networks, ", "))
	}
}

// validateRepoFile checks the project's pipeline file name and its ceilings.
func (p *Project) validateRepoFile(errs *Errors, key string) {
	if name := p.PipelineFileName(); name != "" && (!filepath.IsLocal(filepath.FromSlash(name)) || strings.HasSuffix(name, "/")) {
		errs.add(field(key, "pipeline_file"), "%q must be a file's relative path inside the repository, or \"\" to read none", name)
	}
	k := field(key, "limits")
	l := p.Limits
	if l.Timeout.Duration <= 0 {
		errs.add(field(k, "timeout"), "must be positive, not %s", l.Timeout)
	}
	if l.Memory < minMemory {
		errs.add(field(k, "memory"), "must be at least %s, Docker's minimum, not %s", minMemory, l.Memory)
	}
	if !(l.CPUs > 0) {
		errs.add(field(k, "cpus"), "must be more than 0, not %v", l.CPUs)
	}
	if l.Pids < 1 {
		errs.add(field(k, "pids"), "must be at least 1, not %d", l.Pids)
	}
	if len(l.Networks) == 0 {
		errs.add(field(k, "networks"), "must not be empty")
	}
	for i, n := range l.Networks {
		oneOf(errs, index(field(k, "networks"), i), n, NetworkNone, NetworkBridge)
	}
}
