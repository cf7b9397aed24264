package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
	"go.uber.org/zap"
)

// A signed-in visitor sees the pipelines of the projects GitLab lets them read, asked with their
// own token; one they may not read is not there for them (a 404, as GitLab answers, docs/gitlab.md
// §9.3), so a pipeline's id tells nothing of another project. Pipelines are counted as the
// project whose hook started them (Trigger.Project): a fork's merge request belongs to its target.

// accessKey is one user's access to one project (paths are case-insensitive in GitLab).
type accessKey struct {
	user    int64
	project string
}

type accessEntry struct {
	access  orchestrator.Access
	expires time.Time
}

// accessCache keeps GitLab's answers briefly: a page, its script's polls and the list ask about
// the same projects over and over. It is bounded: when full, expired answers go, and if that is
// not enough, all of them.
type accessCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	now     func() time.Time
	entries map[accessKey]accessEntry
}

func newAccessCache(ttl time.Duration, max int, now func() time.Time) *accessCache {
	return &accessCache{ttl: ttl, max: max, now: now, entries: map[accessKey]accessEntry{}}
}

func (a *accessCache) get(k accessKey) (orchestrator.Access, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.entries[k]
	if !ok || !a.now().Before(e.expires) {
		return orchestrator.Access{}, false
	}
	return e.access, true
}

func (a *accessCache) put(k accessKey, v orchestrator.Access) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if len(a.entries) >= a.max {
		for key, e := range a.entries {
			if !now.Before(e.expires) {
				delete(a.entries, key)
			}
		}
		if len(a.entries) >= a.max {
			clear(a.entries)
		}
	}
	a.entries[k] = accessEntry{access: v, expires: now.Add(a.ttl)}
}

// len is how many answers are kept.
func (a *accessCache) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.entries)
}

// accessTo is what the visitor may do in a project: from the cache, unless fresh asks GitLab
// again (before a change, never trusting an older answer).
func (s *Server) accessTo(ctx context.Context, v *session, project string, fresh bool) (orchestrator.Access, error) {
	k := accessKey{user: v.UserID, project: strings.ToLower(project)}
	if !fresh {
		if a, ok := s.signin.access.get(k); ok {
			return a, nil
		}
	}
	a, err := s.signin.accounts.ProjectAccess(ctx, v.Token, v.UserID, project)
	if err != nil {
		return orchestrator.Access{}, err
	}
	s.signin.access.put(k, a)
	return a, nil
}

// visible returns nil when the request may see the pipeline: always with public pages or an API
// token; for a signed-in visitor, when GitLab lets them read its project. Otherwise the error is
// the store's own "not found", word for word.
func (s *Server) visible(c *echo.Context, p *orchestrator.Pipeline) error {
	v := visitor(c)
	if v == nil {
		return nil
	}
	a, err := s.accessTo(c.Request().Context(), v, p.Trigger.Project, false)
	if err != nil {
		return err
	}
	if !a.Read {
		return fmt.Errorf("pipeline %d: %w", p.ID, orchestrator.ErrNotFound)
	}
	return nil
}

// readable keeps the pipelines the visitor may see, at most limit of them.
func (s *Server) readable(c *echo.Context, ps []*orchestrator.Pipeline, limit int) ([]*orchestrator.Pipeline, error) {
	var out []*orchestrator.Pipeline
	for _, p := range ps {
		switch err := s.visible(c, p); {
		case errors.Is(err, orchestrator.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			out = append(out, p)
		}
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// pageAction answers POST /pipelines/{id}/retry and /cancel, the page's buttons: only for a
// signed-in visitor, only from a form of gantry's own pages (csrfRefusal), only with Developer
// access or more to the pipeline's project, asked of GitLab right now. The button's presence is
// no permission: the request is checked from scratch.
func (s *Server) pageAction(name string, do func(ctx context.Context, id int64) (*orchestrator.Pipeline, error)) echo.HandlerFunc {
	return func(c *echo.Context) error {
		v, ok := s.signin.sessionOf(c.Request(), s.now())
		if !ok {
			return s.errorPage(c, http.StatusUnauthorized, "Sign in to change pipelines: open the pipeline's page again.")
		}
		if why := s.csrfRefusal(c, v); why != "" {
			s.log.Warn("page action refused", zap.String("action", name), zap.String("user", v.Username), zap.String("why", why))
			return s.errorPage(c, http.StatusForbidden, why)
		}
		if s.engine == nil {
			return s.errorPage(c, http.StatusNotImplemented, "This gantry process cannot change pipelines.")
		}
		id, ok := parseID(c.Param("id"))
		if !ok {
			return s.errorPage(c, http.StatusBadRequest, "Pipeline ids are positive numbers.")
		}
		ctx := c.Request().Context()
		p, err := s.pipelines.Pipeline(ctx, id)
		var a orchestrator.Access
		if err == nil {
			a, err = s.accessTo(ctx, v, p.Trigger.Project, true)
		}
		if err == nil && !a.Read {
			err = fmt.Errorf("pipeline %d: %w", id, orchestrator.ErrNotFound)
		}
		if err != nil {
			return s.pageError(c, id, err)
		}
		if a.Level < orchestrator.AccessDeveloper {
			return s.errorPage(c, http.StatusForbidden, "Retrying and canceling pipelines needs Developer access to "+p.Trigger.Project+" in GitLab.")
		}
		if _, err := do(ctx, id); err != nil {
			var refused *orchestrator.Refusal
			if errors.As(err, &refused) { // the engine's own words: "pipeline 3 is already canceled"
				msg := refused.Error()
				return s.errorPage(c, http.StatusConflict, strings.ToUpper(msg[:1])+msg[1:]+".")
			}
			if errors.Is(err, orchestrator.ErrInvalidTransition) {
				return s.errorPage(c, http.StatusConflict, fmt.Sprintf("Pipeline #%d cannot be %s in its state now.", id, name))
			}
			return s.pageError(c, id, err)
		}
		s.log.Info("pipeline changed from its page", zap.String("action", name), zap.Int64("pipeline", id),
			zap.String("user", v.Username), zap.Int64("user_id", v.UserID))
		return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/pipelines/%d", id))
	}
}

// pageError answers a browser for an error reading a pipeline: not found (or not the visitor's
// to see), a session GitLab no longer accepts, or anything else.
func (s *Server) pageError(c *echo.Context, id int64, err error) error {
	if errors.Is(err, orchestrator.ErrTokenRejected) && s.signin != nil {
		return s.toSignin(c)
	}
	if code := s.codeOf(c, err); code != http.StatusNotFound {
		return s.errorPage(c, code, "The pipeline could not be read. Try again in a moment.")
	}
	return s.errorPage(c, http.StatusNotFound,
		fmt.Sprintf("There is no pipeline #%d: it never existed, or it ended long enough ago to be forgotten.", id))
}

// csrfRefusal says why a form post is not taken as the visitor's own, or "" when it is. Two
// checks: the browser's word on where the form came from (Sec-Fetch-Site, else Origin), and
// the session's CSRF token in the form, compared in constant time. echo's CSRF middleware does
// not fit: its token lives in a cookie of its own rather than the session, and it skips the token
// whenever Sec-Fetch-Site says same-origin; here both checks must pass.
func (s *Server) csrfRefusal(c *echo.Context, v *session) string {
	r := c.Request()
	r.Body = http.MaxBytesReader(c.Response(), r.Body, 4<<10) // a form of one field
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin":
	default:
		return "This form was sent from another site (" + site + "): gantry takes changes only from its own pages."
	}
	if o := r.Header.Get("Origin"); o != "" && o != s.signin.origin {
		return "This form was sent from another site: gantry takes changes only from its own pages."
	}
	if !constantTimeEqual(r.FormValue("csrf"), v.CSRF) {
		return "This form is out of date or not gantry's: reload the page and try again."
	}
	return ""
}
