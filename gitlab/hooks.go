package gitlab

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	gl "gitlab.com/gitlab-org/api/client-go"
	"go.uber.org/zap"
)

// HookSpec is the webhook gantry wants on a project.
type HookSpec struct {
	// URL is where GitLab delivers, e.g. https://gantry.example.com/webhooks/gitlab. Hooks are
	// matched on it exactly, as GitLab returns it.
	URL string
	// Token is the secret GitLab sends in X-Gitlab-Token. GitLab never returns it, so it is
	// sent on every registration rather than compared.
	Token string
	// The events to deliver; every other event is switched off.
	PushEvents, TagPushEvents, MergeRequestsEvents bool
	// EnableSSLVerification makes GitLab verify the receiver's certificate.
	EnableSSLVerification bool
}

// HookResult says what RegisterHook did.
type HookResult struct {
	// ID is the hook that now delivers to the URL.
	ID int64
	// Created is true when no hook had the URL and one was added, false when one was updated.
	Created bool
	// Removed are the ids of further hooks with the same URL that were deleted, so that
	// GitLab delivers each event once.
	Removed []int64
}

// HookReport is what CheckHooks found on one project.
type HookReport struct {
	// Project is the project as the caller named it.
	Project string
	// Hooks are all the project's hooks, gantry's and others', disabled or not, in GitLab's order.
	Hooks []Hook
	// Disabled are the hooks GitLab does not deliver to at the moment.
	Disabled []Hook
}

// Hook is one of a project's hooks as GitLab lists it.
type Hook struct {
	ID  int64
	URL string
	// AlertStatus is executable, temporarily_disabled (until DisabledUntil) or disabled (until
	// a test delivery succeeds) — GitLab stops delivering after failed deliveries
	// (docs/gitlab.md §1.4). GitLab before 15.7 sends none, which counts as executable.
	AlertStatus   string
	DisabledUntil *time.Time
}

// Executable reports whether GitLab delivers to the hook.
func (h Hook) Executable() bool { return h.AlertStatus == "" || h.AlertStatus == "executable" }

// ErrTokenRefused is GitLab's 401: the token is wrong, expired or revoked. Every call with it
// fails the same way, so callers say it once and name where the token comes from.
var ErrTokenRefused = errors.New("GitLab refused the token (401 Unauthorized)")

// RegisterHook makes want.URL's hook on project be exactly want, so that running it again
// changes nothing: it lists every page of the project's hooks, updates the oldest hook with
// that URL — every event switch and the token set explicitly, since GitLab keeps its own
// defaults for what is left out and cannot show the token to compare — and deletes the others
// with that URL; with none, it adds one. A hook whose URL someone changed is not gantry's any
// more and is left alone. project is GitLab's path_with_namespace or id; the caller needs the
// Maintainer role. Errors never contain the token.
func (c *Client) RegisterHook(ctx context.Context, project string, want HookSpec) (HookResult, error) {
	what := fmt.Sprintf("register hook for %s on %s", redact(want.URL), project)
	if want.URL == "" {
		return HookResult{}, fmt.Errorf("%s: no URL", what)
	}
	hooks, err := c.listHooks(ctx, project)
	if err != nil {
		return HookResult{}, fmt.Errorf("%s: %w", what, err)
	}
	var same []*gl.ProjectHook
	for _, h := range hooks {
		if h.URL == want.URL {
			same = append(same, h)
		}
	}
	opt := hookOptions(want)
	fields := []zap.Field{zap.String("project", project), zap.String("url", redact(want.URL))}
	if len(same) == 0 {
		// Not retried: a POST GitLab carried out behind a failing proxy would add a second
		// hook. Running register again is the retry, and it removes such a duplicate.
		ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
		defer cancel()
		h, _, err := c.api.Projects.AddProjectHook(project, (*gl.AddProjectHookOptions)(opt), gl.WithContext(ctx))
		if err != nil {
			return HookResult{}, fmt.Errorf("%s: add: %w", what, hookError(err))
		}
		return HookResult{ID: h.ID, Created: true}, nil
	}
	// The oldest is kept, so repeated runs settle on the same hook.
	slices.SortFunc(same, func(a, b *gl.ProjectHook) int { return cmp.Compare(a.ID, b.ID) })
	res := HookResult{ID: same[0].ID}
	err = c.retry(ctx, fields, func(ctx context.Context) (*gl.Response, error) {
		ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
		defer cancel()
		_, resp, err := c.api.Projects.EditProjectHook(project, res.ID, opt, gl.WithContext(ctx))
		return resp, err
	})
	if err != nil {
		return HookResult{}, fmt.Errorf("%s: update hook %d: %w", what, res.ID, hookError(err))
	}
	for _, dup := range same[1:] {
		err := c.retry(ctx, fields, func(ctx context.Context) (*gl.Response, error) {
			ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
			defer cancel()
			return c.api.Projects.DeleteProjectHook(project, dup.ID, gl.WithContext(ctx))
		})
		// A 404 is a delete whose answer was lost and was retried, or another run's delete.
		if err != nil && !errors.Is(err, gl.ErrNotFound) {
			return res, fmt.Errorf("%s: updated hook %d, delete duplicate %d: %w", what, res.ID, dup.ID, hookError(err))
		}
		res.Removed = append(res.Removed, dup.ID)
	}
	return res, nil
}

// hookOptions sets every switch of the hooks API that client-go can send. Both the add and the
// edit options are built from it: client-go gives them the same fields, so one converts to the
// other. The branch filter is cleared because gantry itself decides which pushes matter.
func hookOptions(want HookSpec) *gl.EditProjectHookOptions {
	off := gl.Ptr(false)
	return &gl.EditProjectHookOptions{
		URL:                       gl.Ptr(want.URL),
		Token:                     gl.Ptr(want.Token),
		PushEvents:                gl.Ptr(want.PushEvents),
		TagPushEvents:             gl.Ptr(want.TagPushEvents),
		MergeRequestsEvents:       gl.Ptr(want.MergeRequestsEvents),
		EnableSSLVerification:     gl.Ptr(want.EnableSSLVerification),
		PushEventsBranchFilter:    gl.Ptr(""),
		BranchFilterStrategy:      gl.Ptr("all_branches"),
		IssuesEvents:              off,
		ConfidentialIssuesEvents:  off,
		NoteEvents:                off,
		ConfidentialNoteEvents:    off,
		JobEvents:                 off,
		PipelineEvents:            off,
		WikiPageEvents:            off,
		DeploymentEvents:          off,
		ReleasesEvents:            off,
		EmojiEvents:               off,
		ResourceAccessTokenEvents: off,
		VulnerabilityEvents:       off, // GitLab EE; other editions ignore it
	}
}

// CheckHooks lists every hook of each project and reports those GitLab does not deliver to. A
// project that cannot be listed does not stop the others: the reports of those that could are
// returned with the errors of those that could not. An empty alert_status (GitLab before it
// had one) counts as executable.
func (c *Client) CheckHooks(ctx context.Context, projects []string) ([]HookReport, error) {
	var reports []HookReport
	var errs []error
	for _, project := range projects {
		hooks, err := c.listHooks(ctx, project)
		if err != nil {
			errs = append(errs, fmt.Errorf("check hooks of %s: %w", project, err))
			continue
		}
		r := HookReport{Project: project}
		for _, h := range hooks {
			hook := Hook{ID: h.ID, URL: h.URL, AlertStatus: h.AlertStatus, DisabledUntil: h.DisabledUntil}
			r.Hooks = append(r.Hooks, hook)
			if !hook.Executable() {
				r.Disabled = append(r.Disabled, hook)
			}
		}
		reports = append(reports, r)
	}
	return reports, errors.Join(errs...)
}

// listHooks returns every hook of a project, following X-Next-Page to the last page: GitLab
// answers 20 hooks a page unless asked for more, and a hook on page 2 is still a duplicate.
func (c *Client) listHooks(ctx context.Context, project string) ([]*gl.ProjectHook, error) {
	var all []*gl.ProjectHook
	opt := &gl.ListProjectHooksOptions{ListOptions: gl.ListOptions{Page: 1}}
	fields := []zap.Field{zap.String("project", project)}
	for {
		var page []*gl.ProjectHook
		var next int64
		err := c.retry(ctx, append(fields, zap.Int64("page", opt.Page)), func(ctx context.Context) (*gl.Response, error) {
			ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
			defer cancel()
			hooks, resp, err := c.api.Projects.ListProjectHooks(project, opt, gl.WithContext(ctx))
			page = hooks
			if resp != nil {
				next = resp.NextPage
			}
			return resp, err
		})
		if err != nil {
			return nil, fmt.Errorf("list hooks page %d: %w", opt.Page, hookError(err))
		}
		all = append(all, page...)
		// A next page that does not move forward would loop for ever.
		if next <= opt.Page {
			return all, nil
		}
		opt.Page = next
	}
}

// hookError says in words what the hooks API's refusals usually mean. client-go drops the body
// of a 404; GitLab answers it for a project that does not exist or that the token cannot see.
// A 401 is the token itself: missing, wrong, expired or revoked (docs/gitlab.md §6).
func hookError(err error) error {
	switch {
	case gl.HasStatusCode(err, http.StatusUnauthorized):
		return ErrTokenRefused
	case errors.Is(err, gl.ErrNotFound):
		return fmt.Errorf("project or hook not found, or not visible to the token: %w", orchestrator.ErrNotFound)
	case gl.HasStatusCode(err, http.StatusForbidden):
		return fmt.Errorf("the token's user must be a Maintainer of the project, with api scope: %w", err)
	}
	return err
}

// redact hides a password in a URL's userinfo, which GitLab would send as basic auth.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(a URL that does not parse)"
	}
	return u.Redacted()
}

// ReenableHook asks GitLab for a test delivery of a push to a hook it disabled: a delivery
// that gets a 2xx makes the hook executable again (docs/gitlab.md §1.4). GitLab answers 201
// when the delivery succeeded and 422 when the hook failed it. Tried once: the test is a push
// the receiver acts on, and the next check is the retry.
func (c *Client) ReenableHook(ctx context.Context, project string, hookID int64) error {
	ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
	defer cancel()
	if _, err := c.api.Projects.TriggerTestProjectHook(project, hookID, gl.ProjectHookEventPush, gl.WithContext(ctx)); err != nil {
		return fmt.Errorf("test delivery to hook %d of %s: %w", hookID, project, hookError(err))
	}
	return nil
}
