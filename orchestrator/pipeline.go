// Package orchestrator is gantry's domain: triggers, pipelines and their jobs, the job state
// machine, the release guard, and the engine that advances a pipeline from one job to the next.
// It imports no adapter; webhook, store, jobs and gitlab implement or call the interfaces it
// declares in ports.go.
package orchestrator

import (
	"fmt"
	"strings"
	"time"
)

// TriggerKind says what started a pipeline.
type TriggerKind string

// The kinds of trigger gantry knows.
const (
	TriggerPush         TriggerKind = "push"
	TriggerTag          TriggerKind = "tag_push"
	TriggerMergeRequest TriggerKind = "merge_request"
	TriggerAPI          TriggerKind = "api"
	TriggerSchedule     TriggerKind = "schedule"
	// TriggerLocal is `gantry exec` on a working tree: it never releases.
	TriggerLocal TriggerKind = "local"
	// TriggerReconcile is gantry's own, for a branch head GitLab has and no webhook announced
	// (GitLab does not redeliver, and disables failing hooks): it does what the push would have.
	TriggerReconcile TriggerKind = "reconcile"
)

// Trigger is an event that asks for a pipeline, already translated from GitLab's vocabulary.
type Trigger struct {
	// Project is the configured project's path_with_namespace (the project the hook belongs to).
	Project string `json:"project"`
	// ProjectID is the GitLab id of the project whose commit is built; statuses are posted there
	// and the source is fetched from there (for a merge request from a fork: the fork).
	ProjectID int64 `json:"project_id"`
	// HookProjectID is the id the delivery gives the project the hook belongs to (the payload's
	// project.id; a merge request's target). The engine refuses a trigger whose hook project is
	// not the configured project's id in GitLab. 0 when the webhook did not say; ProjectID then
	// stands for it unless Fork.
	HookProjectID int64 `json:"hook_project_id,omitempty"`
	// ProjectURL is the web URL of the project, recorded in the image's source label.
	ProjectURL string      `json:"project_url,omitempty"`
	Kind       TriggerKind `json:"kind"`
	// Ref is the short branch or tag name (for a merge request: its source branch).
	Ref string `json:"ref"`
	// SHA is the commit to build: checkout_sha for pushes, last_commit.id for merge requests.
	SHA string `json:"sha"`
	// Fork is true when the commit belongs to another project than the configured one.
	Fork bool `json:"fork,omitempty"`
	// MergeRequestIID is the merge request's number in the target project, when there is one.
	MergeRequestIID int64 `json:"merge_request_iid,omitempty"`
	// MergeRequestURL is the merge request's page in GitLab, when the trigger is one and said.
	MergeRequestURL string `json:"merge_request_url,omitempty"`
	// Commit is what the trigger said of the commit built, for the pages.
	Commit Commit `json:"commit,omitzero"`
	// DeliveryID identifies the webhook delivery (Idempotency-Key or X-Gitlab-Event-UUID).
	DeliveryID string `json:"delivery_id,omitempty"`
	// CheckSkip asks the engine to read the head commit's message for [skip ci] before running
	// anything, because the webhook did not carry it (more than 20 commits, or a tag push).
	CheckSkip bool `json:"check_skip,omitempty"`
	// Force runs the commit again although it has a pipeline (an API trigger that asked to).
	Force bool `json:"force,omitempty"`
}

// hookProjectID is the id the delivery gave the hook's project, 0 when unknown.
func (t Trigger) hookProjectID() int64 {
	if t.HookProjectID != 0 || t.Fork {
		return t.HookProjectID
	}
	return t.ProjectID
}

// ShortSHA is the first eight characters of the commit, as GitLab shows it.
func (t Trigger) ShortSHA() string {
	if len(t.SHA) > 8 {
		return t.SHA[:8]
	}
	return t.SHA
}

// Stage is one of the three stages of every pipeline, in this order.
type Stage string

// The stages, in order.
const (
	StageBuild   Stage = "build"
	StageTest    Stage = "test"
	StageRelease Stage = "release"
)

// Job names. Test jobs are named TestJobPrefix + the test's name.
const (
	JobBuild      = "build"
	JobRelease    = "release"
	TestJobPrefix = "test/"
)

// ErrorClass tells a failure of the infrastructure (retried) from a failure of the project.
type ErrorClass string

// The error classes.
const (
	ClassNone           ErrorClass = ""
	ClassProject        ErrorClass = "project"
	ClassInfrastructure ErrorClass = "infrastructure"
)

// Job is one unit of work of a pipeline, and one commit status in GitLab.
type Job struct {
	Name        string `json:"name"`
	Stage       Stage  `json:"stage"`
	State       State  `json:"state"`
	Attempt     int    `json:"attempt"`
	Description string `json:"description,omitempty"`
	// Blocked is set on a job skipped because a job of an earlier stage did not succeed: a
	// retry of the pipeline runs it again, unlike a job skipped for [skip ci] or an outdated
	// release.
	Blocked    bool       `json:"blocked,omitempty"`
	ErrorClass ErrorClass `json:"error_class,omitempty"`
	ExitCode   *int       `json:"exit_code,omitempty"`
	// Limits are the resource limits a test job ran under, as the engine enforced them.
	Limits *Limits `json:"limits,omitempty"`
	// Report is a test job's JUnit report, Coverage the coverage its output gave.
	Report     *TestReport `json:"report,omitempty"`
	Coverage   *float64    `json:"coverage,omitempty"`
	StartedAt  time.Time   `json:"started_at,omitzero"`
	FinishedAt time.Time   `json:"finished_at,omitzero"`
}

// Limits are a test container's limits, recorded on its job.
type Limits struct {
	Timeout     string  `json:"timeout"`
	MemoryBytes int64   `json:"memory_bytes"`
	CPUs        float64 `json:"cpus,omitempty"`
	Pids        int64   `json:"pids"`
	Network     string  `json:"network"`
}

// TestName is the configured test's name of a test job, or "" for other jobs.
func (j Job) TestName() string {
	name, ok := strings.CutPrefix(j.Name, TestJobPrefix)
	if !ok {
		return ""
	}
	return name
}

// Duration is how long the job ran, or zero when it has not finished.
func (j Job) Duration() time.Duration {
	if j.StartedAt.IsZero() || j.FinishedAt.IsZero() {
		return 0
	}
	return j.FinishedAt.Sub(j.StartedAt)
}

// Pipeline is one run of build → test → release for one commit of one project.
type Pipeline struct {
	ID        int64     `json:"id"`
	Trigger   Trigger   `json:"trigger"`
	CreatedAt time.Time `json:"created_at"`
	// GitLabPipelineID is the id GitLab gave the external pipeline holding our statuses; it is
	// sent with every later status so they all land in that pipeline.
	GitLabPipelineID int64 `json:"gitlab_pipeline_id,omitempty"`
	// Image is the ID of the image the build job produced; tests and release use exactly it.
	Image string `json:"image,omitempty"`
	// ImageRef is the test image's reference, <image>:test-<id>.
	ImageRef string `json:"image_ref,omitempty"`
	// Digest is the registry digest of the released image.
	Digest string `json:"digest,omitempty"`
	// Approval is set on a pipeline that had to wait for approval before running anything.
	Approval *Approval `json:"approval,omitempty"`
	// AttachedMergeRequestIID is the merge request whose event found this pipeline already
	// running its commit (a push's pipeline, then the merge request's hook); read it through
	// MergeRequestIID.
	AttachedMergeRequestIID int64 `json:"attached_merge_request_iid,omitempty"`
	// TestsPlanned is set once the test jobs were planned from the commit's pipeline file
	// (Project.PipelineFile); RepoFile is that file as read, nil when the commit has none.
	// Every job of the pipeline runs the project as that file makes it.
	TestsPlanned bool   `json:"-"`
	RepoFile     []byte `json:"-"`
	// ReleaseTrigger is the trigger that added the release job to a pipeline planned without
	// one: the push of a release branch whose commit a merge request's pipeline was already
	// running (Dedup). It, not Trigger, is what the release guard judges; read it through
	// ReleaseBy.
	ReleaseTrigger *Trigger `json:"release_trigger,omitempty"`
	Jobs           []Job    `json:"jobs"`
}

// ReleaseBy is the trigger that asks the pipeline to release: the one that added its release
// job, or else its own. The release guard, superseding and the branch's list of unfinished
// pipelines go by it.
func (p *Pipeline) ReleaseBy() Trigger {
	if p.ReleaseTrigger != nil {
		return *p.ReleaseTrigger
	}
	return p.Trigger
}

// MergeRequestIID is the merge request the pipeline runs for: its trigger's, or the one
// attached to it since.
func (p *Pipeline) MergeRequestIID() int64 {
	if p.Trigger.MergeRequestIID != 0 {
		return p.Trigger.MergeRequestIID
	}
	return p.AttachedMergeRequestIID
}

// Untrusted reports whether the pipeline runs code that nobody with write access to the
// project pushed: a fork's, or one that had to be approved. It gets the project's limits for
// untrusted code and none of its configured values (Project.Untrusted).
func (p *Pipeline) Untrusted() bool { return p.Trigger.Fork || p.Approval != nil }

// Job returns the named job.
func (p *Pipeline) Job(name string) (*Job, bool) {
	for i := range p.Jobs {
		if p.Jobs[i].Name == name {
			return &p.Jobs[i], true
		}
	}
	return nil, false
}

// State is the pipeline's state, which follows from its jobs the way GitLab composes it, or
// StateWaitingForApproval while it waits for approval.
func (p *Pipeline) State() State {
	st := p.jobsState()
	if p.Approval.Waiting() && !st.Terminal() {
		return StateWaitingForApproval
	}
	return st
}

func (p *Pipeline) jobsState() State {
	var running, pending, failed, canceled, created, success bool
	for _, j := range p.Jobs {
		switch j.State {
		case StateRunning:
			running = true
		case StatePending:
			pending = true
		case StateCreated:
			created = true
		case StateFailed:
			failed = true
		case StateCanceled:
			canceled = true
		case StateSuccess:
			success = true
		}
	}
	switch {
	case running:
		return StateRunning
	case pending:
		if success || failed || canceled {
			return StateRunning
		}
		return StatePending
	case created:
		return StateCreated
	case failed:
		return StateFailed
	case canceled:
		return StateCanceled
	case success:
		return StateSuccess
	}
	return StateSkipped
}

// EndedAt is when the pipeline's last job ended, or when it was created if none ran.
func (p *Pipeline) EndedAt() time.Time {
	var ended time.Time
	for _, j := range p.Jobs {
		if j.FinishedAt.After(ended) {
			ended = j.FinishedAt
		}
	}
	if ended.IsZero() {
		return p.CreatedAt
	}
	return ended
}

// StatusName is the commit status name of a job, e.g. "gantry/test/unit".
func StatusName(prefix, job string) string {
	return fmt.Sprintf("%s/%s", prefix, job)
}
