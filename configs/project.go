package configs

import (
	"cmp"
	"regexp"
	"strings"
	"time"
)

// Values accepted by Build.Pull.
const (
	// PullMissing pulls a base image only when the engine does not have it.
	PullMissing = "missing"
	// PullAlways pulls base images on every build, like docker build --pull.
	PullAlways = "always"
)

// Values accepted by Test.Network and Build.Network.
const (
	// NetworkNone gives a container only a loopback interface.
	NetworkNone = "none"
	// NetworkBridge gives a container Docker's default bridge network.
	NetworkBridge = "bridge"
)

// Per-project defaults.
const (
	defaultDockerfile     = "Dockerfile"
	defaultContext        = "."
	defaultPythonImage    = "python:3.11-slim"
	defaultBuildMemory    = 4 * GiB
	defaultBuildCPUs      = 2.0
	defaultTestTimeout    = 10 * time.Minute
	defaultApprovalExpiry = 7 * 24 * time.Hour
	defaultTestMemory     = 512 * MiB
	defaultTestCPUs       = 1.0
	defaultTestPids       = 256
	defaultReleaseRef     = "master"
	defaultReleaseTag     = "latest"
	defaultReleaseShort   = "{{.ShortSHA}}"
	defaultTagPushTag     = "{{.Tag}}"
	defaultLimitTimeout   = time.Hour
	defaultLimitMemory    = 4 * GiB
	defaultLimitCPUs      = 4.0
	defaultLimitPids      = 4096
)

// Project is one GitLab project gantry builds, tests and releases.
type Project struct {
	// Path is GitLab's path_with_namespace (group/app). A numeric id is refused:
	// webhooks name projects by path, so it would never match.
	Path string `yaml:"path" json:"path"`
	// WebhookSecret is the token GitLab sends in X-Gitlab-Token.
	WebhookSecret Secret `yaml:"webhook_secret" json:"webhook_secret"`
	// WebhookSecretFile, when set, is read into WebhookSecret.
	WebhookSecretFile string `yaml:"webhook_secret_file" json:"webhook_secret_file"`
	// Image is the repository the app image is pushed to, without a tag.
	Image string `yaml:"image" json:"image"`
	// Build says how the app image is built.
	Build Build `yaml:"build" json:"build"`
	// Base, when set, makes the build two-tier: a base image rebuilt only
	// when its inputs change. With the pipeline file on, base.image alone
	// is allowed: the tier is two-tier only for commits whose file declares
	// base.dockerfile and base.inputs.
	Base *Base `yaml:"base" json:"base"`
	// Generate renders Dockerfiles for projects that have none.
	Generate Generate `yaml:"generate" json:"generate"`
	// Supersede lets a newer push to a branch cancel the branch's older
	// build and test jobs. Nil means true; use SupersedeEnabled.
	Supersede *bool `yaml:"supersede" json:"supersede"`
	// Tests run in parallel in containers from the built image.
	Tests []Test `yaml:"tests" json:"tests"`
	// Release says when and under which tags the tested image is pushed.
	Release Release `yaml:"release" json:"release"`
	// Schedules start pipelines on a cron schedule.
	Schedules []Schedule `yaml:"schedules" json:"schedules"`
	// Approval says which merge requests wait for an approval before any of
	// their code is fetched or run: ApprovalNone, ApprovalForks (default),
	// ApprovalNonMembers or ApprovalAll. Pushes never wait.
	Approval string `yaml:"approval" json:"approval"`
	// ApprovalExpiry cancels a pipeline nobody approved after this long.
	// Default 7 days.
	ApprovalExpiry Duration `yaml:"approval_expiry" json:"approval_expiry"`
	// Untrusted is how code from forks, or that needed approval, is built.
	Untrusted Untrusted `yaml:"untrusted" json:"untrusted"`
	// PipelineFile is the repository's own pipeline file, read at the
	// pipeline's commit (see RepoFile). Nil means ".gantry.yml"; "" turns the
	// file off, and the server's settings alone apply. Use PipelineFileName.
	PipelineFile *string `yaml:"pipeline_file" json:"pipeline_file"`
	// Limits are the ceilings a test set in the pipeline file may ask for.
	Limits Limits `yaml:"limits" json:"limits"`
}

// DefaultPipelineFile is the repository file read when a project does not
// name another.
const DefaultPipelineFile = ".gantry.yml"

// PipelineFileName is the repository file holding the project's pipeline
// settings, "" when the project does not read one.
func (p *Project) PipelineFileName() string {
	if p.PipelineFile == nil {
		return DefaultPipelineFile
	}
	return *p.PipelineFile
}

// Limits are the most a test defined in the repository's pipeline file may
// take. The server's own tests are the operator's word and are not held to
// them.
type Limits struct {
	// Timeout is the longest test timeout. Default 1h.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// Memory is the largest test memory limit. Default 4GiB.
	Memory ByteSize `yaml:"memory" json:"memory"`
	// CPUs is the largest test CPU limit. Default 4.
	CPUs float64 `yaml:"cpus" json:"cpus"`
	// Pids is the largest test process limit. Default 4096.
	Pids int64 `yaml:"pids" json:"pids"`
	// Networks are the networks a test may ask for. Default [none]: a test
	// on the bridge reaches whatever the Docker host reaches, so the
	// operator opts in.
	Networks []string `yaml:"networks" json:"networks"`
}

// Values accepted by Project.Approval.
const (
	ApprovalNone       = "none"
	ApprovalForks      = "forks"
	ApprovalNonMembers = "non-members"
	ApprovalAll        = "all"
)

// Untrusted sets how untrusted code is built: a fork's, or one that had to
// be approved. Such code receives none of build.args or tests[].env except
// the names listed in Pass, because a Dockerfile or a test can print them.
type Untrusted struct {
	// Network is the build steps' network. Default: build.network.
	Network string `yaml:"network" json:"network"`
	// Memory limits every build step. Default: build.memory.
	Memory ByteSize `yaml:"memory" json:"memory"`
	// CPUs limits every build step's CPU time. Default: build.cpus.
	CPUs float64 `yaml:"cpus" json:"cpus"`
	// Pass names the build arguments and test variables untrusted code
	// still receives.
	Pass []string `yaml:"pass" json:"pass"`
}

// SupersedeEnabled reports whether newer pushes cancel older work on the same
// branch. It is true unless the project turned it off.
func (p *Project) SupersedeEnabled() bool {
	return p.Supersede == nil || *p.Supersede
}

// Build says how the app image is built. Paths are relative to the repository.
type Build struct {
	// Dockerfile is the app Dockerfile. Default "Dockerfile".
	Dockerfile string `yaml:"dockerfile" json:"dockerfile"`
	// Context is the build context directory. Default ".".
	Context string `yaml:"context" json:"context"`
	// Args are build arguments, given to both the base and the app build.
	Args map[string]string `yaml:"args" json:"args"`
	// Target is the multi-stage target to build; empty builds the last stage.
	Target string `yaml:"target" json:"target"`
	// Pull is PullMissing (default) or PullAlways.
	Pull string `yaml:"pull" json:"pull"`
	// Memory limits every build step, base and app, without swap: a step
	// that outgrows it is killed and fails the build. Default 4GiB.
	Memory ByteSize `yaml:"memory" json:"memory"`
	// CPUs limits every build step's CPU time. Default 2.
	CPUs float64 `yaml:"cpus" json:"cpus"`
	// Network is the build steps' network: NetworkBridge (default, because
	// installing dependencies needs the package index) or NetworkNone.
	Network string `yaml:"network" json:"network"`
}

// Local is the project `gantry exec` runs on a working tree that no configuration describes:
// images named for the directory that never leave the engine (the base under localhost/, so
// that no registry is asked for it), the defaults everywhere else, and ceilings for a test the
// repository's pipeline file defines as wide as one's own machine allows: any network.
func Local(name string) Project {
	image := "gantry-exec/" + strings.ToLower(name)
	p := Project{Path: "local/" + name, Image: image, Base: &Base{Image: "localhost/" + image + "-base"},
		Limits: Limits{Networks: []string{NetworkNone, NetworkBridge}}}
	p.setDefaults()
	return p
}

// Base is the first tier of a two-tier build: an image with the slow-changing
// dependencies, tagged by a hash of its inputs and built only when that tag
// does not exist yet. The app build receives it as build-arg BASE_IMAGE.
type Base struct {
	// Dockerfile is the base Dockerfile, relative to the repository.
	Dockerfile string `yaml:"dockerfile" json:"dockerfile"`
	// Inputs are the files whose content decides the base image's tag.
	Inputs []string `yaml:"inputs" json:"inputs"`
	// Image is the repository of the base image, without a tag.
	Image string `yaml:"image" json:"image"`
}

// Generate holds the generators for projects without a Dockerfile.
type Generate struct {
	// Python renders Dockerfiles for projects with requirements.txt,
	// pyproject.toml or setup.py.
	Python *GeneratePython `yaml:"python" json:"python"`
}

// GeneratePython parameterises the Python Dockerfile templates.
type GeneratePython struct {
	// Image is the Python image to start from. Default "python:3.11-slim".
	Image string `yaml:"image" json:"image"`
	// IndexURL is a pip index mirror. It must not carry credentials,
	// because it ends up in the image.
	IndexURL string `yaml:"index_url" json:"index_url"`
	// Wheels is a repository folder of wheels for offline installs.
	Wheels string `yaml:"wheels" json:"wheels"`
	// SystemPackages are Debian packages installed with apt-get.
	SystemPackages []string `yaml:"system_packages" json:"system_packages"`
	// SetupPy installs the project itself with pip install . (setup.py or
	// pyproject.toml) in the app image; without a requirements.txt that is
	// also how its dependencies are installed.
	SetupPy bool `yaml:"setup_py" json:"setup_py"`
	// Command is the image's CMD.
	Command []string `yaml:"command" json:"command"`
}

// Test is one test job, run in a container from the test image.
type Test struct {
	// Name names the job and its commit status; unique within the project.
	Name string `yaml:"name" json:"name"`
	// Command is run without a shell; exit 0 passes.
	Command []string `yaml:"command" json:"command"`
	// Env is added to the container's environment.
	Env map[string]string `yaml:"env" json:"env"`
	// Timeout stops the test after this long. Default 10m.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// Memory limits the container's memory (without swap). Default 512MiB.
	Memory ByteSize `yaml:"memory" json:"memory"`
	// CPUs limits the container's CPU share. Default 1.
	CPUs float64 `yaml:"cpus" json:"cpus"`
	// Pids limits the number of processes in the container. Default 256.
	Pids int64 `yaml:"pids" json:"pids"`
	// Network is NetworkNone (default) or NetworkBridge.
	Network string `yaml:"network" json:"network"`
	// JUnit is the absolute path, inside the test's container, of the JUnit
	// XML report the test writes. gantry copies it out when the test ends and
	// names the failing cases in the commit status. Optional.
	JUnit string `yaml:"junit" json:"junit"`
	// Coverage is a regular expression (Go syntax; GitLab CI's /slashes/ are
	// allowed) with exactly one group, matched on each line of the test's
	// output like GitLab CI's coverage keyword: the last matching line wins,
	// and the group's first number is sent as the status's coverage. Optional.
	Coverage string `yaml:"coverage" json:"coverage"`
}

// CoverageRegexp is the compiled Coverage pattern, nil when there is none
// (or it does not compile, which validation reports).
func (t Test) CoverageRegexp() *regexp.Regexp {
	re, err := compileCoverage(t.Coverage)
	if err != nil {
		return nil
	}
	return re
}

// compileCoverage compiles a coverage pattern, without GitLab CI's enclosing
// slashes when it has them; nil for "".
func compileCoverage(pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, nil
	}
	if len(pattern) > 1 && strings.HasPrefix(pattern, "/") && strings.HasSuffix(pattern, "/") {
		pattern = pattern[1 : len(pattern)-1]
	}
	return regexp.Compile(pattern)
}

// Release says which pipelines push the tested image and under which tags.
type Release struct {
	// Branches are the branch names whose pushes release, matched exactly.
	// Default [master].
	Branches []string `yaml:"branches" json:"branches"`
	// Tags are text/template strings over .SHA, .ShortSHA, .Ref and
	// .PipelineID. Default ["latest", "{{.ShortSHA}}"].
	Tags []string `yaml:"tags" json:"tags"`
	// TagPushes also releases on tag pushes whose tag matches TagPattern.
	TagPushes bool `yaml:"tag_pushes" json:"tag_pushes"`
	// TagPattern is a regular expression a pushed tag's whole name must
	// match to release; required when TagPushes is true.
	TagPattern string `yaml:"tag_pattern" json:"tag_pattern"`
	// TagTags are the tags a tag push releases under, templates like Tags
	// with .Tag as well. Default ["{{.Tag}}"]: a tag push never moves
	// latest unless listed here.
	TagTags []string `yaml:"tag_tags" json:"tag_tags"`
}

// TagRegexp is TagPattern anchored to match whole tag names, nil when tag
// pushes do not release (or the pattern does not compile: validation says so).
func (r Release) TagRegexp() *regexp.Regexp {
	if !r.TagPushes || r.TagPattern == "" {
		return nil
	}
	re, err := regexp.Compile(`^(?:` + r.TagPattern + `)$`)
	if err != nil {
		return nil
	}
	return re
}

// Schedule starts a pipeline for Ref whenever Cron fires.
type Schedule struct {
	// Cron is a standard five-field cron expression or a descriptor such as @daily.
	Cron string `yaml:"cron" json:"cron"`
	// Ref is the branch or tag to run.
	Ref string `yaml:"ref" json:"ref"`
}

// setDefaults fills what the file left out. A nil list means the key was
// absent and gets the default; an explicit empty list is kept so that
// validation can refuse it rather than silently release from master.
func (p *Project) setDefaults() {
	p.Build.Dockerfile = cmp.Or(p.Build.Dockerfile, defaultDockerfile)
	p.Build.Context = cmp.Or(p.Build.Context, defaultContext)
	p.Build.Pull = cmp.Or(p.Build.Pull, PullMissing)
	p.Build.Memory = cmp.Or(p.Build.Memory, defaultBuildMemory)
	p.Build.CPUs = cmp.Or(p.Build.CPUs, defaultBuildCPUs)
	p.Build.Network = cmp.Or(p.Build.Network, NetworkBridge)
	if py := p.Generate.Python; py != nil {
		py.Image = cmp.Or(py.Image, defaultPythonImage)
	}
	if p.Supersede == nil {
		p.Supersede = new(true)
	}
	p.Approval = cmp.Or(p.Approval, ApprovalForks)
	p.ApprovalExpiry = cmp.Or(p.ApprovalExpiry, Duration{defaultApprovalExpiry})
	for i := range p.Tests {
		t := &p.Tests[i]
		t.Timeout = cmp.Or(t.Timeout, Duration{defaultTestTimeout})
		t.Memory = cmp.Or(t.Memory, defaultTestMemory)
		t.CPUs = cmp.Or(t.CPUs, defaultTestCPUs)
		t.Pids = cmp.Or(t.Pids, defaultTestPids)
		t.Network = cmp.Or(t.Network, NetworkNone)
	}
	p.Limits.Timeout = cmp.Or(p.Limits.Timeout, Duration{defaultLimitTimeout})
	p.Limits.Memory = cmp.Or(p.Limits.Memory, defaultLimitMemory)
	p.Limits.CPUs = cmp.Or(p.Limits.CPUs, defaultLimitCPUs)
	p.Limits.Pids = cmp.Or(p.Limits.Pids, defaultLimitPids)
	if p.Limits.Networks == nil {
		p.Limits.Networks = []string{NetworkNone}
	}
	if p.Release.Branches == nil {
		p.Release.Branches = []string{defaultReleaseRef}
	}
	if p.Release.Tags == nil {
		p.Release.Tags = []string{defaultReleaseTag, defaultReleaseShort}
	}
	if p.Release.TagPushes && p.Release.TagTags == nil {
		p.Release.TagTags = []string{defaultTagPushTag}
	}
}
