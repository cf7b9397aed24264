// Package api serves gantry's HTTP surface besides the webhook: health, readiness, metrics, the
// pipelines REST API and the pipeline pages that commit statuses link to.
package api

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Pipelines reads pipeline records and job logs.
type Pipelines interface {
	Pipeline(ctx context.Context, id int64) (*orchestrator.Pipeline, error)
	// LogFrom reads a job attempt's log from offset, counted in bytes since the log began
	// (bytes dropped to stay under the log cap included), and returns the text and the offset
	// to read on from; a negative offset reads the last -offset bytes. Text starts with a note
	// when bytes that were asked for are gone.
	LogFrom(ctx context.Context, pipelineID int64, job string, attempt int, offset int64) (text string, next int64, err error)
}

// Filter selects pipelines for a listing; empty fields match everything. It has the very
// fields of store.Filter, so cmd/gantry converts one into the other.
type Filter struct {
	Project string
	Ref     string
	SHA     string
	Status  orchestrator.State
	Limit   int
}

// ListFunc lists the pipelines that match a filter, newest first.
type ListFunc func(ctx context.Context, f Filter) ([]*orchestrator.Pipeline, error)

// Engine changes pipelines on the API's behalf.
type Engine interface {
	// Retry re-runs the failed and canceled jobs of a finished pipeline.
	Retry(ctx context.Context, id int64) (*orchestrator.Pipeline, error)
	// RetryJob re-runs one finished job and what depends on it.
	RetryJob(ctx context.Context, id int64, job string) (*orchestrator.Pipeline, error)
	// Cancel cancels a pending or running pipeline.
	Cancel(ctx context.Context, id int64) (*orchestrator.Pipeline, error)
	// Trigger starts a pipeline for a ref of a project; sha may be empty.
	Trigger(ctx context.Context, project, ref, sha string, force bool) (orchestrator.Accepted, error)
	// Approve lets a pipeline that waits for approval run; Decline cancels it.
	Approve(ctx context.Context, id int64, r orchestrator.Review) (*orchestrator.Pipeline, error)
	Decline(ctx context.Context, id int64, r orchestrator.Review) (*orchestrator.Pipeline, error)
}

// Check is one readiness probe (Redis, Docker); a nil error means ready.
type Check func(ctx context.Context) error

// Server holds what the routes need.
type Server struct {
	pipelines   Pipelines
	list        ListFunc
	engine      Engine
	checks      map[string]Check
	tokens      []string
	public      bool
	log         *zap.Logger
	now         func() time.Time
	followEvery time.Duration
	followWrite time.Duration
	metrics     prometheus.Gatherer
	signin      *SignIn
}

// Options configure the API.
type Options struct {
	Pipelines Pipelines
	// List lists pipelines; without it the listings answer 501.
	List ListFunc
	// Engine retries, cancels and triggers pipelines; without it those routes answer 501.
	Engine Engine
	// Checks are run by /readyz, by name.
	Checks map[string]Check
	// Metrics is what /metrics serves; without it, an empty registry.
	Metrics prometheus.Gatherer
	// Tokens are the bearer tokens the REST API accepts.
	Tokens []string
	// PublicPages lets the pipeline pages (and the page's own log and state requests) be read
	// without a token, for GitLab users coming from a merge request.
	PublicPages bool
	Logger      *zap.Logger
	// SignIn, when set (NewSignIn), signs visitors of pages that are not public in with GitLab;
	// each sees what GitLab lets them read, and may retry and cancel with Developer access.
	SignIn *SignIn
	// Now is the clock the pages tell ages by; default time.Now.
	Now func() time.Time
	// FollowEvery is how often a followed log is polled for new output; default 250ms.
	FollowEvery time.Duration
	// FollowWriteTimeout is how long a followed log may take to write one chunk and to end. A
	// follow outlives the HTTP server's WriteTimeout, which bounds ordinary answers, so the
	// deadline is moved on every round; default 30s.
	FollowWriteTimeout time.Duration
}

// New builds the API server.
func New(o Options) *Server {
	s := &Server{pipelines: o.Pipelines, list: o.List, engine: o.Engine, checks: o.Checks, tokens: o.Tokens,
		public: o.PublicPages, log: o.Logger, now: o.Now, followEvery: cmp.Or(o.FollowEvery, 250*time.Millisecond),
		followWrite: cmp.Or(o.FollowWriteTimeout, 30*time.Second), metrics: o.Metrics}
	if s.metrics == nil {
		s.metrics = prometheus.NewRegistry()
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.signin = o.SignIn
	return s
}

// apiError is the JSON body of every error answer.
type apiError struct {
	Error  string `json:"error"`
	Detail string `json:"detail,omitempty"`
}

// errorCodes maps domain errors to HTTP codes, first match wins; anything else is a 500 and is
// logged. The detail is the error's own words unless the entry has some: a Refusal says what is
// not allowed ("pipeline 3 is already canceled"); a bare ErrInvalidTransition is the state
// machine's ("cancel on success"), which happens when the pipeline moved on between reading and
// acting, and means nothing to the person who asked.
var errorCodes = []struct {
	err    error
	code   int
	detail string
}{
	{orchestrator.ErrNotFound, http.StatusNotFound, ""},
	{orchestrator.ErrUnknownProject, http.StatusNotFound, ""},
	{orchestrator.ErrRefused, http.StatusConflict, ""},
	{orchestrator.ErrInvalidTransition, http.StatusConflict, "the pipeline changed meanwhile: look at it again before asking again"},
	{orchestrator.ErrTokenRejected, http.StatusUnauthorized, ""},
}

// badRequest answers 400 with what is wrong.
func badRequest(c *echo.Context, detail string) error {
	return c.JSON(http.StatusBadRequest, apiError{Error: "bad request", Detail: detail})
}

// notFound answers 404 with what was not found.
func notFound(c *echo.Context, detail string) error {
	return c.JSON(http.StatusNotFound, apiError{Error: http.StatusText(http.StatusNotFound), Detail: detail})
}

// fail answers an error with its code from errorCodes.
func (s *Server) fail(c *echo.Context, err error) error {
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return c.JSON(e.code, apiError{Error: http.StatusText(e.code), Detail: cmp.Or(e.detail, err.Error())})
		}
	}
	s.log.Error("api error", zap.String("path", c.Request().URL.Path), zap.Error(err))
	return c.JSON(http.StatusInternalServerError, apiError{Error: "internal error"})
}

// tokenName names the API token a request carries without giving it away: the start of its
// SHA-256, which an operator can compute from the configured tokens to tell who decided.
func (s *Server) tokenName(r *http.Request) string {
	got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(got))
	return "API token sha256:" + hex.EncodeToString(sum[:4])
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
