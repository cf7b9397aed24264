package orchestrator

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Retry gives the failed and canceled jobs of a finished pipeline a new attempt, with the jobs
// that did not run because of them; every job that succeeded is kept, so a test re-runs from
// the very image the build produced.
func (e *Engine) Retry(ctx context.Context, id int64) (*Pipeline, error) {
	p, err := e.store.Pipeline(ctx, id)
	if err != nil {
		return nil, err
	}
	if !p.State().Terminal() {
		return nil, refuse(id, "is still %s: a pipeline is retried once it has finished", p.State())
	}
	var again []string
	for _, j := range p.Jobs {
		if j.State == StateFailed || j.State == StateCanceled || (j.State == StateSkipped && (j.Blocked || legacyBlocked(j))) {
			again = append(again, j.Name)
		}
	}
	if len(again) == 0 {
		return nil, refuse(id, "has nothing failed or canceled to retry")
	}
	return e.retry(ctx, p, again)
}

// legacyBlocked reads a job recorded before Job.Blocked existed, when the only mark of a job
// skipped behind a failed stage was its description's prefix (NextSteps' "not run: "). Such
// records are read, never written, so the prefix is matched here and nowhere else.
func legacyBlocked(j Job) bool { return strings.HasPrefix(j.Description, "not run: ") }

// RetryJob gives one finished job a new attempt, with what depends on it: after a build, every
// later job (the image changes); after a test, the release unless it already succeeded.
func (e *Engine) RetryJob(ctx context.Context, id int64, name string) (*Pipeline, error) {
	p, err := e.store.Pipeline(ctx, id)
	if err != nil {
		return nil, err
	}
	target, ok := p.Job(name)
	if !ok {
		return nil, fmt.Errorf("pipeline %d has no job %s: %w", id, name, ErrNotFound)
	}
	if !target.State.Terminal() {
		return nil, &Refusal{Pipeline: id, Job: name, Why: fmt.Sprintf("is still %s: a job is retried once it has finished", target.State)}
	}
	again := []string{name}
	for _, j := range p.Jobs {
		if stageOrder[j.Stage] <= stageOrder[target.Stage] {
			continue
		}
		if !j.State.Terminal() {
			return nil, &Refusal{Pipeline: id, Job: j.Name, Why: fmt.Sprintf("is still %s: it must finish before %s is retried", j.State, name)}
		}
		if target.Stage == StageBuild || j.State != StateSuccess {
			again = append(again, j.Name)
		}
	}
	return e.retry(ctx, p, again)
}

// retry moves the named jobs to a new pending attempt, posted to GitLab as a new status (GitLab
// accepts any state after a terminal one as a new job), and queues what can run.
func (e *Engine) retry(ctx context.Context, p *Pipeline, names []string) (*Pipeline, error) {
	if !p.Approval.approved() {
		// Declined, expired or canceled while it waited: a retry must not run what nobody
		// approved. A new commit on the merge request asks again.
		return nil, refuse(p.ID, "was never approved")
	}
	if err := e.checkRetry(ctx, p); err != nil {
		return nil, err
	}
	for _, name := range names {
		_, err := e.transition(ctx, p, name, EventRetry, func(j *Job) {
			j.Attempt++
			j.Description, j.ErrorClass, j.ExitCode, j.Limits, j.Blocked = "retry", ClassNone, nil, nil, false
			j.Report, j.Coverage = nil, nil
			j.StartedAt, j.FinishedAt = time.Time{}, time.Time{}
		})
		if err != nil {
			return nil, err
		}
	}
	e.log.Info("pipeline retried", zap.Int64("pipeline", p.ID), zap.Strings("jobs", names))
	if err := e.dispatch(ctx, p.ID); err != nil {
		return nil, err
	}
	return e.store.Pipeline(ctx, p.ID)
}

// Trigger starts a pipeline for a ref of a configured project, as the API asks; the commit is
// resolved through GitLab when sha is empty. A commit that has a pipeline gets no second one
// (Accept) unless force.
func (e *Engine) Trigger(ctx context.Context, project, ref, sha string, force bool) (Accepted, error) {
	return e.start(ctx, TriggerAPI, project, ref, sha, force)
}

// Schedule starts a scheduled pipeline for the current commit of a ref. Every gantry process
// serving HTTP runs the schedules; the dedup window makes their triggers one pipeline.
func (e *Engine) Schedule(ctx context.Context, project, ref string) (Accepted, error) {
	return e.start(ctx, TriggerSchedule, project, ref, "", false)
}

func (e *Engine) start(ctx context.Context, kind TriggerKind, project, ref, sha string, force bool) (Accepted, error) {
	proj, ok := e.Project(project)
	if !ok {
		return Accepted{}, fmt.Errorf("trigger %s: %w", project, ErrUnknownProject)
	}
	// The id is GitLab's for the configured path, never the caller's; resolving it here also
	// lets KnownProjectID answer for the project.
	r, err := e.resolveProject(ctx, proj)
	if err != nil {
		return Accepted{}, fmt.Errorf("trigger %s: %w", project, err)
	}
	if sha == "" {
		if sha, err = e.source.ResolveRef(ctx, r.ID, ref); err != nil {
			return Accepted{}, fmt.Errorf("trigger %s@%s: %w", project, ref, err)
		}
	}
	return e.Accept(ctx, Trigger{Project: proj.Path, ProjectID: r.ID, HookProjectID: r.ID, ProjectURL: r.WebURL, Kind: kind, Ref: ref, SHA: sha, Force: force})
}

// limits are the limits a job runs under, for its record.
func (e *Engine) limits(p *Pipeline, job string) *Limits {
	proj, _ := e.Project(p.Trigger.Project)
	proj, _ = e.effective(proj, p)
	j, _ := p.Job(job)
	spec, ok := testSpec(proj, j.TestName())
	if !ok {
		return nil
	}
	return &Limits{Timeout: spec.Timeout.String(), MemoryBytes: spec.Memory, CPUs: spec.CPUs, Pids: spec.Pids, Network: spec.Network}
}
