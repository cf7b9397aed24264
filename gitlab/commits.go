package gitlab

import (
	"context"
	"errors"
	"fmt"

	"github.com/gantry-ci/gantry/orchestrator"
	gl "gitlab.com/gitlab-org/api/client-go"
)

var _ orchestrator.Source = (*Client)(nil)

// CommitMessage returns a commit's full message, for the [skip ci] check of a push whose head
// commit was not among the 20 the webhook carried.
func (c *Client) CommitMessage(ctx context.Context, projectID int64, sha string) (string, error) {
	commit, err := c.commit(ctx, projectID, sha)
	if err != nil {
		return "", err
	}
	return commit.Message, nil
}

// commit reads one commit; GitLab's single-commit endpoint takes a ref name as well as a SHA.
func (c *Client) commit(ctx context.Context, projectID int64, ref string) (*gl.Commit, error) {
	var commit *gl.Commit
	err := c.retry(ctx, nil, func(ctx context.Context) (*gl.Response, error) {
		ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
		defer cancel()
		var resp *gl.Response
		var err error
		commit, resp, err = c.api.Commits.GetCommit(projectID, ref, nil, gl.WithContext(ctx))
		return resp, err
	})
	if errors.Is(err, gl.ErrNotFound) {
		return nil, fmt.Errorf("commit %s of project %d: %w", ref, projectID, orchestrator.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("commit %s of project %d: %w", ref, projectID, err)
	}
	return commit, nil
}

// DefaultBranch returns a project's default branch, "" for an empty repository, for the
// reconciliation of missed pushes.
func (c *Client) DefaultBranch(ctx context.Context, projectID int64) (string, error) {
	p, err := c.project(ctx, projectID)
	if err != nil {
		return "", err
	}
	return p.DefaultBranch, nil
}

// Project returns a project's id and web URL, for pipelines started by the API.
func (c *Client) Project(ctx context.Context, path string) (int64, string, error) {
	p, err := c.project(ctx, path)
	if err != nil {
		return 0, "", err
	}
	return p.ID, p.WebURL, nil
}

// project reads a project by id or path.
func (c *Client) project(ctx context.Context, pid any) (*gl.Project, error) {
	var p *gl.Project
	err := c.retry(ctx, nil, func(ctx context.Context) (*gl.Response, error) {
		ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
		defer cancel()
		var resp *gl.Response
		var err error
		p, resp, err = c.api.Projects.GetProject(pid, nil, gl.WithContext(ctx))
		return resp, err
	})
	if errors.Is(err, gl.ErrNotFound) {
		return nil, fmt.Errorf("project %v: %w", pid, orchestrator.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("project %v: %w", pid, err)
	}
	return p, nil
}

// ResolveRef returns the commit a branch or tag points to.
func (c *Client) ResolveRef(ctx context.Context, projectID int64, ref string) (string, error) {
	commit, err := c.commit(ctx, projectID, ref)
	if err != nil {
		return "", err
	}
	return commit.ID, nil
}
