package orchestrator

import "time"

// Project is what gantry knows about one configured GitLab project: how to build, test and
// release it. cmd/gantry translates the configuration into it.
type Project struct {
	// Path is GitLab's path_with_namespace, e.g. "group/app".
	Path string
	// Image is the repository the images go to, without a tag, e.g. "registry.example.com/group/app".
	Image     string
	Build     BuildSpec
	Base      *BaseSpec
	Tests     []TestSpec
	Release   ReleasePolicy
	Supersede bool
}

// BuildSpec says how the app image is built.
type BuildSpec struct {
	Dockerfile string
	Context    string
	Args       map[string]string
	Target     string
	PullAlways bool
}

// BaseSpec declares the dependency tier: an image built from Dockerfile with the Inputs as its
// context, tagged by a content hash of both, and given to the app build as BASE_IMAGE.
type BaseSpec struct {
	Dockerfile string
	Inputs     []string
	Image      string
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
}

// ReleasePolicy says which pushes release and under which tags.
type ReleasePolicy struct {
	Branches []string
	// Tags are text/template strings executed against TagData.
	Tags      []string
	TagPushes bool
}

// TagData is what a release tag template sees.
type TagData struct {
	SHA, ShortSHA, Ref, PipelineID string
}
