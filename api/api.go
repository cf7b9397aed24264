// Package api serves gantry's HTTP surface besides the webhook: health, readiness, metrics, the
// pipelines REST API and the pipeline pages that commit statuses link to.
package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
	"go.uber.org/zap"
)

// Pipelines reads pipeline records.
type Pipelines interface {
	Pipeline(ctx context.Context, id int64) (*orchestrator.Pipeline, error)
}

// Check is one readiness probe (Redis, Docker); a nil error means ready.
type Check func(ctx context.Context) error

// Server holds what the routes need.
type Server struct {
	pipelines Pipelines
	checks    map[string]Check
	tokens    []string
	public    bool
	log       *zap.Logger
}

// Options configure the API.
type Options struct {
	Pipelines Pipelines
	// Checks are run by /readyz, by name.
	Checks map[string]Check
	// Tokens are the bearer tokens the REST API accepts.
	Tokens []string
	// PublicPages lets /pipelines/{id} be read without a token, for GitLab users coming from a
	// merge request.
	PublicPages bool
	Logger      *zap.Logger
}

// New builds the API server.
func New(o Options) *Server {
	s := &Server{pipelines: o.Pipelines, checks: o.Checks, tokens: o.Tokens, public: o.PublicPages, log: o.Logger}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	return s
}

// apiError is the JSON body of every error answer.
type apiError struct {
	Error  string `json:"error"`
	Detail string `json:"detail,omitempty"`
}

// errorCodes maps domain errors to HTTP codes; anything else is a 500 and is logged.
var errorCodes = []struct {
	err  error
	code int
}{
	{orchestrator.ErrNotFound, http.StatusNotFound},
	{orchestrator.ErrUnknownProject, http.StatusNotFound},
	{orchestrator.ErrInvalidTransition, http.StatusConflict},
}

// fail answers an error with its code from errorCodes.
func (s *Server) fail(c *echo.Context, err error) error {
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return c.JSON(e.code, apiError{Error: http.StatusText(e.code), Detail: err.Error()})
		}
	}
	s.log.Error("api error", zap.String("path", c.Request().URL.Path), zap.Error(err))
	return c.JSON(http.StatusInternalServerError, apiError{Error: "internal error"})
}

// authorized checks the bearer token. It compares every configured token so the time taken does
// not tell how many characters matched.
func (s *Server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got == "" {
		return false
	}
	match := false
	for _, t := range s.tokens {
		if constantTimeEqual(got, t) {
			match = true
		}
	}
	return match
}
