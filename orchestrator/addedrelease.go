package orchestrator

import (
	"context"
	"fmt"

	"go.uber.org/zap"
)

// This file is the engine's side of a release added to a running or finished pipeline: the
// push of a release branch whose commit a merge request's pipeline already builds gets its
// release there (Store.CreatePipeline, Dedup) rather than a second pipeline that builds and
// tests the commit again and posts the same status names on it (README.md, "One pipeline per
// commit").

// releaseAdded reports whether a pipeline's release job was added after it was announced: the
// release is still as planned while another job is not.
func releaseAdded(p *Pipeline) bool {
	if p.ReleaseTrigger == nil {
		return false
	}
	j, ok := p.Job(JobRelease)
	return ok && j.State == StateCreated && !unannounced(p)
}

// startAddedRelease is the start task's first part for an added release. A release behind a
// stage that already ended without success (a failed build or test) ends
// skipped from created, marked blocked as NextSteps would have: nothing is posted, so GitLab's
// view of a failed pipeline does not change, its description keeps why, and a retry of the
// pipeline runs it. A pipeline that never built its commit (its build skipped) hands the push
// on (releaseElsewhere).
// It reports whether the announcement goes on: a release whose turn comes, or that waits for
// build and tests, is announced like any planned job.
func (e *Engine) startAddedRelease(ctx context.Context, p *Pipeline) (bool, error) {
	if b, _ := p.Job(JobBuild); b.State == StateSkipped {
		return false, e.releaseElsewhere(ctx, p, "")
	}
	j, _ := p.Job(JobRelease)
	_, blocker := earlier(p, *j)
	if blocker == "" {
		return true, nil
	}
	reason := "not run: " + blocker
	e.log.Info("added release not run", zap.Int64("pipeline", p.ID), zap.String("ref", p.Trigger.Ref),
		zap.String("sha", p.Trigger.SHA), zap.String("reason", reason))
	if _, err := e.transition(ctx, p, JobRelease, EventSkip, func(j *Job) { j.Description, j.Blocked = reason, true }); err != nil {
		return false, err
	}
	if err := e.store.Started(ctx, p.ID); err != nil {
		return false, err
	}
	return false, e.dispatch(ctx, p.ID)
}

// releaseElsewhere gives the push that added the release a pipeline of its own, when the
// pipeline it was added to never built the commit: the merge request's head in GitLab was
// another commit when the pipeline started (bind), so another pipeline builds that one and this
// one ends skipped, unannounced. The push's commit is still on the release branch and asks to
// be released. The added release ends skipped naming the push's pipeline, with why (when not
// ""), and nothing posted. The push's pipeline reads the commit's message for [skip ci] (a build
// skipped for it looks the same here), is forced past the commit's pipeline (this one), and is
// deduplicated by a delivery id of this pipeline's, so a start task run again makes no second.
func (e *Engine) releaseElsewhere(ctx context.Context, p *Pipeline, why string) error {
	t := *p.ReleaseTrigger
	t.Force, t.DeliveryID = true, fmt.Sprintf("gantry:release-of:%d", p.ID)
	// The pipeline it replaces may have been skipped for [skip ci]: read the message again.
	t.CheckSkip = true
	a, err := e.Accept(ctx, t)
	if err != nil {
		return fmt.Errorf("pipeline of the push that added the release to %d: %w", p.ID, err)
	}
	reason := fmt.Sprintf("not run here: pipeline %d runs the push of %s", a.Pipeline.ID, t.Ref)
	if why != "" {
		reason = why + "; " + reason
	}
	e.log.Info("added release handed to a pipeline of its own", zap.Int64("pipeline", p.ID), zap.Int64("push_pipeline", a.Pipeline.ID))
	return e.endUnannounced(ctx, p, EventSkip, reason)
}
