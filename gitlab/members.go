package gitlab

import (
	"context"
	"errors"
	"fmt"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// MemberAccess returns a user's access level in a project, counting what the user inherits
// from the project's groups (GitLab's members/all endpoint, docs/gitlab.md §8); 0 when the
// user is no member.
func (c *Client) MemberAccess(ctx context.Context, projectID, userID int64) (int, error) {
	if userID <= 0 {
		return 0, nil // no author named: nobody's access to count on
	}
	var m *gl.ProjectMember
	err := c.retry(ctx, nil, func(ctx context.Context) (*gl.Response, error) {
		ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
		defer cancel()
		var resp *gl.Response
		var err error
		m, resp, err = c.api.ProjectMembers.GetInheritedProjectMember(projectID, userID, gl.WithContext(ctx))
		return resp, err
	})
	if errors.Is(err, gl.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("member %d of project %d: %w", userID, projectID, err)
	}
	if m.State != "" && m.State != "active" {
		return 0, nil // a blocked or awaiting member has no access in GitLab either
	}
	return int(m.AccessLevel), nil
}
