package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/orchestrator"
)

func TestPrefersHTML(t *testing.T) {
	t.Parallel()
	for accept, want := range map[string]bool{
		"": false, "*/*": false, "application/json": false, "text/plain": false,
		"text/html": true, "application/xhtml+xml": true, "TEXT/HTML; charset=utf-8": true,
		// Chromium's and Firefox's for a page.
		"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8": true,
		"application/json, text/html;q=0": false, "text/html;q=0.0": false, "text/html;q=0.1": true,
		"garbage;;;": false,
	} {
		r := httptest.NewRequest(http.MethodGet, "/pipelines/5", nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		if got := prefersHTML(r); got != want {
			t.Errorf("prefersHTML(Accept: %q) = %v, want %v", accept, got, want)
		}
	}
}

// TestMissingPipelinePage: a browser asking for a pipeline that is not there gets a page
// saying so, with the page's headers; anything else, and the API always, gets the JSON error.
func TestMissingPipelinePage(t *testing.T) {
	t.Parallel()
	e := newServer(newFixture(), nil)
	const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	tests := []struct {
		path, accept string
		code         int
		ctype, body  string
	}{
		{"/pipelines/5", browser, 404, "text/html; charset=UTF-8", "There is no pipeline #5:"},
		{"/pipelines/x%3Cb%3E", browser, 400, "text/html; charset=UTF-8", "&#34;x&lt;b&gt;&#34; is no pipeline id"},
		{"/pipelines/5", "", 404, "application/json", `"error":"Not Found"`},
		{"/pipelines/5", "application/json", 404, "application/json", `"error":"Not Found"`},
		{"/pipelines/5.json", browser, 404, "application/json", `"error":"Not Found"`},
		{"/api/v1/pipelines/5", browser, 404, "application/json", `"error":"Not Found"`},
		{"/pipelines/4", browser, 200, "text/html; charset=UTF-8", `data-job="build"`},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, tt.path, nil)
		req.Header.Set("Authorization", "Bearer secret-token")
		if tt.accept != "" {
			req.Header.Set("Accept", tt.accept)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		ctype := rec.Header().Get("Content-Type")
		if rec.Code != tt.code || !strings.HasPrefix(ctype, tt.ctype) || !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("GET %s (Accept: %q) = %d %s %s, want %d %s containing %s", tt.path, tt.accept, rec.Code, ctype, rec.Body, tt.code, tt.ctype, tt.body)
		}
		if strings.HasPrefix(ctype, "text/html") && !strings.Contains(rec.Header().Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("GET %s (Accept: %q): an HTML answer without the pages' CSP", tt.path, tt.accept)
		}
	}
}

// TestBrokenStorePage: a store that fails gives a browser a 500 page that tells nothing of the
// failure (it is logged instead).
func TestBrokenStorePage(t *testing.T) {
	t.Parallel()
	fake := newFixture().fake()
	fake.PipelineFunc = func(context.Context, int64) (*orchestrator.Pipeline, error) {
		return nil, errors.New("dial tcp 10.0.0.7:6379: connection refused")
	}
	req := httptest.NewRequest(http.MethodGet, "/pipelines/4", nil)
	req.Header.Set("Accept", "text/html")
	rec := httptest.NewRecorder()
	newServer(newFixture(), func(o *Options) { o.Pipelines = fake }).ServeHTTP(rec, req)
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "could not be read") || strings.Contains(rec.Body.String(), "10.0.0.7") {
		t.Errorf("GET /pipelines/4 from a broken store = %d %s, want 500 saying nothing of the error", rec.Code, rec.Body)
	}
}
