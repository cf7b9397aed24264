package api

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Register adds every route of the API and the pages.
//
// Job names hold a slash ("test/unit") and project paths do too ("group/app"); clients send
// them escaped ("test%2Funit") or raw, so those routes end in a wildcard that the handler
// splits (see splitTail).
func (s *Server) Register(e *echo.Echo) {
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{})))

	token, page := s.requireToken(false), s.pageAuth
	e.GET("/api/v1/pipelines", s.listPipelines, token)
	e.GET("/api/v1/pipelines/:id", s.showPipeline, token)
	e.GET("/api/v1/pipelines/:id/jobs/*", s.jobLog, token)
	e.POST("/api/v1/pipelines/:id/jobs/*", s.retryJob, token)
	e.POST("/api/v1/pipelines/:id/retry", s.retryPipeline, token)
	e.POST("/api/v1/pipelines/:id/cancel", s.cancelPipeline, token)
	e.POST("/api/v1/pipelines/:id/approve", s.approvePipeline, token)
	e.POST("/api/v1/pipelines/:id/decline", s.declinePipeline, token)
	e.POST("/api/v1/projects/*", s.triggerPipeline, token)
	e.GET("/api/v1/projects/*", s.noRoute, token) // else echo's own 405, not in the API's shape
	e.Any("/api/v1/*", s.noRoute, token)

	// The pages, and what their script asks for: the log and the state of the pipeline
	// shown, under the pages' own rule, so a public page needs no token for them either.
	e.GET("/pipelines", s.listPage, page)
	e.GET("/pipelines/:id", s.pipelinePage, page)
	e.GET("/pipelines/:id/jobs/*", s.jobLog, page)
	e.GET("/assets/:name", s.asset)

	if s.signin != nil {
		e.GET("/signin", s.signinStart)
		e.GET("/signin/callback", s.signinCallback)
		e.POST("/signout", s.signout)
		e.POST("/pipelines/:id/retry", s.pageAction("retried", func(ctx context.Context, id int64) (*orchestrator.Pipeline, error) {
			return s.engine.Retry(ctx, id)
		}))
		e.POST("/pipelines/:id/cancel", s.pageAction("canceled", func(ctx context.Context, id int64) (*orchestrator.Pipeline, error) {
			return s.engine.Cancel(ctx, id)
		}))
	}
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
	// Anyone may ask (load balancers carry no token), but a check's error names addresses and
	// internals: strangers read only which part is unreachable, API token holders the detail.
	detail := s.authorized(c.Request())
	out, code := map[string]string{}, http.StatusOK
	for name, check := range s.checks {
		out[name] = "ok"
		if err := check(ctx); err != nil {
			code = http.StatusServiceUnavailable
			msg := redactUserinfo(err.Error())
			s.log.Warn("not ready", zap.String("check", name), zap.String("error", msg))
			out[name] = "unreachable"
			if detail {
				out[name] += ": " + msg
			}
		}
	}
	return c.JSON(code, out)
}

// userinfo is the user:password@ of a URL inside a message.
var userinfo = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://)[^/\s@]*@`)

// redactUserinfo hides the credentials of any URL in a message: a Redis or registry URL
// carries its password there, and client errors quote URLs whole.
func redactUserinfo(msg string) string {
	return userinfo.ReplaceAllString(msg, "${1}[redacted]@")
}

// noRoute answers paths under /api/v1 that name nothing, in the API's error shape.
func (s *Server) noRoute(c *echo.Context) error {
	return notFound(c, "no such route: "+c.Request().Method+" "+c.Request().URL.Path)
}

func (s *Server) showPipeline(c *echo.Context) error {
	p, err := s.pipeline(c, c.Param("id"))
	if p == nil {
		return err
	}
	return c.JSON(http.StatusOK, pipelineView(p))
}

// pipeline loads the pipeline whose id is given. When it returns nil, the answer was written
// and the error is what the handler returns.
func (s *Server) pipeline(c *echo.Context, param string) (*orchestrator.Pipeline, error) {
	id, ok := parseID(param)
	if !ok {
		return nil, badRequest(c, "pipeline id must be a positive number")
	}
	p, err := s.pipelines.Pipeline(c.Request().Context(), id)
	if err == nil {
		err = s.visible(c, p)
	}
	if err != nil {
		return nil, s.fail(c, err)
	}
	return p, nil
}

func parseID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

// splitTail splits a wildcard path like "test%2Funit/log" into its name, unescaped, and its
// last segment. It takes the raw or the escaped form of a name with slashes alike.
func splitTail(tail string) (name, last string, ok bool) {
	i := strings.LastIndexByte(tail, '/')
	if i <= 0 {
		return "", "", false
	}
	name, err := url.PathUnescape(tail[:i])
	return name, tail[i+1:], err == nil && name != ""
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
