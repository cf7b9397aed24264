package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"
)

// binding is what GitLab says of a trigger when its pipeline starts.
type binding struct {
	// refused says why the trigger is not GitLab's word for the configured project; "" when it is.
	refused string
	// moved, for a merge request whose source project, branch or head in GitLab are not those
	// the payload named, is the trigger of what GitLab has.
	moved *Trigger
	// projectID is the configured project's id in GitLab, and mr its merge request as GitLab
	// has it, for a merge request's trigger that passed.
	projectID int64
	mr        MergeRequestHead
}

// bind checks a trigger against GitLab before anything is read or posted for it. The configured
// project is its path and the id GitLab gives that path: a hook naming another id is refused.
// A merge request's source project and head are read from GitLab's merge request (by the
// configured project's id and the iid), never from the payload.
//
// When GitLab's head is not the payload's, gantry builds GitLab's rather than refusing the
// trigger as stale: the payload's commit may not even be in the source project, GitLab's head is
// what the merge request would merge, and the delivery for that head may never come (GitLab
// sends at most one per push, and gives up on a failing hook). If it does come, the dedup window
// makes it the same pipeline.
func (e *Engine) bind(ctx context.Context, p *Pipeline) (binding, error) {
	t := p.Trigger
	r, mr, refused, err := e.check(ctx, t)
	if refused != "" || err != nil || t.Kind != TriggerMergeRequest {
		return binding{refused: refused}, err
	}
	if mr.SHA == "" {
		return binding{refused: fmt.Sprintf("refused: merge request !%d has no head commit in GitLab", t.MergeRequestIID)}, nil
	}
	// A fork's commit never releases, its image is never pushed and it waits for approval, so
	// whether it is one is GitLab's word too. GitLab's own payload says so by its source and
	// target ids; one that says otherwise about the same source was not written by GitLab.
	fork := mr.SourceProjectID != r.ID
	if mr.SourceProjectID == t.ProjectID && t.Fork != fork {
		return binding{refused: fmt.Sprintf("refused: the hook and GitLab disagree on whether merge request !%d comes from a fork", t.MergeRequestIID)}, nil
	}
	if mr.SourceProjectID == t.ProjectID && mr.SHA == t.SHA && mr.SourceBranch == t.Ref {
		return binding{projectID: r.ID, mr: mr}, nil
	}
	moved := t
	moved.ProjectID, moved.SHA, moved.Ref = mr.SourceProjectID, mr.SHA, mr.SourceBranch
	moved.HookProjectID = r.ID
	// A merge request from another project than the configured one is a fork's, whatever the
	// payload said: it never releases and its statuses go to the fork.
	moved.Fork = fork
	// The payload's delivery id would make the dedup answer with this very pipeline.
	moved.DeliveryID = ""
	if moved.SHA != t.SHA {
		// The payload's commit message was another commit's.
		moved.CheckSkip = true
	}
	if moved.ProjectID != t.ProjectID {
		moved.ProjectURL = ""
		if !moved.Fork {
			moved.ProjectURL = r.WebURL
		}
	}
	return binding{moved: &moved}, nil
}

// check asks GitLab for the configured project's id and refuses a trigger whose hook names
// another; for a merge request it reads GitLab's merge request, refusing one the project does
// not have. refused says why, "" when the trigger passes.
func (e *Engine) check(ctx context.Context, t Trigger) (r resolvedProject, mr MergeRequestHead, refused string, err error) {
	proj, ok := e.Project(t.Project)
	if !ok {
		return r, mr, fmt.Sprintf("refused: %s is no longer configured", t.Project), nil
	}
	r, err = e.resolveProject(ctx, proj)
	if errors.Is(err, ErrNotFound) {
		return r, mr, fmt.Sprintf("refused: GitLab shows gantry no project %s", proj.Path), nil
	}
	if err != nil {
		return r, mr, "", err
	}
	if hook := t.hookProjectID(); hook != 0 && hook != r.ID {
		return r, mr, fmt.Sprintf("refused: the hook names project id %d, but %s is project %d in GitLab", hook, proj.Path, r.ID), nil
	}
	if t.Kind != TriggerMergeRequest {
		return r, mr, "", nil
	}
	if t.MergeRequestIID == 0 {
		return r, mr, "refused: a merge request hook without the merge request's iid", nil
	}
	mr, err = e.source.MergeRequest(ctx, r.ID, t.MergeRequestIID)
	if errors.Is(err, ErrNotFound) {
		return r, mr, fmt.Sprintf("refused: %s has no merge request !%d in GitLab", proj.Path, t.MergeRequestIID), nil
	}
	if err != nil {
		return r, mr, "", fmt.Errorf("read merge request !%d of %s: %w", t.MergeRequestIID, proj.Path, err)
	}
	return r, mr, "", nil
}

// checkRetry asks GitLab again before a finished pipeline's jobs run again: a pipeline that was
// refused when it started never had its project checked, and a retry must not read or post on
// it. A merge request pipeline may be retried at its own commit after the merge request moved
// on, as long as the merge request still comes from the project it posts on.
func (e *Engine) checkRetry(ctx context.Context, p *Pipeline) error {
	_, mr, refused, err := e.check(ctx, p.Trigger)
	if err != nil {
		return err
	}
	if refused == "" && p.Trigger.Kind == TriggerMergeRequest && mr.SourceProjectID != p.Trigger.ProjectID {
		refused = fmt.Sprintf("refused: merge request !%d comes from project %d in GitLab, not %d", p.Trigger.MergeRequestIID, mr.SourceProjectID, p.Trigger.ProjectID)
	}
	if refused != "" {
		return refuse(p.ID, "cannot be retried: %s", strings.TrimPrefix(refused, "refused: "))
	}
	return nil
}

// startBound runs bind on a pipeline none of whose jobs was announced yet, and then the approval
// gate. It reports false when the pipeline ends here: refused, or replaced by a pipeline of what
// GitLab has.
func (e *Engine) startBound(ctx context.Context, p *Pipeline) (bool, error) {
	b, err := e.bind(ctx, p)
	if err != nil {
		return false, err
	}
	switch {
	case b.refused != "":
		e.log.Warn("trigger refused", zap.Int64("pipeline", p.ID), zap.String("project", p.Trigger.Project),
			zap.Int64("project_id", p.Trigger.ProjectID), zap.String("sha", p.Trigger.SHA), zap.String("reason", b.refused))
		return false, e.endUnannounced(ctx, p, EventCancel, b.refused)
	case b.moved != nil:
		a, err := e.Accept(ctx, *b.moved)
		if err != nil {
			return false, fmt.Errorf("pipeline of GitLab's head of merge request !%d: %w", p.Trigger.MergeRequestIID, err)
		}
		reason := fmt.Sprintf("merge request !%d is %s of project %d in GitLab: pipeline %d builds it",
			b.moved.MergeRequestIID, b.moved.ShortSHA(), b.moved.ProjectID, a.Pipeline.ID)
		e.log.Info("merge request head differs from the hook's", zap.Int64("pipeline", p.ID), zap.String("project", p.Trigger.Project),
			zap.Int64("source", b.moved.ProjectID), zap.String("sha", b.moved.SHA), zap.Int64("replaced_by", a.Pipeline.ID))
		if p.ReleaseTrigger != nil {
			return false, e.releaseElsewhere(ctx, p, reason)
		}
		return false, e.endUnannounced(ctx, p, EventSkip, reason)
	}
	return true, e.gate(ctx, p, b)
}

// endUnannounced ends the jobs of a pipeline that was never announced, posting nothing: GitLab
// never heard of it, and its project may not be one gantry may post on.
func (e *Engine) endUnannounced(ctx context.Context, p *Pipeline, ev Event, reason string) error {
	if err := e.moveCreated(ctx, p, ev, reason); err != nil {
		return err
	}
	return e.dispatch(ctx, p.ID)
}

// moveCreated applies ev, with reason as the description, to every job still created, and
// records that the pipeline's start task ran: the one step both a start and a refusal take.
func (e *Engine) moveCreated(ctx context.Context, p *Pipeline, ev Event, reason string) error {
	for _, j := range p.Jobs {
		if j.State != StateCreated {
			continue
		}
		if _, err := e.transition(ctx, p, j.Name, ev, func(j *Job) { j.Description = reason }); err != nil {
			return err
		}
	}
	return e.store.Started(ctx, p.ID)
}

// unannounced reports whether every job of a pipeline is still as planned.
func unannounced(p *Pipeline) bool {
	for _, j := range p.Jobs {
		if j.State != StateCreated {
			return false
		}
	}
	return true
}

// canceledUnannounced reports whether a pipeline was canceled (or refused) before its jobs were
// all announced: some job is canceled while another is still as planned.
func canceledUnannounced(p *Pipeline) bool {
	var created, canceled bool
	for _, j := range p.Jobs {
		created = created || j.State == StateCreated
		canceled = canceled || j.State == StateCanceled
	}
	return created && canceled
}
