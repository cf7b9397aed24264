package orchestrator

import (
	"context"
	"errors"
	"io"
	"time"
)

// This file declares what the orchestrator needs from the outside world. The adapters implement
// these interfaces with the types of this package; cmd/gantry wires them together.

// ErrProjectFault marks a failure that is the project's own (a failing build step, a Dockerfile
// that does not parse, a missing base image): it is reported and not retried. Any error of an
// Executor that does not wrap it is taken as the infrastructure's fault and retried.
var ErrProjectFault = errors.New("project failure")

// ErrNotFound is returned when a pipeline, job or project does not exist.
var ErrNotFound = errors.New("not found")

// ErrNotReplicated is returned by CreatePipeline when the pipeline was written but fewer
// replicas than required acknowledged it in time: the caller must not promise it is kept.
var ErrNotReplicated = errors.New("not acknowledged by enough replicas")

// BuildRequest asks for the test image of a pipeline.
type BuildRequest struct {
	PipelineID int64
	Project    Project
	Trigger    Trigger
	// Source is the repository archive at Trigger.SHA as GitLab serves it: a tar.gz whose
	// entries all sit under one top-level folder.
	Source io.Reader
}

// BuildResult is what a successful build produced.
type BuildResult struct {
	ImageID  string // sha256:…
	ImageRef string // <image>:test-<pipeline id>
	// BaseImage is the base tier's reference when the project has one.
	BaseImage string
	// BaseBuilt is true when the base tier had to be built in this job.
	BaseBuilt bool
}

// TestRequest asks to run one test job in a container of the test image.
type TestRequest struct {
	PipelineID int64
	Project    string
	ImageID    string
	// ImageRef is the test image's reference, for an engine that does not have ImageID yet.
	ImageRef string
	Test     TestSpec
	// Env describes the run to the test (CI, GANTRY_JOB_ATTEMPT, GANTRY_COMMIT_SHA, …); the
	// test's own configured Env wins over it.
	Env map[string]string
}

// TestResult is how a test container ended. A non-zero exit is a result, not an error.
type TestResult struct {
	ExitCode  int
	OOMKilled bool
	TimedOut  bool
	Duration  time.Duration
	// Report is the test's JUnit report when TestSpec.JUnit names one and it could be read;
	// ReportErr says why not otherwise. Neither changes whether the test passed: a report
	// explains the exit code, it does not overrule it.
	Report    *TestReport
	ReportErr error
}

// ReleaseRequest asks to tag an image and push the tags.
type ReleaseRequest struct {
	PipelineID int64
	ImageID    string
	Repository string
	Tags       []string
}

// ReleaseResult is what the registry holds after a release.
type ReleaseResult struct {
	Digest string
	Pushed []string // full references
}

// Executor runs jobs on a Docker engine. Every method writes the job's log to log.
type Executor interface {
	Build(ctx context.Context, req BuildRequest, log io.Writer) (BuildResult, error)
	Test(ctx context.Context, req TestRequest, log io.Writer) (TestResult, error)
	Release(ctx context.Context, req ReleaseRequest, log io.Writer) (ReleaseResult, error)
	// Cleanup removes whatever a lost attempt of a project's job left on the engine (its
	// containers).
	Cleanup(ctx context.Context, project string, pipelineID int64, job string) error
	// Discard removes a finished pipeline's image and its local tags.
	Discard(ctx context.Context, imageID string) error
}

// Source fetches a project's repository archive at a commit, and a commit's message; it
// resolves a project path and a ref for pipelines started without a webhook.
type Source interface {
	Archive(ctx context.Context, projectID int64, sha string) (io.ReadCloser, error)
	CommitMessage(ctx context.Context, projectID int64, sha string) (string, error)
	// Project returns a project's id and web URL.
	Project(ctx context.Context, path string) (id int64, webURL string, err error)
	// ResolveRef returns the commit a branch or tag points to.
	ResolveRef(ctx context.Context, projectID int64, ref string) (string, error)
	// MergeRequest reads the merge request iid of project projectID (its target) as GitLab has
	// it now: a webhook's word for where a merge request's commit comes from is not trusted.
	// ErrNotFound when the project has no such merge request.
	MergeRequest(ctx context.Context, projectID, iid int64) (MergeRequestHead, error)
	// IsAncestor reports whether commit ancestor is descendant or one of its ancestors in the
	// project's repository (GitLab's merge base of the two is ancestor). Either may be a SHA or
	// a full ref name (refs/heads/master); one GitLab does not have is no ancestor.
	IsAncestor(ctx context.Context, projectID int64, ancestor, descendant string) (bool, error)
	// DefaultBranch is a project's default branch, "" when it has none (an empty repository).
	DefaultBranch(ctx context.Context, projectID int64) (string, error)
	// MemberAccess is a user's access level in a project, inherited from its groups included;
	// 0 when the user is no member.
	MemberAccess(ctx context.Context, projectID, userID int64) (int, error)
}

// FileSource reads one file of a repository at a commit: the project's pipeline file.
type FileSource interface {
	// File returns the file at path in project projectID at commit sha, at most limit bytes
	// of it (a longer file is cut there: the caller refuses it by its length); ErrNotFound
	// when the commit has no such file.
	File(ctx context.Context, projectID int64, sha, path string, limit int64) ([]byte, error)
}

// ApplyFile returns a project as its pipeline file (its content, nil when the commit has none)
// makes it. An error is the file's fault, one line naming the file and the key at fault
// (short enough for a commit status), and the pipeline runs nothing of it.
type ApplyFile func(p Project, file []byte) (Project, error)

// MergeRequestHead is where a merge request's head commit lives, as GitLab says.
type MergeRequestHead struct {
	// SourceProjectID is the project the commits come from: the target project, or a fork.
	SourceProjectID int64
	// SHA is the head commit of the source branch (GitLab's diff head); "" when the source
	// branch is gone.
	SHA          string
	SourceBranch string
	TargetBranch string
	// WebURL is the merge request's page.
	WebURL string
	// AuthorID and Author are the merge request's author's id and username.
	AuthorID int64
	Author   string
}

// StatusUpdate is one commit status post.
type StatusUpdate struct {
	ProjectID   int64
	SHA         string
	Ref         string
	Name        string
	State       State
	Description string
	TargetURL   string
	// Coverage is the test's coverage percentage, nil when it has none (docs/gitlab.md §3.4).
	Coverage *float64
	// PipelineID is GitLab's pipeline id from the first answer, 0 before it is known.
	PipelineID int64
}

// ErrRejected marks a status post GitLab refused for good (a 4xx that retrying cannot fix): the
// engine logs it and goes on with the next one. Any other error is retried later.
var ErrRejected = errors.New("rejected by GitLab")

// ErrNoGitLab is what a Statuses without a GitLab to post to answers (gantry runs without a
// token): the status is done with, and counted as logged rather than posted.
var ErrNoGitLab = errors.New("no GitLab to post to")

// Statuses posts commit statuses to GitLab and returns GitLab's pipeline id.
type Statuses interface {
	Post(ctx context.Context, u StatusUpdate) (gitlabPipelineID int64, err error)
}

// Dedup names a new pipeline's duplicates: a pipeline already stored under either key is
// returned instead of a new one.
type Dedup struct {
	// Delivery is the webhook delivery's id (kept for DeliveryTTL), "" when there is none.
	Delivery    string
	DeliveryTTL time.Duration
	// Commit names the commit a pipeline runs (commitKey), kept for CommitTTL. The pipeline
	// stored under it answers for the commit, whatever triggered it, unless it no longer can:
	// it is gone, or it ended canceled (superseded, canceled, refused, declined or expired, so
	// its work never ran). When Releases and it has no release job, the release is added to it
	// (Store.CreatePipeline), unless it waits or waited for approval (it ran code under the
	// limits of untrusted code, not an image to release) or it finished and its image is gone
	// (the image retention): then the new pipeline is stored and answers from then on.
	Commit    string
	CommitTTL time.Duration
	// Force stores a new pipeline even when the commit has one; the new one then answers for it.
	Force bool
	// Releases says the new pipeline has a release job.
	Releases bool
	// MergeRequestIID, when not 0, is attached to the pipeline that answers for the commit
	// (Pipeline.MergeRequestIID), so a push's pipeline shows the merge request that followed.
	MergeRequestIID int64
}

// StatusEntry is one commit status waiting in a pipeline's outbox, in the order the job
// transitions happened.
type StatusEntry struct {
	Seq         int64  `json:"seq"`
	Job         string `json:"job"`
	Attempt     int    `json:"attempt"`
	State       State  `json:"state"`
	Description string `json:"description,omitempty"`
	// Coverage is the job's coverage percentage when it ended with one.
	Coverage *float64 `json:"coverage,omitempty"`
}

// ErrLocked is returned when another worker holds a lock.
var ErrLocked = errors.New("locked")

// ErrLockLost is the cause of a held lock's context ending because the lock could not be
// renewed (someone else holds it now, or Redis did not answer before it expired).
var ErrLockLost = errors.New("lock lost")

// Store keeps pipelines and their jobs.
type Store interface {
	// CreatePipeline checks the dedup keys and, when neither names a stored pipeline, gives p an
	// ID and stores it with its trigger and planned jobs, announcing it to WaitNew, in one step.
	// It returns the id of the existing pipeline for a duplicate (p is then left alone), 0 for a
	// new one. When the commit's pipeline lacks only the release p has (Dedup), the same step
	// adds p's release job to it, created, with p's trigger as its ReleaseTrigger, puts it back
	// among the open and unstarted pipelines and announces it to WaitNew again; releaseAdded
	// says so. Two such triggers at once add the release once.
	CreatePipeline(ctx context.Context, p *Pipeline, d Dedup) (existing int64, releaseAdded bool, err error)
	// WaitNew waits a moment for a pipeline stored by CreatePipeline and not yet taken by any
	// process; 0 when none came.
	WaitNew(ctx context.Context) (int64, error)
	Pipeline(ctx context.Context, id int64) (*Pipeline, error)
	// UpdatePipeline stores the pipeline's own fields (not its jobs).
	UpdatePipeline(ctx context.Context, p *Pipeline) error
	// PlanTests records, once per pipeline, the pipeline file read at its commit (nil: none),
	// adds the test jobs planned from it and sets the order of all its jobs, in one step. It
	// reports false when the pipeline's tests were planned already: another worker did it, and
	// the pipeline is to be read again.
	PlanTests(ctx context.Context, pipelineID int64, file []byte, jobs []Job, order []string) (bool, error)
	// SwapJob stores job only when the stored job is still in state from and at attempt
	// fromAttempt, and then appends post (when not nil) to the pipeline's status outbox, in the
	// same step. It reports whether it stored the job, and the outbox sequence number given to
	// post. It is how two workers finishing at once agree on who moves a job, why a worker of an
	// attempt given up on cannot finish the attempt that replaced it, and why statuses reach
	// GitLab in order.
	SwapJob(ctx context.Context, pipelineID int64, from State, fromAttempt int, job Job, post *StatusEntry) (swapped bool, seq int64, err error)
	// NextStatus is the oldest entry of the pipeline's status outbox, nil when it is empty.
	NextStatus(ctx context.Context, pipelineID int64) (*StatusEntry, error)
	// AckStatus removes the outbox's oldest entry if it is seq.
	AckStatus(ctx context.Context, pipelineID, seq int64) error
	// LockStatuses takes the pipeline's status lock, or returns ErrLocked.
	LockStatuses(ctx context.Context, pipelineID int64) (unlock func(), err error)
	// Started records that a pipeline's first task ran; Unstarted lists pipelines stored before
	// the given time whose first task never ran (its queueing failed), to queue them again.
	Started(ctx context.Context, pipelineID int64) error
	Unstarted(ctx context.Context, before time.Time) ([]int64, error)
	// LastHead is the commit of the newest push (or reconcile) pipeline of a project's branch,
	// "" when none is known. SeenHead records that a reconciliation saw sha as a branch's head
	// without a pipeline, and reports whether the previous one (within ttl) saw it too.
	LastHead(ctx context.Context, project, branch string) (string, error)
	SeenHead(ctx context.Context, project, branch, sha string, ttl time.Duration) (again bool, err error)
	// Open lists the unfinished pipelines stored before a time; WaitingOutboxes the pipelines
	// whose status outbox got an entry before a time and is not empty yet. The sweep drives
	// them on when the step that should have was lost.
	Open(ctx context.Context, before time.Time) ([]int64, error)
	WaitingOutboxes(ctx context.Context, before time.Time) ([]int64, error)
	// AppendLog adds output to a job attempt's log.
	AppendLog(ctx context.Context, pipelineID int64, job string, attempt int, p []byte) error
	// Released is the commit a project's branch last released, "" when none is known.
	Released(ctx context.Context, project, branch string) (sha string, err error)
	// MarkReleased records the commit a project's branch released. It keeps what it is given:
	// the guard, under the release lock, decides by ancestry which release may follow which.
	MarkReleased(ctx context.Context, project, branch, sha string) error
	// LockRelease takes the lock of a project ref's releases, or returns ErrLocked. The lock
	// is renewed until unlock, which stops the renewal and waits for it; held ends when the
	// lock is lost (cause ErrLockLost), or at unlock, and a push must not start after that.
	LockRelease(ctx context.Context, project, ref string) (held context.Context, unlock func(), err error)
	// BranchPipelines lists the unfinished push pipelines of a project's branch older than
	// pipeline before (and possibly some finished ones, recorded before finishing took them off
	// the list: MarkFinished takes such a one off).
	BranchPipelines(ctx context.Context, project, branch string, before int64) ([]int64, error)
	// PublishCancel tells every gantry process to stop its running jobs of a pipeline that are
	// no longer running in the store; Cancellations delivers those announcements.
	PublishCancel(ctx context.Context, pipelineID int64) error
	Cancellations(ctx context.Context) <-chan int64
	// Abandoned lists the tasks the queue gave up on (retries exhausted, the last worker lost);
	// Forget removes one once dealt with.
	Abandoned(ctx context.Context) ([]Task, error)
	Forget(ctx context.Context, t Task) error
	// MarkFinished records when a pipeline ended; FinishedBefore lists those that ended before a
	// time and still hold an image, and Discarded records that its image is gone.
	MarkFinished(ctx context.Context, p *Pipeline, at time.Time) error
	FinishedBefore(ctx context.Context, t time.Time) ([]int64, error)
	Discarded(ctx context.Context, pipelineID int64) error
	// HoldJob takes the lease of a job attempt for this worker, or returns ErrLocked while a
	// live worker holds it. The lease is renewed until release, which stops the renewal and
	// waits for it; held ends when the lease is lost (cause ErrLockLost). ExpiredLeases lists
	// the leases not renewed before a time (their worker died), DropLease forgets one.
	HoldJob(ctx context.Context, pipelineID int64, job string, attempt int) (held context.Context, release func(), err error)
	ExpiredLeases(ctx context.Context, before time.Time) ([]Lease, error)
	DropLease(ctx context.Context, leaseID string) error
	// Gate records that a pipeline waits for approval, until a.ExpiresAt, and reports true;
	// unless a push already added the pipeline's release (Pipeline.ReleaseTrigger): then it
	// records nothing and reports false. Gating and adding the release exclude each other, in
	// whichever order they come (CreatePipeline adds no release to a gated pipeline), so an
	// image built as untrusted code's is never released. Decide records the
	// first decision on it and reports whether it was the first; a decided pipeline is listed
	// by Waiting at once, so a decision not carried out is carried out by the sweep. Waiting
	// lists the pipelines due before t (their wait expired, or decided) and Unwait takes one
	// off that list once dealt with.
	Gate(ctx context.Context, pipelineID int64, a Approval) (gated bool, err error)
	Decide(ctx context.Context, pipelineID int64, v Verdict) (bool, error)
	Waiting(ctx context.Context, before time.Time) ([]int64, error)
	Unwait(ctx context.Context, pipelineID int64) error
}

// Lease is a job attempt's lease as the store lists it: which task it was, and who held it.
type Lease struct {
	ID     string
	Holder string
	Task   Task
}

// TaskKind says what a task does.
type TaskKind string

// The kinds of task.
const (
	// TaskStart announces a pipeline's jobs and queues the first ones.
	TaskStart TaskKind = "start"
	// TaskJob runs one attempt of one job.
	TaskJob TaskKind = "job"
	// TaskStatuses posts what is waiting in a pipeline's status outbox, in order.
	TaskStatuses TaskKind = "statuses"
)

// Task is one unit of queued work.
type Task struct {
	Kind       TaskKind `json:"kind"`
	PipelineID int64    `json:"pipeline"`
	Job        string   `json:"job,omitempty"`
	Attempt    int      `json:"attempt,omitempty"`
	// Seq is the outbox entry a statuses task was queued for.
	Seq int64 `json:"seq,omitempty"`
	// TakeoverOf is the holder of the lease a job task takes over, "" for a job's own task: a
	// takeover is another task than the lost one, which the queue still counts as running.
	TakeoverOf string `json:"takeover_of,omitempty"`
	// Retried and MaxRetry come from the queue when the task is handed over: how many times it
	// was already tried, and how many retries it is allowed.
	Retried  int `json:"-"`
	MaxRetry int `json:"-"`
	// LastError is the queue's last error for an abandoned task (see Store.Abandoned).
	LastError string `json:"-"`
}

// Queue puts tasks on the work queue. Enqueueing a task that is already queued or running is a
// no-op, so two workers that both decide a job is next start it once.
type Queue interface {
	Enqueue(ctx context.Context, t Task) error
}

// StatusResult is what became of one commit status post.
type StatusResult string

// The results of a status post.
const (
	StatusPosted StatusResult = "posted"
	// StatusRefused: GitLab will never take it (or there is no project to post it on).
	StatusRefused StatusResult = "refused"
	// StatusDeferred: it failed for now and is retried later.
	StatusDeferred StatusResult = "deferred"
	// StatusLogged: there is no GitLab token, so it was logged instead.
	StatusLogged StatusResult = "logged"
)

// Metrics counts what the engine decides, where it is decided: pipelines in Accept, job ends
// in transition, status posts in post. The metrics package implements it on a Prometheus
// registry; the domain knows nothing of Prometheus.
type Metrics interface {
	PipelineCreated(kind TriggerKind)
	// JobEnded is told of a job that has just reached a final state.
	JobEnded(j Job)
	StatusPost(result StatusResult)
}

// User is a GitLab user signed in to gantry's pages.
type User struct {
	ID       int64
	Username string
	Name     string
}

// Access is what a user may do in a project, as GitLab answers it to the user's own token.
type Access struct {
	// Read is whether the user can read the project at all: GitLab hides a project it does not
	// let them read as if it did not exist (docs/gitlab.md §9.3).
	Read bool
	// Level is the user's access level, inherited ones counted (docs/gitlab.md §8): 0 for a user
	// who is no member of a project they may read (an internal or public one).
	Level int
}

// ErrTokenRejected is GitLab refusing a user's token: it expired or was revoked, and the user has
// to sign in again.
var ErrTokenRejected = errors.New("token rejected by GitLab")

// Accounts asks GitLab, with a signed-in user's own OAuth token, who the user is and what they
// may do; never with gantry's token, which may read more than the user.
type Accounts interface {
	// CurrentUser is the token's owner.
	CurrentUser(ctx context.Context, token string) (User, error)
	// ProjectAccess is what the token's owner (userID) may do in the project at path.
	ProjectAccess(ctx context.Context, token string, userID int64, path string) (Access, error)
}
