package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// reviewRequest is the optional body of POST /api/v1/pipelines/{id}/approve and /decline.
type reviewRequest struct {
	// By is the reviewer's name, recorded with the decision next to the token they used.
	By string `json:"by"`
	// SHA, when given, must be the commit the pipeline builds (or its prefix).
	SHA string `json:"sha"`
}

// reviewerName is what a reviewer may call themselves: a GitLab username's characters.
var reviewerName = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)

// approvePipeline answers POST /api/v1/pipelines/{id}/approve.
func (s *Server) approvePipeline(c *echo.Context) error {
	return s.review(c, func(ctx context.Context, id int64, r orchestrator.Review) (*orchestrator.Pipeline, error) {
		return s.engine.Approve(ctx, id, r)
	})
}

// declinePipeline answers POST /api/v1/pipelines/{id}/decline.
func (s *Server) declinePipeline(c *echo.Context) error {
	return s.review(c, func(ctx context.Context, id int64, r orchestrator.Review) (*orchestrator.Pipeline, error) {
		return s.engine.Decline(ctx, id, r)
	})
}

// review reads a decision's body and hands it to the engine, recording the token that made it.
func (s *Server) review(c *echo.Context, decide func(ctx context.Context, id int64, r orchestrator.Review) (*orchestrator.Pipeline, error)) error {
	if s.engine == nil {
		return notImplemented(c)
	}
	var req reviewRequest
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		return badRequest(c, fmt.Sprintf(`body must be empty or {"by": "...", "sha": "..."}: %v`, err))
	}
	req.SHA = strings.ToLower(strings.TrimSpace(req.SHA))
	if req.By != "" && !reviewerName.MatchString(req.By) {
		return badRequest(c, "by must be a name of at most 64 letters, digits, and . _ - @")
	}
	if req.SHA != "" && !shaPattern.MatchString(req.SHA) {
		return badRequest(c, "sha must be a commit SHA in hex")
	}
	r := orchestrator.Review{By: req.By, Via: s.tokenName(c.Request()), SHA: req.SHA}
	return s.change(c, func(ctx context.Context, id int64) (*orchestrator.Pipeline, error) {
		return decide(ctx, id, r)
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
	// Force runs the commit again even if it has a pipeline.
	Force bool `json:"force"`
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
		return badRequest(c, fmt.Sprintf(`body must be {"ref": "...", "sha": "...", "force": false}: %v`, err))
	}
	req.Ref, req.SHA = strings.TrimSpace(req.Ref), strings.ToLower(strings.TrimSpace(req.SHA))
	if req.Ref == "" {
		return badRequest(c, "ref is required")
	}
	if req.SHA != "" && !shaPattern.MatchString(req.SHA) {
		return badRequest(c, "sha must be a commit SHA in hex")
	}
	acc, err := s.engine.Trigger(c.Request().Context(), project, req.Ref, req.SHA, req.Force)
	if err == nil && acc.Pipeline == nil {
		err = fmt.Errorf("trigger %s@%s: the engine returned no pipeline", project, req.Ref)
	}
	if err != nil {
		return s.fail(c, err)
	}
	if acc.Duplicate && acc.ReleaseAdded {
		// A release branch's commit whose pipeline (a merge request's) did not release: the
		// release was added to it rather than the commit run again (orchestrator.Accept).
		return c.JSON(http.StatusOK, map[string]any{"pipeline_id": acc.Pipeline.ID, "existing": true, "release_added": true,
			"detail": "the commit already has this pipeline; its release was added to it"})
	}
	if acc.Duplicate {
		// One pipeline per commit: the answer names it and says so, 200 rather than 202.
		return c.JSON(http.StatusOK, map[string]any{"pipeline_id": acc.Pipeline.ID, "existing": true,
			"detail": "the commit already has this pipeline; send \"force\": true to run it again"})
	}
	return c.JSON(http.StatusAccepted, map[string]int64{"pipeline_id": acc.Pipeline.ID})
}
