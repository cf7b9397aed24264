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
	statuses  Statuses
	projects  map[string]Project
	prefix    string
	publicURL string
	now       func() time.Time
	log       *zap.Logger
}

// EngineOptions are the Engine's dependencies and settings.
type EngineOptions struct {
	Store    Store
	Queue    Queue
	Executor Executor // may be nil on a process that only accepts webhooks
	Source   Source   // may be nil on a process that only accepts webhooks
	Statuses Statuses
	Projects []Project
	// StatusPrefix starts every status name; default "gantry".
	StatusPrefix string
	// PublicURL is where gantry's pages are reached; statuses link to PublicURL/pipelines/{id}.
	PublicURL string
	Now       func() time.Time
	Logger    *zap.Logger
}

// NewEngine checks the options and builds an Engine.
func NewEngine(o EngineOptions) (*Engine, error) {
	if o.Store == nil || o.Queue == nil || o.Statuses == nil {
		return nil, errors.New("engine: store, queue and statuses are required")
	}
	e := &Engine{
		store: o.Store, queue: o.Queue, exec: o.Executor, source: o.Source, statuses: o.Statuses,
		projects:  make(map[string]Project, len(o.Projects)),
		prefix:    cmp.Or(o.StatusPrefix, "gantry"),
		publicURL: strings.TrimRight(o.PublicURL, "/"),
		now:       o.Now,
		log:       o.Logger,
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = zap.NewNop()
	}
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

// Accept plans a pipeline for a trigger and stores it with its first task queued. It makes no
// GitLab or Docker call, so a webhook can answer as soon as it returns.
func (e *Engine) Accept(ctx context.Context, t Trigger) (*Pipeline, error) {
	proj, ok := e.Project(t.Project)
	if !ok {
		return nil, fmt.Errorf("accept %s: %w", t.Project, ErrUnknownProject)
	}
	t.Project = proj.Path
	p := Plan(proj, t, e.now())
	if err := e.store.CreatePipeline(ctx, p, Task{}); err != nil {
		return nil, fmt.Errorf("accept %s@%s: %w", t.Project, t.ShortSHA(), err)
	}
	e.log.Info("pipeline accepted", zap.Int64("pipeline", p.ID), zap.String("project", t.Project),
		zap.String("ref", t.Ref), zap.String("sha", t.SHA), zap.Int("jobs", len(p.Jobs)))
	return p, nil
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
	if t.Job == "" {
		return e.announce(ctx, p)
	}
	return e.runJob(ctx, p, t)
}

// announce posts every planned job as pending, so that a merge request cannot merge before all
// of gantry's checks exist, then queues the jobs whose turn has come.
func (e *Engine) announce(ctx context.Context, p *Pipeline) error {
	for _, j := range p.Jobs {
		if j.State != StateCreated {
			continue
		}
		if _, err := e.transition(ctx, p, j.Name, EventEnqueue, func(*Job) {}); err != nil {
			return err
		}
	}
	return e.dispatch(ctx, p.ID)
}

// dispatch applies NextSteps: queues the jobs that can run and skips those that never will.
func (e *Engine) dispatch(ctx context.Context, id int64) error {
	p, err := e.store.Pipeline(ctx, id)
	if err != nil {
		return err
	}
	for _, s := range NextSteps(p) {
		j, _ := p.Job(s.Job)
		if s.Run {
			if err := e.queue.Enqueue(ctx, Task{PipelineID: p.ID, Job: j.Name, Attempt: j.Attempt}); err != nil {
				return fmt.Errorf("queue %s of pipeline %d: %w", j.Name, p.ID, err)
			}
			continue
		}
		if _, err := e.transition(ctx, p, j.Name, EventSkip, func(j *Job) { j.Description = s.Reason }); err != nil {
			return err
		}
	}
	if st := p.State(); st.Terminal() {
		e.log.Info("pipeline finished", zap.Int64("pipeline", p.ID), zap.String("state", string(st)))
	}
	return nil
}

// transition moves one job by an event, stores it only if no one else moved it first, and posts
// the new state to GitLab. It reports whether this call made the move.
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
	swapped, err := e.store.SwapJob(ctx, p.ID, from, moved)
	if err != nil || !swapped {
		return false, err
	}
	*j = moved
	if ev.Posted() {
		e.post(ctx, p, moved)
	}
	return true, nil
}

// post tells GitLab a job's state. A status that cannot be posted is logged, not fatal: the
// pipeline goes on, and the next post of the job carries its current state.
func (e *Engine) post(ctx context.Context, p *Pipeline, j Job) {
	u := StatusUpdate{
		ProjectID: p.Trigger.ProjectID, SHA: p.Trigger.SHA, Ref: p.Trigger.Ref,
		Name: StatusName(e.prefix, j.Name), State: j.State, Description: j.Description,
		PipelineID: p.GitLabPipelineID,
	}
	if e.publicURL != "" { // without one, GitLab would refuse a relative link
		u.TargetURL = e.publicURL + "/pipelines/" + strconv.FormatInt(p.ID, 10)
	}
	// Terminal posts must reach GitLab even when the job's context was cancelled.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	glID, err := e.statuses.Post(ctx, u)
	if err != nil {
		e.log.Error("commit status not posted", zap.Int64("pipeline", p.ID), zap.String("job", j.Name),
			zap.String("state", string(j.State)), zap.Error(err))
		return
	}
	if glID != 0 && p.GitLabPipelineID == 0 {
		p.GitLabPipelineID = glID
		if err := e.store.UpdatePipeline(ctx, p); err != nil {
			e.log.Error("gitlab pipeline id not stored", zap.Int64("pipeline", p.ID), zap.Error(err))
		}
	}
}
