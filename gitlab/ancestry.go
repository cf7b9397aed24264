package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// IsAncestor reports whether commit ancestor (a SHA, full or abbreviated) is descendant or one of
// its ancestors, by GitLab's merge-base API (GET /projects/:id/repository/merge_base): ancestor
// is an ancestor of descendant exactly when it is their merge base. GitLab answers 400 "Could not
// find ref" for a ref it does not have, and 404 when the two share no history: both mean no.
func (c *Client) IsAncestor(ctx context.Context, projectID int64, ancestor, descendant string) (bool, error) {
	var base *gl.Commit
	err := c.retry(ctx, nil, func(ctx context.Context) (*gl.Response, error) {
		ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
		defer cancel()
		var resp *gl.Response
		var err error
		base, resp, err = c.api.Repositories.MergeBase(projectID, &gl.MergeBaseOptions{Ref: &[]string{ancestor, descendant}}, gl.WithContext(ctx))
		return resp, err
	})
	var er *gl.ErrorResponse
	if errors.Is(err, gl.ErrNotFound) || errors.As(err, &er) && er.Response.StatusCode == http.StatusBadRequest {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("merge base of %s and %s in project %d: %w", ancestor, descendant, projectID, err)
	}
	return ancestor != "" && strings.HasPrefix(base.ID, ancestor), nil
}
