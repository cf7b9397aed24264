package gitlab

import (
	"context"
	"errors"
	"fmt"

	"github.com/gantry-ci/gantry/orchestrator"
	gl "gitlab.com/gitlab-org/api/client-go"
)

// MergeRequest reads a merge request of its target project, so that the engine builds the
// source project and commit GitLab has for it rather than those a webhook payload names.
func (c *Client) MergeRequest(ctx context.Context, projectID, iid int64) (orchestrator.MergeRequestHead, error) {
	var mr *gl.MergeRequest
	err := c.retry(ctx, nil, func(ctx context.Context) (*gl.Response, error) {
		ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
		defer cancel()
		var resp *gl.Response
		var err error
		mr, resp, err = c.api.MergeRequests.GetMergeRequest(projectID, iid, nil, gl.WithContext(ctx))
		return resp, err
	})
	if errors.Is(err, gl.ErrNotFound) {
		return orchestrator.MergeRequestHead{}, fmt.Errorf("merge request !%d of project %d: %w", iid, projectID, orchestrator.ErrNotFound)
	}
	if err != nil {
		return orchestrator.MergeRequestHead{}, fmt.Errorf("merge request !%d of project %d: %w", iid, projectID, err)
	}
	head := orchestrator.MergeRequestHead{
		SourceProjectID: mr.SourceProjectID, SHA: mr.SHA,
		SourceBranch: mr.SourceBranch, TargetBranch: mr.TargetBranch, WebURL: mr.WebURL,
	}
	if mr.Author != nil {
		head.AuthorID, head.Author = mr.Author.ID, mr.Author.Username
	}
	return head, nil
}
