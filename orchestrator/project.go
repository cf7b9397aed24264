package orchestrator

import (
	"regexp"
	"time"
)

// Project is what gantry knows about one configured GitLab project: how to build, test and
// release it. cmd/gantry translates the configuration into it.
type Project struct {
	// Path is GitLab's path_with_namespace, e.g. "group/app".
	Path string
	// Image is the repository the images go to, without a tag, e.g. "registry.example.com/group/app".
	Image string
	Build BuildSpec
	Base  *BaseSpec
	// Generate, when set, renders base and app Dockerfiles for a Python project that has no
	// Dockerfile of its own.
	Generate  *GenerateSpec
	Tests     []TestSpec
	Release   ReleasePolicy
	Supersede bool
	// Approval says which merge requests wait for approval; "" is ApprovalForks.
	Approval ApprovalMode
	// ApprovalExpiry is how long a pipeline waits for approval before it is canceled; 0 is
	// DefaultApprovalExpiry.
	ApprovalExpiry time.Duration
	// Untrusted replaces the build's limits for untrusted pipelines (Pipeline.Untrusted).
	Untrusted UntrustedSpec
	// PipelineFile is the repository file that may set the project's tests and build settings
	// at each commit (.gantry.yml); "" when the project reads none. With one, a pipeline's
	// test jobs are planned when the file is read (planTests), not at intake.
	PipelineFile string
}

// DefaultApprovalExpiry is how long a pipeline waits for approval by default: long enough for
// a merge request opened on a Friday evening.
const DefaultApprovalExpiry = 7 * 24 * time.Hour

func (p Project) approvalMode() ApprovalMode {
	if p.Approval == "" {
		return ApprovalForks
	}
	return p.Approval
}

func (p Project) approvalExpiry() time.Duration {
	if p.ApprovalExpiry <= 0 {
		return DefaultApprovalExpiry
	}
	return p.ApprovalExpiry
}

// UntrustedSpec is how untrusted code is built and tested. Untrusted code gets none of the
// configured build arguments or test environment, except the names in Pass: they are how a
// project hands its credentials to builds and tests, and a fork's Dockerfile or test could
// print them.
type UntrustedSpec struct {
	// Network, Memory and CPUs replace the build's (BuildSpec) when set.
	Network string
	Memory  int64
	CPUs    float64
	// Pass names the build arguments and test variables untrusted code still receives.
	Pass []string
}

// forUntrusted is the project as an untrusted pipeline sees it: the build's limits replaced,
// the build arguments and test environment cut to the names the project lets through.
func (p Project) forUntrusted() Project {
	u := p.Untrusted
	if u.Network != "" {
		p.Build.Network = u.Network
	}
	if u.Memory != 0 {
		p.Build.Memory = u.Memory
	}
	if u.CPUs != 0 {
		p.Build.CPUs = u.CPUs
	}
	p.Build.Args = passed(p.Build.Args, u.Pass)
	tests := make([]TestSpec, len(p.Tests))
	for i, t := range p.Tests {
		t.Env = passed(t.Env, u.Pass)
		tests[i] = t
	}
	p.Tests = tests
	return p
}

// passed keeps the entries of m named in names.
func passed(m map[string]string, names []string) map[string]string {
	if m == nil {
		return nil
	}
	out := map[string]string{}
	for _, n := range names {
		if v, ok := m[n]; ok {
			out[n] = v
		}
	}
	return out
}

// BuildSpec says how the app image is built.
type BuildSpec struct {
	Dockerfile string
	Context    string
	Args       map[string]string
	Target     string
	PullAlways bool
	// Memory limits each build step's container, without swap, in bytes; 0 means the
	// executor's default.
	Memory int64
	// CPUs limits each build step's CPU time, in CPUs; 0 means no limit.
	CPUs float64
	// Network is the build steps' network, "bridge" or "none"; "" means "bridge", because
	// dependency installs need to reach their index.
	Network string
}

// BaseSpec declares the dependency tier: an image built from Dockerfile with the Inputs as its
// context, tagged by a content hash of both, and given to the app build as BASE_IMAGE.
type BaseSpec struct {
	Dockerfile string
	Inputs     []string
	Image      string
}

// GenerateSpec holds the options of the origin document's generated Python images.
type GenerateSpec struct {
	// Image is the Python image the base starts from.
	Image string
	// IndexURL is a pip index mirror (pip -i).
	IndexURL string
	// Wheels is a folder of wheels in the repository for offline installs
	// (pip --no-index --find-links).
	Wheels string
	// SystemPackages are Debian packages installed with apt-get in the base.
	SystemPackages []string
	// SetupPy installs the project itself with pip install . (setup.py or pyproject.toml).
	SetupPy bool
	// Command is the app image's CMD.
	Command []string
}

// TestSpec is one configured test job.
type TestSpec struct {
	Name    string
	Command []string
	Env     map[string]string
	Timeout time.Duration
	Memory  int64 // bytes
	CPUs    float64
	Pids    int64
	Network string // "none" or "bridge"
	// JUnit is the absolute path, in the test's container, of the JUnit XML report the test
	// writes; "" when it writes none.
	JUnit string
	// Coverage finds the test's coverage in its output, in its one group; nil when the test
	// reports none.
	Coverage *regexp.Regexp
}

// ReleasePolicy says which pushes release and under which tags.
type ReleasePolicy struct {
	Branches []string
	// Tags are text/template strings executed against TagData, for branch releases.
	Tags []string
	// TagPushes lets a tag push release, when the tag's name matches TagPattern.
	TagPushes bool
	// TagPattern is matched against a pushed tag's name; nil matches nothing, so a hook-secret
	// holder cannot release by pushing any tag.
	TagPattern *regexp.Regexp
	// TagTags are the templates of a tag push's release, by default the tag's own name: a
	// tag push never moves latest unless the project lists it here.
	TagTags []string
}

// Templates are the release tag templates for a trigger's pipeline.
func (r ReleasePolicy) Templates(t Trigger) []string {
	if t.Kind == TriggerTag {
		return r.TagTags
	}
	return r.Tags
}

// TagData is what a release tag template sees. Tag is the pushed tag's name, "" for a branch,
// so that {{.Tag}} in a branch's templates fails to render rather than push an empty tag.
type TagData struct {
	SHA, ShortSHA, Ref, PipelineID, Tag string
}
