package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
)

// Listing limits, as the REST API documents them.
const (
	defaultLimit = 20
	maxLimit     = 100
)

// listPipelines answers GET /api/v1/pipelines: {"pipelines": [...]}, newest first.
func (s *Server) listPipelines(c *echo.Context) error {
	f, err := parseFilter(c.QueryParams())
	if err != nil {
		return badRequest(c, err.Error())
	}
	ps, err := s.listed(c, f)
	if ps == nil {
		return err
	}
	out := make([]pipelineJSON, 0, len(ps))
	for _, p := range ps {
		out = append(out, pipelineView(p))
	}
	return c.JSON(http.StatusOK, map[string]any{"pipelines": out})
}

// listed runs the listing. When it returns nil, the answer was written and the error is what
// the handler returns.
func (s *Server) listed(c *echo.Context, f Filter) ([]*orchestrator.Pipeline, error) {
	if s.list == nil {
		return nil, c.JSON(http.StatusNotImplemented, apiError{Error: "not available", Detail: "this gantry process cannot list pipelines"})
	}
	ps, err := s.list(c.Request().Context(), f)
	if err != nil {
		return nil, s.fail(c, err)
	}
	if ps == nil {
		ps = []*orchestrator.Pipeline{}
	}
	return ps, nil
}

// parseFilter reads project, ref, sha, status and limit. A limit above the maximum is
// lowered to it rather than refused, so a script asking for "everything" gets what there is.
func parseFilter(q url.Values) (Filter, error) {
	f := Filter{Project: q.Get("project"), Ref: q.Get("ref"), SHA: q.Get("sha"),
		Status: orchestrator.State(q.Get("status")), Limit: defaultLimit}
	if f.Status != "" && !slices.Contains(orchestrator.PipelineStates, f.Status) {
		return f, fmt.Errorf("status must be one of %v", orchestrator.States)
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return f, fmt.Errorf("limit must be a number from 1 to %d", maxLimit)
		}
		f.Limit = min(n, maxLimit)
	}
	return f, nil
}
