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
	var commit *gl.Commit
	err := c.retry(ctx, nil, func(ctx context.Context) (*gl.Response, error) {
		ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
		defer cancel()
		var resp *gl.Response
		var err error
		commit, resp, err = c.api.Commits.GetCommit(projectID, sha, nil, gl.WithContext(ctx))
		return resp, err
	})
	if errors.Is(err, gl.ErrNotFound) {
		return "", fmt.Errorf("commit %s of project %d: %w", sha, projectID, orchestrator.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("commit %s of project %d: %w", sha, projectID, err)
	}
	return commit.Message, nil
}
