package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// A webhook names its project by path and by id, and only the path is bound to the secret it
// carries: anyone holding one project's secret can write any id into a payload. The id gantry
// reads sources from and posts statuses on is therefore the one GitLab answers for the
// configured path, kept here.

// projectIDs remembers GitLab's id and web URL of each configured project's path. An entry is
// trusted for a TTL and then asked for again, so a project deleted and re-created under the same
// path (a new id) is followed; the last answer stays readable past the TTL through known, for a
// caller that must never wait on GitLab. It is safe for concurrent use.
type projectIDs struct {
	ttl time.Duration
	now func() time.Time

	mu     sync.RWMutex
	byPath map[string]resolvedProject // by lower-cased path, as Engine.Project looks them up
}

// resolvedProject is GitLab's answer for a project path, and when it was given.
type resolvedProject struct {
	ID     int64
	WebURL string
	at     time.Time
}

func newProjectIDs(ttl time.Duration, now func() time.Time) *projectIDs {
	return &projectIDs{ttl: ttl, now: now, byPath: map[string]resolvedProject{}}
}

// known returns the last answer for path, however old.
func (c *projectIDs) known(path string) (resolvedProject, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.byPath[strings.ToLower(path)]
	return r, ok
}

// fresh returns the answer for path when it is younger than the TTL.
func (c *projectIDs) fresh(path string) (resolvedProject, bool) {
	r, ok := c.known(path)
	if !ok || c.now().Sub(r.at) >= c.ttl {
		return resolvedProject{}, false
	}
	return r, true
}

// put records GitLab's answer for path and returns the id it replaces (0 when there was none).
func (c *projectIDs) put(path string, id int64, webURL string) (resolvedProject, int64) {
	r := resolvedProject{ID: id, WebURL: webURL, at: c.now()}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := strings.ToLower(path)
	prev := c.byPath[key].ID
	c.byPath[key] = r
	return r, prev
}

// KnownProjectID returns the id GitLab gave a configured project's path when this process last
// asked, without asking again: the webhook calls it before it answers, and an answer must never
// wait on GitLab. It is false until the project was resolved in this process (a pipeline of it
// started, the API triggered one, or ResolveProjects ran).
func (e *Engine) KnownProjectID(path string) (int64, bool) {
	r, ok := e.projectIDs.known(path)
	return r.ID, ok
}

// ResolveProjects asks GitLab for every configured project's id, so that KnownProjectID knows
// them from the start; a process calls it once when it starts. A project that fails is left for
// its first pipeline to resolve, and its error returned with the others.
func (e *Engine) ResolveProjects(ctx context.Context) error {
	var errs []error
	for _, p := range e.projects {
		if _, err := e.resolveProject(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// resolveProject returns GitLab's id and web URL of a configured project: from the cache while
// fresh, else from GitLab, and caches the answer.
func (e *Engine) resolveProject(ctx context.Context, proj Project) (resolvedProject, error) {
	if r, ok := e.projectIDs.fresh(proj.Path); ok {
		return r, nil
	}
	if e.source == nil {
		return resolvedProject{}, fmt.Errorf("resolve project %s: no GitLab to ask", proj.Path)
	}
	id, webURL, err := e.source.Project(ctx, proj.Path)
	if err != nil {
		return resolvedProject{}, fmt.Errorf("resolve project %s: %w", proj.Path, err)
	}
	r, prev := e.projectIDs.put(proj.Path, id, webURL)
	if prev != 0 && prev != id {
		e.log.Warn("project id changed in GitLab", zap.String("project", proj.Path), zap.Int64("was", prev), zap.Int64("id", id))
	}
	return r, nil
}

// sourceProject is the project a pipeline's commit is read from and its statuses are posted on,
// with its web URL. For a merge request it is the source project bind read from GitLab's merge
// request, which the trigger holds once the pipeline started; for anything else it is always
// the configured project's id as GitLab gives it, never an id a payload named.
func (e *Engine) sourceProject(ctx context.Context, p *Pipeline) (int64, string, error) {
	if p.Trigger.Kind == TriggerMergeRequest {
		return p.Trigger.ProjectID, p.Trigger.ProjectURL, nil
	}
	proj, ok := e.Project(p.Trigger.Project)
	if !ok {
		return 0, "", fmt.Errorf("pipeline %d: %s: %w", p.ID, p.Trigger.Project, ErrUnknownProject)
	}
	r, err := e.resolveProject(ctx, proj)
	if err != nil {
		return 0, "", err
	}
	return r.ID, r.WebURL, nil
}
