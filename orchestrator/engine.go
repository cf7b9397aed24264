package orchestrator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// ErrUnknownProject is returned for a trigger of a project gantry is not configured for.
var ErrUnknownProject = errors.New("unknown project")

// Engine advances pipelines: it plans them when a trigger is accepted, and runs each queued task
// (announce a pipeline, run a job), deciding what comes next. It is the one place where a job's
// state changes, and every change it makes is posted to GitLab.
type Engine struct {
	store     Store
	queue     Queue
	exec      Executor
	source    Source
	files     FileSource
	apply     ApplyFile
	statuses  Statuses
	projects  map[string]Project
	prefix    string
	publicURL string
	dedup     time.Duration
	commit    time.Duration
	delivery  time.Duration
	retention time.Duration
	running   runningJobs
	now       func() time.Time
	log       *zap.Logger
	metrics   Metrics

	// projectIDs are GitLab's ids of the configured projects' paths.
	projectIDs *projectIDs
}

// EngineOptions are the Engine's dependencies and settings.
type EngineOptions struct {
	Store    Store
	Queue    Queue
	Executor Executor // may be nil on a process that only accepts webhooks
	Source   Source   // may be nil on a process that only accepts webhooks
	// Files reads the projects' pipeline files and ApplyFile applies one; with either nil,
	// every commit runs the server's settings.
	Files     FileSource
	ApplyFile ApplyFile
	Statuses  Statuses
	Projects  []Project
	// StatusPrefix starts every status name; default "gantry".
	StatusPrefix string
	// PublicURL is where gantry's pages are reached; statuses link to PublicURL/pipelines/{id}.
	PublicURL string
	// CommitWindow is how long a commit's pipeline answers for the commit: an event for the
	// same project, ref and SHA in it yields that pipeline, whatever its kind; default 30 days.
	// serve sets it to the pipeline retention, the time the answer can name a pipeline.
	CommitWindow time.Duration
	// DedupWindow is how long the ticks of one schedule for the same commit are one pipeline
	// (every gantry process serving HTTP runs the schedules); default 10 minutes.
	DedupWindow time.Duration
	// DeliveryWindow is how long a webhook delivery's id is remembered, so that GitLab's
	// "Resend request" of it yields its pipeline rather than a second one; default 7 days.
	// A delivery is resent by hand, which can be much later than the dedup window, but the
	// answer names a pipeline, so serve caps this at the pipeline retention.
	DeliveryWindow time.Duration
	// ImageRetention is how long a finished pipeline's image is kept on the engine, so its jobs
	// can be retried without a rebuild; default 24 hours.
	ImageRetention time.Duration
	Now            func() time.Time
	Logger         *zap.Logger
	// Metrics counts what the engine decides; nil counts nothing.
	Metrics Metrics

	// ProjectIDTTL is how long GitLab's id for a configured project's path is used before it is
	// asked for again; default 10 minutes.
	ProjectIDTTL time.Duration
}

// NewEngine checks the options and builds an Engine.
func NewEngine(o EngineOptions) (*Engine, error) {
	if o.Store == nil || o.Queue == nil || o.Statuses == nil {
		return nil, errors.New("engine: store, queue and statuses are required")
	}
	e := &Engine{
		store: o.Store, queue: o.Queue, exec: o.Executor, source: o.Source, statuses: o.Statuses,
		files: o.Files, apply: o.ApplyFile,
		projects:  make(map[string]Project, len(o.Projects)),
		prefix:    cmp.Or(o.StatusPrefix, "gantry"),
		publicURL: strings.TrimRight(o.PublicURL, "/"),
		dedup:     cmp.Or(o.DedupWindow, 10*time.Minute),
		commit:    cmp.Or(o.CommitWindow, 30*24*time.Hour),
		delivery:  cmp.Or(o.DeliveryWindow, 7*24*time.Hour),
		retention: cmp.Or(o.ImageRetention, 24*time.Hour),
		now:       o.Now,
		log:       o.Logger,
		metrics:   o.Metrics,
	}
	if e.metrics == nil {
		e.metrics = noMetrics{}
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = zap.NewNop()
	}
	e.projectIDs = newProjectIDs(cmp.Or(o.ProjectIDTTL, 10*time.Minute), e.now)
	for _, p := range o.Projects {
		e.projects[strings.ToLower(p.Path)] = p
	}
	return e, nil
}

// Project returns the configured project with this path.
func (e *Engine) Project(path string) (Project, bool) {
	p, ok := e.projects[strings.ToLower(path)]
	return p, ok
}

// Accepted is the outcome of Accept: the pipeline for the trigger, and whether it existed.
type Accepted struct {
	Pipeline  *Pipeline
	Duplicate bool
	// ReleaseAdded is set on a duplicate whose trigger added the release job to the existing
	// pipeline (Dedup): the push of a release branch after the merge request's hook.
	ReleaseAdded bool
}

// Accept plans a pipeline for a trigger and stores it, unless the same delivery, or the same
// commit (project, ref, SHA), already has a pipeline that can answer for it (Dedup): then that
// pipeline is returned, and a merge request is attached to it. When that pipeline lacks only the
// release the trigger asks for (a merge request's pipeline, then the push of the release branch
// it comes from), the release job is added to it rather than the commit built again, and the
// start task announces and runs it (announce). One pipeline per commit: two
// pipelines posting the same status names on one commit would make GitLab's widget flip
// between them, and a failure in one could hide behind a success in the other. A forced
// trigger or a schedule's tick runs the commit again. It makes no GitLab or Docker call, so a
// webhook can answer as soon as it returns.
func (e *Engine) Accept(ctx context.Context, t Trigger) (Accepted, error) {
	proj, ok := e.Project(t.Project)
	if !ok {
		return Accepted{}, fmt.Errorf("accept %s: %w", t.Project, ErrUnknownProject)
	}
	t.Project = proj.Path
	p := Plan(proj, t, e.now())
	_, releases := p.Job(JobRelease)
	d := Dedup{Commit: commitKey(t), CommitTTL: e.commit, Force: t.Force, Releases: releases}
	if t.Kind == TriggerMergeRequest {
		d.MergeRequestIID = t.MergeRequestIID
	}
	if t.Kind == TriggerSchedule {
		// A tick runs the commit again, once however many processes run the schedule.
		d.Commit, d.CommitTTL = d.Commit+"|schedule", e.dedup
	}
	if t.DeliveryID != "" {
		d.Delivery, d.DeliveryTTL = t.DeliveryID, e.delivery
	}
	existing, added, err := e.store.CreatePipeline(ctx, p, d)
	if err != nil {
		return Accepted{}, fmt.Errorf("accept %s@%s: %w", t.Project, t.ShortSHA(), err)
	}
	if existing != 0 {
		e.log.Info("duplicate trigger", zap.Int64("pipeline", existing), zap.String("project", t.Project),
			zap.String("ref", t.Ref), zap.String("sha", t.SHA), zap.String("delivery", t.DeliveryID),
			zap.Bool("release_added", added))
		return Accepted{Pipeline: &Pipeline{ID: existing}, Duplicate: true, ReleaseAdded: added}, nil
	}

	e.metrics.PipelineCreated(t.Kind)
	e.log.Info("pipeline accepted", zap.Int64("pipeline", p.ID), zap.String("project", t.Project),
		zap.String("ref", t.Ref), zap.String("sha", t.SHA), zap.Int("jobs", len(p.Jobs)))
	return Accepted{Pipeline: p}, nil
}

// Handle runs one queued task. It returns an error only when the task should be tried again
// (the infrastructure failed and retries are left); everything else is recorded on the job.
func (e *Engine) Handle(ctx context.Context, t Task) error {
	p, err := e.store.Pipeline(ctx, t.PipelineID)
	if errors.Is(err, ErrNotFound) {
		e.log.Warn("task for a pipeline that does not exist", zap.Int64("pipeline", t.PipelineID))
		return nil
	}
	if err != nil {
		return err
	}
	switch t.Kind {
	case TaskStart:
		return e.announce(ctx, p)
	case TaskStatuses:
		return e.postStatuses(ctx, p.ID)
	}
	return e.runJob(ctx, p, t)
}

// announce posts every planned job as pending, so that a merge request cannot merge before all
// of gantry's checks exist, then queues the jobs whose turn has come. First the trigger is
// checked against GitLab (bind): a refused one ends here, nothing read and nothing posted. A
// pipeline whose head commit asks to skip CI ends here too, every job skipped and nothing posted.
// One that waits for approval (gate) is announced with the wait in every job's description,
// and nothing is queued: Approve does that. A release added to an announced pipeline is
// announced the same way, alone (startAddedRelease).
func (e *Engine) announce(ctx context.Context, p *Pipeline) error {
	switch {
	case unannounced(p):
		if ok, err := e.startBound(ctx, p); !ok || err != nil {
			return err
		}
	case canceledUnannounced(p):
		// Canceled or refused before its jobs were all announced, and this task is run again:
		// the rest are canceled the same way, never announced.
		reason := "canceled"
		for _, j := range p.Jobs {
			if j.State == StateCanceled {
				reason = j.Description
			}
		}
		return e.endUnannounced(ctx, p, EventCancel, reason)
	case releaseAdded(p):
		if ok, err := e.startAddedRelease(ctx, p); !ok || err != nil {
			return err
		}
	}
	ev, reason := EventEnqueue, ""
	var ahead *fileRead
	if p.Trigger.CheckSkip && p.Jobs[0].State == StateCreated {
		// The pipeline file is read meanwhile; a [skip ci] commit wastes that read.
		if ahead = e.readAhead(ctx, p); ahead != nil {
			defer ahead.wait() // never leaves the read running; planTests took its answer if it got that far
		}
		id, _, err := e.sourceProject(ctx, p)
		if err != nil {
			return err
		}
		msg, err := e.source.CommitMessage(ctx, id, p.Trigger.SHA)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("read commit message of %s: %w", p.Trigger.ShortSHA(), err)
		}
		if SkipCI(msg) {
			ev, reason = EventSkip, "skipped: [skip ci] in the commit message"
		}
	}
	switch {
	case ev == EventEnqueue && p.Approval.Waiting():
		reason = waitingText(p)
	case ev == EventEnqueue:
		if err := e.guardAtStart(ctx, p); err != nil {
			return fmt.Errorf("release guard for %s: %w", p.Trigger.ShortSHA(), err)
		}
		// Its code may be read now: the statuses posted next are then exactly its jobs.
		planned, err := e.planTests(ctx, p, ahead)
		if err != nil {
			return err
		}
		p = planned
	}
	if err := e.moveCreated(ctx, p, ev, reason); err != nil {
		return err
	}
	if err := e.supersede(ctx, p); err != nil {
		return fmt.Errorf("supersede older pipelines of %s: %w", p.Trigger.Ref, err)
	}
	if ev == EventSkip {
		e.log.Info("pipeline skipped", zap.Int64("pipeline", p.ID), zap.String("reason", reason))
		return nil
	}
	return e.dispatch(ctx, p.ID)
}

// dispatch applies NextSteps: queues the jobs that can run and skips those that never will.
func (e *Engine) dispatch(ctx context.Context, id int64) error {
	p, err := e.store.Pipeline(ctx, id)
	if err != nil {
		return err
	}
	if p.State() == StateWaitingForApproval {
		return nil
	}
	for _, s := range NextSteps(p) {
		j, _ := p.Job(s.Job)
		if s.Run {
			if err := e.queue.Enqueue(ctx, Task{Kind: TaskJob, PipelineID: p.ID, Job: j.Name, Attempt: j.Attempt}); err != nil {
				return fmt.Errorf("queue %s of pipeline %d: %w", j.Name, p.ID, err)
			}
			continue
		}
		if _, err := e.transition(ctx, p, j.Name, EventSkip, func(j *Job) { j.Description, j.Blocked = s.Reason, true }); err != nil {
			return err
		}
	}
	if st := p.State(); st.Terminal() {
		e.log.Info("pipeline finished", zap.Int64("pipeline", p.ID), zap.String("state", string(st)))
		if err := e.store.MarkFinished(ctx, p, e.now()); err != nil {
			return err
		}
	}
	return nil
}

// transition moves one job by an event and stores it only if no one else moved it first. A
// move GitLab must hear about goes into the pipeline's status outbox in the same step, and a
// task is queued to post it: statuses are posted in the background, in order, and a slow or
// failing GitLab never holds up the pipeline. It reports whether this call made the move.
func (e *Engine) transition(ctx context.Context, p *Pipeline, name string, ev Event, edit func(*Job)) (bool, error) {
	j, ok := p.Job(name)
	if !ok {
		return false, fmt.Errorf("pipeline %d has no job %s: %w", p.ID, name, ErrNotFound)
	}
	next, err := Next(j.State, ev)
	if err != nil {
		return false, fmt.Errorf("job %s of pipeline %d: %w", name, p.ID, err)
	}
	from, moved := j.State, *j
	moved.State = next
	now := e.now()
	switch {
	case ev == EventRun:
		moved.StartedAt, moved.FinishedAt = now, time.Time{}
	case next.Terminal():
		moved.FinishedAt = now
	}
	edit(&moved)
	var post *StatusEntry
	// A pipeline skipped before anything was posted stays invisible in GitLab, like GitLab's own
	// [skip ci]. So does one canceled (or refused) before it was announced: its project was not
	// checked against GitLab yet (bind), and it may name one gantry must not post on.
	if ev.Posted() && !((ev == EventSkip || ev == EventCancel) && from == StateCreated) {
		post = &StatusEntry{Job: moved.Name, Attempt: moved.Attempt, State: next, Description: moved.Description, Coverage: moved.Coverage}
	}
	swapped, seq, err := e.store.SwapJob(ctx, p.ID, from, j.Attempt, moved, post)
	if err != nil || !swapped {
		return false, err
	}
	*j = moved
	if next.Terminal() {
		e.metrics.JobEnded(moved)
	}
	if post != nil {
		if err := e.queue.Enqueue(ctx, Task{Kind: TaskStatuses, PipelineID: p.ID, Seq: seq}); err != nil {
			// The entry waits in the outbox; the next transition's task, or the sweep, posts it.
			e.log.Warn("status task not queued", zap.Int64("pipeline", p.ID), zap.Error(err))
		}
	}
	return true, nil
}

// commitKey names the commit a trigger runs: the project, the ref and the SHA, and for a fork's
// commit the fork's project id too, since the same branch and SHA named from another source
// project is another commit to build (and the engine replaces a merge request hook naming the
// wrong source by GitLab's: bind). The trigger kind is not in it: a push and the merge request
// hook for the same commit are one pipeline.
func commitKey(t Trigger) string {
	k := []string{strings.ToLower(t.Project), t.Ref, t.SHA}
	if t.Fork {
		k = append(k, strconv.FormatInt(t.ProjectID, 10))
	}
	return strings.Join(k, "|")
}
