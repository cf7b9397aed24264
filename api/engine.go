package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
)

// The routes that change pipelines hand the work to the Engine and answer 202 with the
// pipeline as it stands once the change is queued.

// retryPipeline answers POST /api/v1/pipelines/{id}/retry.
func (s *Server) retryPipeline(c *echo.Context) error {
	return s.change(c, func(ctx context.Context, id int64) (*orchestrator.Pipeline, error) {
		return s.engine.Retry(ctx, id)
	})
}

// cancelPipeline answers POST /api/v1/pipelines/{id}/cancel.
func (s *Server) cancelPipeline(c *echo.Context) error {
	return s.change(c, func(ctx context.Context, id int64) (*orchestrator.Pipeline, error) {
		return s.engine.Cancel(ctx, id)
	})
}

// retryJob answers POST /api/v1/pipelines/{id}/jobs/{job}/retry.
func (s *Server) retryJob(c *echo.Context) error {
	job, action, ok := splitTail(c.Param("*"))
	if !ok || action != "retry" {
		return s.noRoute(c)
	}
	return s.change(c, func(ctx context.Context, id int64) (*orchestrator.Pipeline, error) {
		return s.engine.RetryJob(ctx, id, job)
	})
}

// change runs an Engine call on the pipeline of the path's :id and answers 202 with the
// pipeline it returns.
func (s *Server) change(c *echo.Context, do func(ctx context.Context, id int64) (*orchestrator.Pipeline, error)) error {
	if s.engine == nil {
		return notImplemented(c)
	}
	id, ok := parseID(c.Param("id"))
	if !ok {
		return badRequest(c, "pipeline id must be a positive number")
	}
	p, err := do(c.Request().Context(), id)
	if err != nil {
		return s.fail(c, err)
	}
	return c.JSON(http.StatusAccepted, pipelineView(p))
}

func notImplemented(c *echo.Context) error {
	return c.JSON(http.StatusNotImplemented, apiError{Error: "not available", Detail: "this gantry process cannot change pipelines"})
}

// triggerRequest is the body of POST /api/v1/projects/{project}/pipelines.
type triggerRequest struct {
	Ref string `json:"ref"`
	SHA string `json:"sha"`
}

// shaPattern is a full or abbreviated commit SHA (SHA-1 or SHA-256).
var shaPattern = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

// triggerPipeline answers POST /api/v1/projects/{project}/pipelines with {"pipeline_id": N}.
func (s *Server) triggerPipeline(c *echo.Context) error {
	project, action, ok := splitTail(c.Param("*"))
	if !ok || action != "pipelines" {
		return s.noRoute(c)
	}
	if s.engine == nil {
		return notImplemented(c)
	}
	var req triggerRequest
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return badRequest(c, fmt.Sprintf(`body must be {"ref": "...", "sha": "..."}: %v`, err))
	}
	req.Ref, req.SHA = strings.TrimSpace(req.Ref), strings.ToLower(strings.TrimSpace(req.SHA))
	if req.Ref == "" {
		return badRequest(c, "ref is required")
	}
	if req.SHA != "" && !shaPattern.MatchString(req.SHA) {
		return badRequest(c, "sha must be a commit SHA in hex")
	}
	acc, err := s.engine.Trigger(c.Request().Context(), project, req.Ref, req.SHA)
	if err == nil && acc.Pipeline == nil {
		err = fmt.Errorf("trigger %s@%s: the engine returned no pipeline", project, req.Ref)
	}
	if err != nil {
		return s.fail(c, err)
	}
	return c.JSON(http.StatusAccepted, map[string]int64{"pipeline_id": acc.Pipeline.ID})
}
