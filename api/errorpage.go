package api

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
	"go.uber.org/zap"
)

// prefersHTML reports whether a request comes from a browser: its Accept header takes
// text/html. Scripts, the CLI and GitLab ask for JSON or send no Accept header, and keep
// the API's JSON errors.
func prefersHTML(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mediaType, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || (mediaType != "text/html" && mediaType != "application/xhtml+xml") {
			continue
		}
		if q, err := strconv.ParseFloat(params["q"], 64); params["q"] == "" || (err == nil && q > 0) {
			return true
		}
	}
	return false
}

// errorPageData is what error.html shows.
type errorPageData struct {
	Code    int
	Title   string
	Message string
}

// errorPage answers a browser with a page saying what went wrong, with the code it stands for.
func (s *Server) errorPage(c *echo.Context, code int, message string) error {
	return s.render(c, code, "error.html", errorPageData{Code: code, Title: http.StatusText(code), Message: message})
}

// codeOf is the HTTP code of an error by errorCodes; a 500 is logged, since no JSON answer
// (fail) will log it.
func (s *Server) codeOf(c *echo.Context, err error) int {
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	s.log.Error("page error", zap.String("path", c.Request().URL.Path), zap.Error(err))
	return http.StatusInternalServerError
}

// pagePipeline loads the pipeline a page shows. When it returns nil, the answer was written
// (a page for a browser, the API's JSON for anything else) and the error is what the handler
// returns.
func (s *Server) pagePipeline(c *echo.Context, param string) (*orchestrator.Pipeline, error) {
	if !prefersHTML(c.Request()) {
		return s.pipeline(c, param)
	}
	id, ok := parseID(param)
	if !ok {
		return nil, s.errorPage(c, http.StatusBadRequest, fmt.Sprintf("%q is no pipeline id: ids are positive numbers.", param))
	}
	p, err := s.pipelines.Pipeline(c.Request().Context(), id)
	if err == nil {
		err = s.visible(c, p)
	}
	if err == nil {
		return p, nil
	}
	return nil, s.pageError(c, id, err)
}
