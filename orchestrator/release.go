package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// This file is the engine's side of the release guard: it gathers what GitLab says about a
// pipeline's commit and asks the pure ReleaseGuard with it, at the start task and right before
// the push.

// releaseFacts asks GitLab what check 4 of the guard needs. A branch's commit must be on the
// branch and descend from what the branch last released; a tag must point at the commit, so a
// fake tag push (anyone with the hook secret can send one) releases nothing.
func (e *Engine) releaseFacts(ctx context.Context, p *Pipeline) (*ReleaseFacts, error) {
	t := p.ReleaseBy()
	// The configured project's id as GitLab gives it, never the one the payload named.
	projectID, _, err := e.sourceProject(ctx, p)
	if err != nil {
		return nil, err
	}
	if t.Kind == TriggerTag {
		// The full ref name: a branch of the same name must not answer for the tag.
		sha, err := e.source.ResolveRef(ctx, projectID, "refs/tags/"+t.Ref)
		if errors.Is(err, ErrNotFound) {
			return &ReleaseFacts{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("resolve tag %s: %w", t.Ref, err)
		}
		return &ReleaseFacts{OnRef: sha == t.SHA}, nil
	}
	on, err := e.source.IsAncestor(ctx, projectID, t.SHA, "refs/heads/"+t.Ref)
	if err != nil {
		return nil, fmt.Errorf("is %s on %s: %w", t.ShortSHA(), t.Ref, err)
	}
	released, err := e.store.Released(ctx, t.Project, t.Ref)
	if err != nil {
		return nil, fmt.Errorf("last release of %s: %w", t.Ref, err)
	}
	f := &ReleaseFacts{OnRef: on, Released: released}
	if on && released != "" {
		if f.FromReleased, err = e.source.IsAncestor(ctx, projectID, released, t.SHA); err != nil {
			return nil, fmt.Errorf("does %s descend from %s: %w", t.ShortSHA(), shortSHA(released), err)
		}
	}
	return f, nil
}

// askGuard asks the release guard at phase, with GitLab's facts when checks 1 to 3 pass: a
// pipeline refused by those needs no GitLab call.
func (e *Engine) askGuard(ctx context.Context, p *Pipeline, phase GuardPhase) (GuardVerdict, error) {
	proj, ok := e.Project(p.Trigger.Project)
	if !ok {
		return GuardVerdict{Reason: fmt.Sprintf("project %s is no longer configured", p.Trigger.Project)}, nil
	}
	// A release added by a push is the push's to ask for (Pipeline.ReleaseBy): a merge request
	// never releases, and the push of the same commit of a release branch does.
	in := GuardInput{Phase: phase, Trigger: p.ReleaseBy(), Policy: proj.Release, Jobs: p.Jobs}
	if v := ReleaseGuard(in); !v.Allowed && !v.Outdated {
		return v, nil
	}
	if p.ReleaseTrigger != nil {
		// The push that added the release is checked against GitLab as bind checks a pipeline's
		// own trigger when it starts: it was not the one checked then.
		_, _, refused, err := e.check(ctx, *p.ReleaseTrigger)
		if err != nil || refused != "" {
			return GuardVerdict{Reason: refused}, err
		}
	}
	facts, err := e.releaseFacts(ctx, p)
	if err != nil {
		return GuardVerdict{}, err
	}
	in.Facts = facts
	return ReleaseGuard(in), nil
}

// guardAtStart is the planning check with GitLab's facts, run by the start task before anything
// is posted (Plan runs at intake, where no GitLab call may delay the webhook's answer). A release
// the guard refuses is skipped from created: nothing is posted for it, and its description keeps
// the reason for gantry's API and pages.
func (e *Engine) guardAtStart(ctx context.Context, p *Pipeline) error {
	j, ok := p.Job(JobRelease)
	if !ok || j.State != StateCreated {
		return nil
	}
	v, err := e.askGuard(ctx, p, PhasePlan)
	if err != nil || v.Allowed {
		return err
	}
	e.log.Info("no release", zap.Int64("pipeline", p.ID), zap.String("ref", p.Trigger.Ref),
		zap.String("sha", p.Trigger.SHA), zap.String("reason", v.Reason))
	_, err = e.transition(ctx, p, JobRelease, EventSkip, func(j *Job) { j.Description = v.Reason })
	return err
}

// guardAtPush asks the guard right before the push, under the branch's release lock, for a
// release job about to run or resumed after a lost worker (the lock may have lapsed and another
// release run meanwhile). It reports whether the push may go on; when not, the job is ended:
// skipped from pending, canceled from running, as GitLab does not take skipped after running.
func (e *Engine) guardAtPush(ctx context.Context, p *Pipeline) (bool, error) {
	j, _ := p.Job(JobRelease)
	if j.State != StatePending && j.State != StateRunning {
		return true, nil
	}
	v, err := e.askGuard(ctx, p, PhasePush)
	if err != nil || v.Allowed {
		return v.Allowed, err
	}
	ev := EventSkip
	if j.State == StateRunning {
		ev = EventCancel
	}
	e.log.Info("release refused before the push", zap.Int64("pipeline", p.ID), zap.String("ref", p.Trigger.Ref),
		zap.String("sha", p.Trigger.SHA), zap.String("reason", v.Reason))
	if _, err := e.transition(ctx, p, j.Name, ev, func(j *Job) { j.Description = v.Reason }); err != nil {
		return false, err
	}
	return false, e.dispatch(ctx, p.ID)
}

// lockRelease waits for the release lock of the pipeline's ref. held ends when the lock is lost.
func (e *Engine) lockRelease(ctx context.Context, p *Pipeline) (held context.Context, unlock func(), err error) {
	for {
		held, unlock, err := e.store.LockRelease(ctx, p.Trigger.Project, p.Trigger.Ref)
		if !errors.Is(err, ErrLocked) {
			return held, unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
