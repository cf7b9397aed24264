package gitlab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	gl "gitlab.com/gitlab-org/api/client-go"
)

// Accounts is orchestrator.Accounts on a GitLab instance: every call is made with the signed-in
// user's own OAuth token, so GitLab answers what that user may see.
type Accounts struct {
	baseURL string
	timeout time.Duration
}

// NewAccounts returns the Accounts of the GitLab at baseURL.
func NewAccounts(baseURL string) (*Accounts, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gitlab: base URL %q is not an http or https URL", baseURL)
	}
	return &Accounts{baseURL: baseURL, timeout: 10 * time.Second}, nil
}

// client is a GitLab client authenticated as the token's owner (docs/gitlab.md §6: an OAuth
// token is sent as Authorization: Bearer).
func (a *Accounts) client(token string) (*gl.Client, error) {
	c, err := gl.NewAuthSourceClient(bearer(token),
		gl.WithBaseURL(a.baseURL), gl.WithoutRetries(), gl.WithUserAgent("gantry"),
		gl.WithURLWarningLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, fmt.Errorf("gitlab: %w", err)
	}
	return c, nil
}

// bearer is a user's OAuth token as client-go sends it: Authorization: Bearer (docs/gitlab.md §6).
// client-go's own OAuthTokenSource would bring golang.org/x/oauth2 into this adapter for a
// constant header.
type bearer string

func (bearer) Init(context.Context, *gl.Client) error { return nil }

func (b bearer) Header(context.Context) (string, string, error) {
	return "Authorization", "Bearer " + string(b), nil
}

// CurrentUser is GET /user (docs/gitlab.md §9.2).
func (a *Accounts) CurrentUser(ctx context.Context, token string) (orchestrator.User, error) {
	c, err := a.client(token)
	if err != nil {
		return orchestrator.User{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	u, _, err := c.Users.CurrentUser(gl.WithContext(ctx))
	if err != nil {
		return orchestrator.User{}, fmt.Errorf("current user: %w", rejected(err))
	}
	return orchestrator.User{ID: u.ID, Username: u.Username, Name: u.Name}, nil
}

// ProjectAccess reads the project as the user (a 404 means they may not read it, docs/gitlab.md
// §9.3), then their access level with inherited memberships counted (§8; the project's
// permissions field leaves out memberships of parent groups).
func (a *Accounts) ProjectAccess(ctx context.Context, token string, userID int64, path string) (orchestrator.Access, error) {
	c, err := a.client(token)
	if err != nil {
		return orchestrator.Access{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	p, _, err := c.Projects.GetProject(path, nil, gl.WithContext(ctx))
	if errors.Is(err, gl.ErrNotFound) {
		return orchestrator.Access{}, nil
	}
	if err != nil {
		return orchestrator.Access{}, fmt.Errorf("project %s: %w", path, rejected(err))
	}
	m, _, err := c.ProjectMembers.GetInheritedProjectMember(p.ID, userID, gl.WithContext(ctx))
	if errors.Is(err, gl.ErrNotFound) {
		return orchestrator.Access{Read: true}, nil
	}
	if err != nil {
		return orchestrator.Access{}, fmt.Errorf("member %d of project %s: %w", userID, path, rejected(err))
	}
	if m.State != "" && m.State != "active" {
		return orchestrator.Access{Read: true}, nil // docs/gitlab.md §8: no access while blocked
	}
	return orchestrator.Access{Read: true, Level: int(m.AccessLevel)}, nil
}

// rejected marks GitLab's 401 as orchestrator.ErrTokenRejected.
func rejected(err error) error {
	if gl.HasStatusCode(err, http.StatusUnauthorized) {
		return fmt.Errorf("%w: %w", orchestrator.ErrTokenRejected, err)
	}
	return err
}
