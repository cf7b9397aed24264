package api

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strconv"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Register adds every route of the API and the pages.
func (s *Server) Register(e *echo.Echo) {
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.Handler()))
	e.GET("/api/v1/pipelines/:id", s.showPipeline, s.requireToken(false))
	e.GET("/pipelines/:id", s.pipelinePage, s.requireToken(s.public))
}

func (s *Server) requireToken(public bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			if !public && !s.authorized(c.Request()) {
				return c.JSON(http.StatusUnauthorized, apiError{Error: "unauthorized", Detail: "missing or wrong bearer token"})
			}
			return next(c)
		}
	}
}

func (s *Server) healthz(c *echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c *echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	out, code := map[string]string{}, http.StatusOK
	for name, check := range s.checks {
		out[name] = "ok"
		if err := check(ctx); err != nil {
			out[name], code = err.Error(), http.StatusServiceUnavailable
		}
	}
	return c.JSON(code, out)
}

func (s *Server) showPipeline(c *echo.Context) error {
	p, err := s.pipeline(c)
	if p == nil {
		return err
	}
	return c.JSON(http.StatusOK, pipelineView(p))
}

// pipeline loads the pipeline of the path's :id. When it returns nil, the answer was written
// and the error is what the handler returns.
func (s *Server) pipeline(c *echo.Context) (*orchestrator.Pipeline, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return nil, c.JSON(http.StatusBadRequest, apiError{Error: "bad request", Detail: "pipeline id must be a positive number"})
	}
	p, err := s.pipelines.Pipeline(c.Request().Context(), id)
	if err != nil {
		return nil, s.fail(c, err)
	}
	return p, nil
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
