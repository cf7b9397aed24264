package configs

import (
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/robfig/cron/v3"
)

var (
	projectPath = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.][A-Za-z0-9_.-]*)+$`)
	projectID   = regexp.MustCompile(`^[0-9]+$`)
	testName    = regexp.MustCompile(`^[a-z0-9_.-]+$`)
	// imageName, dockerTag and imageDigest follow the grammar of
	// github.com/distribution/reference, which the engine applies.
	imageName    = regexp.MustCompile(`^(?:(?i:` + domain + `|\[[0-9a-f:]+\])(?::[0-9]+)?/)?` + pathPart + `(?:/` + pathPart + `)*$`)
	pathPart     = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	dockerTag    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	imageDigest  = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$`)
	debianPkg    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(?:=[A-Za-z0-9.+~:-]+)?$`)
	badRefRunes  = " \t~^:?*[\\"
	minMemory    = 6 * MiB // the smallest limit Docker accepts
	minBuildCPUs = 0.01    // a build's CPU quota is at least 1 ms per 100 ms period
	reservedJobs = []string{"build", "release"}
)

// tagData is what a release tag template sees. The release job must offer
// the same fields; validation renders every tag with sample values.
type tagData struct {
	SHA, ShortSHA, Ref, PipelineID, Tag string
}

func (p *Project) validate(errs *Errors, key string) {
	switch {
	case p.Path == "":
		errs.add(field(key, "path"), "required")
	case projectID.MatchString(p.Path):
		// Webhook payloads name the project by path, so an id would never match one; and
		// resolving ids through GitLab at start-up would make loading depend on GitLab.
		errs.add(field(key, "path"), "use the path_with_namespace (group/app), not the numeric id")
	case !projectPath.MatchString(p.Path):
		errs.add(field(key, "path"), "%q is not a GitLab project path (group/project)", p.Path)
	}
	if p.WebhookSecret == "" {
		errs.add(field(key, "webhook_secret"), "required (set webhook_secret or webhook_secret_file)")
	} else if why := weakSecret(p.WebhookSecret.Value()); why != "" {
		// Named by the key the operator has to change: the file, when the secret came from one.
		k := field(key, "webhook_secret")
		if p.WebhookSecretFile != "" {
			k += "_file"
		}
		errs.add(k, "%s", why)
	}
	checkImage(errs, field(key, "image"), p.Image, false)

	bk := field(key, "build")
	checkRepoPath(errs, field(bk, "dockerfile"), p.Build.Dockerfile)
	checkRepoPath(errs, field(bk, "context"), p.Build.Context)
	checkNames(errs, field(bk, "args"), p.Build.Args)
	if _, ok := p.Build.Args["BASE_IMAGE"]; ok {
		errs.add(field(bk, "args.BASE_IMAGE"), "is reserved: gantry sets it to the base image of two-tier builds")
	}
	oneOf(errs, field(bk, "pull"), p.Build.Pull, PullMissing, PullAlways)
	if p.Build.Memory < minMemory {
		errs.add(field(bk, "memory"), "must be at least %s, Docker's minimum, not %s", minMemory, p.Build.Memory)
	}
	if !(p.Build.CPUs >= minBuildCPUs) { // also catches .nan
		errs.add(field(bk, "cpus"), "must be at least %v, not %v", minBuildCPUs, p.Build.CPUs)
	}
	oneOf(errs, field(bk, "network"), p.Build.Network, NetworkBridge, NetworkNone)
	p.validateApproval(errs, key)

	if b := p.Base; b != nil {
		k := field(key, "base")
		// base.image alone says where the base images of a tier the pipeline file declares go.
		if b.Dockerfile != "" || b.Inputs != nil || p.PipelineFileName() == "" {
			b.validatePaths(errs, k)
		}
		checkImage(errs, field(k, "image"), b.Image, false)
		if b.Image != "" && b.Image == p.Image {
			errs.add(field(k, "image"), "must differ from %s", field(key, "image"))
		}
	}
	if py := p.Generate.Python; py != nil {
		py.validate(errs, field(key, "generate.python"))
	}
	p.validateTests(errs, field(key, "tests"))
	p.validateRepoFile(errs, key)
	p.Release.validate(errs, field(key, "release"))
	for i, s := range p.Schedules {
		k := index(field(key, "schedules"), i)
		if s.Cron == "" {
			errs.add(field(k, "cron"), "required")
		} else if _, err := cron.ParseStandard(s.Cron); err != nil {
			errs.add(field(k, "cron"), "%q is not a cron schedule: %v", s.Cron, err)
		}
		if s.Ref == "" {
			errs.add(field(k, "ref"), "required")
		}
	}
}

// validatePaths checks the base's Dockerfile and inputs, which a repository's
// pipeline file may set too.
func (b *Base) validatePaths(errs *Errors, k string) {
	if b.Dockerfile == "" {
		errs.add(field(k, "dockerfile"), "required")
	}
	checkRepoPath(errs, field(k, "dockerfile"), b.Dockerfile)
	if len(b.Inputs) == 0 {
		errs.add(field(k, "inputs"), "must not be empty: the inputs decide when the base image is rebuilt")
	}
	for i, in := range b.Inputs {
		checkRepoPath(errs, index(field(k, "inputs"), i), in)
	}
}

// validate checks the generator's settings, which a repository's pipeline
// file may set too.
func (py *GeneratePython) validate(errs *Errors, k string) {
	checkImage(errs, field(k, "image"), py.Image, true)
	checkHTTPURL(errs, field(k, "index_url"), py.IndexURL)
	checkRepoPath(errs, field(k, "wheels"), py.Wheels)
	for i, pkg := range py.SystemPackages {
		if !debianPkg.MatchString(pkg) {
			errs.add(index(field(k, "system_packages"), i), "%q is not a Debian package name", pkg)
		}
	}
}

func (p *Project) validateTests(errs *Errors, key string) {
	names := map[string]int{}
	for i, t := range p.Tests {
		k := index(key, i)
		switch j, dup := names[t.Name]; {
		case t.Name == "":
			errs.add(field(k, "name"), "required")
		case !testName.MatchString(t.Name):
			errs.add(field(k, "name"), "%q may only contain a-z, 0-9, '_', '.' and '-'", t.Name)
		case slices.Contains(reservedJobs, t.Name):
			errs.add(field(k, "name"), "%q is reserved for the %s job", t.Name, t.Name)
		case dup:
			errs.add(field(k, "name"), "%q is already used by %s", t.Name, index(key, j))
		default:
			names[t.Name] = i
		}
		if len(t.Command) == 0 {
			errs.add(field(k, "command"), "required")
		} else if t.Command[0] == "" {
			errs.add(index(field(k, "command"), 0), "must not be empty")
		}
		checkNames(errs, field(k, "env"), t.Env)
		if t.Timeout.Duration <= 0 {
			errs.add(field(k, "timeout"), "must be positive, not %s", t.Timeout)
		}
		if t.Memory < minMemory {
			errs.add(field(k, "memory"), "must be at least %s, Docker's minimum, not %s", minMemory, t.Memory)
		}
		if !(t.CPUs > 0) { // also catches .nan
			errs.add(field(k, "cpus"), "must be more than 0, not %v", t.CPUs)
		}
		if t.Pids < 1 {
			errs.add(field(k, "pids"), "must be at least 1, not %d", t.Pids)
		}
		oneOf(errs, field(k, "network"), t.Network, NetworkNone, NetworkBridge)
		t.validateReports(errs, k)
	}
}

// validateReports checks where a test's report and coverage come from. The
// report path is read through the Engine API, which wants it absolute; a clean
// path is the one the container's file system resolves, and keeps "..", "//"
// and "." out of a value that is also shown to users.
func (t Test) validateReports(errs *Errors, k string) {
	switch p := t.JUnit; {
	case p == "":
	case !path.IsAbs(p):
		errs.add(field(k, "junit"), "%q must be an absolute path in the container of test %q", p, t.Name)
	case path.Clean(p) != p:
		errs.add(field(k, "junit"), "%q of test %q is not a clean path (write %s)", p, t.Name, path.Clean(p))
	case p == "/":
		errs.add(field(k, "junit"), "of test %q must name a file, not /", t.Name)
	}
	re, err := compileCoverage(t.Coverage)
	switch {
	case err != nil:
		errs.add(field(k, "coverage"), "%q of test %q is not a regular expression: %v", t.Coverage, t.Name, err)
	case re != nil && re.NumSubexp() != 1:
		errs.add(field(k, "coverage"), "%q of test %q must have exactly one group, the percentage, not %d", t.Coverage, t.Name, re.NumSubexp())
	}
}

func (r *Release) validate(errs *Errors, key string) {
	if len(r.Branches) == 0 {
		errs.add(field(key, "branches"), "must not be empty")
	}
	for i, b := range r.Branches {
		switch {
		case strings.HasPrefix(b, "refs/"):
			errs.add(index(field(key, "branches"), i), "%q is a ref; write the branch name alone", b)
		case b == "" || strings.ContainsAny(b, badRefRunes) || strings.Contains(b, ".."):
			errs.add(index(field(key, "branches"), i), "%q is not a branch name", b)
		}
	}
	if len(r.Tags) == 0 {
		errs.add(field(key, "tags"), "must not be empty")
	}
	for i, tag := range r.Tags {
		if msg := checkTagTemplate(tag, r.Branches, ""); msg != "" {
			errs.add(index(field(key, "tags"), i), "%s", msg)
		}
	}
	if !r.TagPushes {
		return
	}
	if r.TagPattern == "" {
		errs.add(field(key, "tag_pattern"), "required when tag_pushes is true: which tags release")
	} else if _, err := regexp.Compile(r.TagPattern); err != nil {
		errs.add(field(key, "tag_pattern"), "%q is not a regular expression: %v", r.TagPattern, err)
	}
	if len(r.TagTags) == 0 {
		errs.add(field(key, "tag_tags"), "must not be empty")
	}
	for i, tag := range r.TagTags {
		if msg := checkTagTemplate(tag, []string{"v1.2.3"}, "v1.2.3"); msg != "" {
			errs.add(index(field(key, "tag_tags"), i), "%s", msg)
		}
	}
}

// checkTagTemplate renders tag as the release job will, once per release
// branch, because a template such as {{.Ref}} is only a valid tag for some
// branch names; pushedTag is .Tag, "" for a branch's release. It returns
// what is wrong, or "".
func checkTagTemplate(tag string, branches []string, pushedTag string) string {
	tmpl, err := template.New("tag").Option("missingkey=error").Parse(tag)
	if err != nil {
		return fmt.Sprintf("%q is not a template: %v", tag, err)
	}
	if len(branches) == 0 {
		branches = []string{defaultReleaseRef}
	}
	for _, b := range branches {
		var out strings.Builder
		data := tagData{SHA: strings.Repeat("0123456789", 4), ShortSHA: "01234567", Ref: b, PipelineID: "42", Tag: pushedTag}
		if err := tmpl.Execute(&out, data); err != nil {
			return fmt.Sprintf("%q does not render: %v", tag, err)
		}
		switch s := out.String(); {
		case !dockerTag.MatchString(s):
			return fmt.Sprintf("%q renders %q for branch %s, which is not a Docker tag", tag, s, b)
		case strings.HasPrefix(strings.ToLower(s), "test-"), strings.HasPrefix(strings.ToLower(s), "fork-"):
			return fmt.Sprintf("%q renders %q: tags starting with test- or fork- name gantry's test images", tag, s)
		}
	}
	return ""
}

// checkImage checks a repository reference; with allowTag it may also carry
// a tag or digest, as a base image to build from does.
func checkImage(errs *Errors, key, s string, allowTag bool) {
	if s == "" {
		errs.add(key, "required")
		return
	}
	name, digest, hasDigest := strings.Cut(s, "@")
	tag := ""
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	switch {
	case !imageName.MatchString(name) || (tag != "" && !dockerTag.MatchString(tag)) || (hasDigest && !imageDigest.MatchString(digest)):
		errs.add(key, "%q is not an image reference (e.g. registry.example.com/group/app)", shown(s))
	case !allowTag && (tag != "" || hasDigest):
		errs.add(key, "%q must not have a tag or digest: release.tags name the tags", s)
	}
}

// checkRepoPath accepts an empty value or a relative path that stays inside
// the repository: builds must not read files from the gantry host.
func checkRepoPath(errs *Errors, key, p string) {
	if p != "" && !filepath.IsLocal(filepath.FromSlash(p)) {
		errs.add(key, "%q must be a relative path inside the repository", p)
	}
}

func (p *Project) validateApproval(errs *Errors, key string) {
	oneOf(errs, field(key, "approval"), p.Approval, ApprovalNone, ApprovalForks, ApprovalNonMembers, ApprovalAll)
	if p.ApprovalExpiry.Duration < time.Second {
		errs.add(field(key, "approval_expiry"), "must be at least 1s, not %s", p.ApprovalExpiry.Duration)
	}
	k := field(key, "untrusted")
	if p.Untrusted.Network != "" {
		oneOf(errs, field(k, "network"), p.Untrusted.Network, NetworkBridge, NetworkNone)
	}
	if m := p.Untrusted.Memory; m != 0 && m < minMemory {
		errs.add(field(k, "memory"), "must be at least %s, Docker's minimum, not %s", minMemory, m)
	}
	if c := p.Untrusted.CPUs; c != 0 && !(c >= minBuildCPUs) {
		errs.add(field(k, "cpus"), "must be at least %v, not %v", minBuildCPUs, c)
	}
	for i, name := range p.Untrusted.Pass {
		if _, arg := p.Build.Args[name]; arg {
			continue
		}
		if !slices.ContainsFunc(p.Tests, func(t Test) bool { _, ok := t.Env[name]; return ok }) {
			errs.add(fmt.Sprintf("%s.pass[%d]", k, i), "%q is neither a build arg nor a test's env variable", name)
		}
	}
}
