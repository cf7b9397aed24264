package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"
)

// Reconcile starts a pipeline for each branch head GitLab has and no webhook announced: GitLab
// sends a delivery once and never again, and disables a hook that keeps failing
// (docs/gitlab.md §1.3, §1.4), so a push can be lost for good. For every configured project it
// looks at the release branches and the default branch; a head that is not the commit of the
// branch's newest push pipeline, seen so by two runs in a row (every holds them apart: a webhook
// on its way gets that long to arrive), gets a pipeline of kind reconcile, which reads the
// commit's message for [skip ci] and releases as the push would have. It returns how many it
// started.
func (e *Engine) Reconcile(ctx context.Context, every time.Duration) (int, error) {
	started := 0
	var errs []error
	for _, proj := range e.projects {
		n, err := e.reconcileProject(ctx, proj, every)
		started += n
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: %w", proj.Path, err))
		}
	}
	return started, errors.Join(errs...)
}

func (e *Engine) reconcileProject(ctx context.Context, proj Project, every time.Duration) (int, error) {
	r, err := e.resolveProject(ctx, proj)
	if err != nil {
		return 0, err
	}
	branches := slices.Clone(proj.Release.Branches)
	def, err := e.source.DefaultBranch(ctx, r.ID)
	if err != nil {
		return 0, err
	}
	if def != "" && !slices.Contains(branches, def) {
		branches = append(branches, def)
	}
	started := 0
	for _, branch := range branches {
		head, err := e.source.ResolveRef(ctx, r.ID, branch)
		if errors.Is(err, ErrNotFound) {
			continue // a release branch that does not exist (yet)
		}
		if err != nil {
			return started, err
		}
		last, err := e.store.LastHead(ctx, proj.Path, branch)
		if err != nil {
			return started, err
		}
		if last == head {
			continue
		}
		// Two sightings apart: one run sees a head whose webhook is still on its way.
		again, err := e.store.SeenHead(ctx, proj.Path, branch, head, 3*every)
		if err != nil {
			return started, err
		}
		if !again {
			continue
		}
		a, err := e.Accept(ctx, Trigger{Project: proj.Path, ProjectID: r.ID, HookProjectID: r.ID, ProjectURL: r.WebURL,
			Kind: TriggerReconcile, Ref: branch, SHA: head, CheckSkip: true})
		if err != nil {
			return started, err
		}
		e.log.Warn("branch head without a pipeline: a webhook was lost; started one", zap.String("project", proj.Path),
			zap.String("branch", branch), zap.String("sha", head), zap.String("last_pipeline_sha", last), zap.Int64("pipeline", a.Pipeline.ID))
		started++
	}
	return started, nil
}
