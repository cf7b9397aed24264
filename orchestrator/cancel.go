package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.uber.org/zap"
)

// runningJobs are the jobs this process is running, so a cancellation announced by any gantry
// process can stop them.
type runningJobs struct {
	mu   sync.Mutex
	jobs map[int64]map[string]context.CancelFunc
}

// add registers a running job and returns the function that unregisters it.
func (r *runningJobs) add(pipeline int64, job string, cancel context.CancelFunc) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.jobs == nil {
		r.jobs = map[int64]map[string]context.CancelFunc{}
	}
	if r.jobs[pipeline] == nil {
		r.jobs[pipeline] = map[string]context.CancelFunc{}
	}
	r.jobs[pipeline][job] = cancel
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.jobs[pipeline], job)
		if len(r.jobs[pipeline]) == 0 {
			delete(r.jobs, pipeline)
		}
		cancel()
	}
}

func (r *runningJobs) of(pipeline int64) map[string]context.CancelFunc {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]context.CancelFunc, len(r.jobs[pipeline]))
	for k, v := range r.jobs[pipeline] {
		out[k] = v
	}
	return out
}

// ListenForCancels stops this process's running jobs that another process (or this one)
// cancelled, until ctx ends. Cancelling a job's context kills its container or build.
func (e *Engine) ListenForCancels(ctx context.Context) {
	for id := range e.store.Cancellations(ctx) {
		jobs := e.running.of(id)
		if len(jobs) == 0 {
			continue
		}
		p, err := e.store.Pipeline(ctx, id)
		if err != nil {
			e.log.Warn("cancellation of an unreadable pipeline", zap.Int64("pipeline", id), zap.Error(err))
			continue
		}
		for name, cancel := range jobs {
			// Only a job that is over in the store is stopped: a job about to start is
			// registered here while still pending.
			if j, ok := p.Job(name); ok && j.State.Terminal() {
				e.log.Info("stopping a cancelled job", zap.Int64("pipeline", id), zap.String("job", name))
				cancel()
			}
		}
	}
}

// Cancel ends every unfinished job of a pipeline canceled, in gantry and in GitLab, and stops
// the running ones wherever they run. A release that has started is let finish: stopping a push
// halfway would leave the registry's tags split between two images.
func (e *Engine) Cancel(ctx context.Context, id int64) (*Pipeline, error) {
	return e.cancel(ctx, id, "canceled", JobRelease)
}

// cancel cancels a pipeline's unfinished jobs except a running job named keepRunning.
func (e *Engine) cancel(ctx context.Context, id int64, reason, keepRunning string) (*Pipeline, error) {
	p, err := e.store.Pipeline(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.State().Terminal() {
		return nil, refuse(id, "%s", finishedWhy(p.State()))
	}
	for _, j := range p.Jobs {
		if j.State.Terminal() || (j.Name == keepRunning && j.State == StateRunning) {
			continue
		}
		if _, err := e.transition(ctx, p, j.Name, EventCancel, func(j *Job) { j.Description = reason }); err != nil {
			return nil, err
		}
	}
	if err := e.store.PublishCancel(ctx, id); err != nil {
		return nil, fmt.Errorf("announce cancellation of pipeline %d: %w", id, err)
	}
	// Records the end when nothing runs any more: no job's end will (a running job that stops
	// dispatches too, and a repeated record is harmless).
	if err := e.dispatch(ctx, id); err != nil {
		return nil, err
	}
	e.log.Info("pipeline canceled", zap.Int64("pipeline", id), zap.String("reason", reason))
	return e.store.Pipeline(ctx, id)
}

// supersede cancels the older push pipelines of p's branch that are still going: their build and
// test jobs, pending or running; a release already running is never interrupted. A pipeline whose
// release a push added is that push's pipeline here (Pipeline.ReleaseBy).
func (e *Engine) supersede(ctx context.Context, p *Pipeline) error {
	proj, ok := e.Project(p.Trigger.Project)
	if !ok || !proj.Supersede || p.ReleaseBy().Kind != TriggerPush {
		return nil
	}
	older, err := e.store.BranchPipelines(ctx, proj.Path, p.Trigger.Ref, p.ID)
	if err != nil {
		return err
	}
	for _, id := range older {
		_, err := e.cancel(ctx, id, "superseded by "+p.Trigger.ShortSHA(), JobRelease)
		if errors.Is(err, ErrInvalidTransition) {
			// Finished, and still listed: recorded before finishing took pipelines off the list.
			err = e.unlist(ctx, id)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unlist marks a finished pipeline finished again, at the time it ended, which takes it off its
// branch's list of unfinished pipelines.
func (e *Engine) unlist(ctx context.Context, id int64) error {
	q, err := e.store.Pipeline(ctx, id)
	if err != nil {
		return err
	}
	return e.store.MarkFinished(ctx, q, q.EndedAt())
}
