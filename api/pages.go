package api

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"

	"github.com/labstack/echo/v5"
)

//go:embed templates/*.html
var templatesFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{}).ParseFS(templatesFS, "templates/*.html"))

// pipelinePage is the page a commit status links to.
func (s *Server) pipelinePage(c *echo.Context) error {
	p, err := s.pipeline(c)
	if p == nil {
		return err
	}
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, "pipeline.html", pipelineView(p)); err != nil {
		return s.fail(c, err)
	}
	return c.HTMLBlob(http.StatusOK, b.Bytes())
}
