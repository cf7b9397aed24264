package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
)

// fakePipelines serves one stored pipeline.
type fakePipelines struct {
	PipelineFunc func(ctx context.Context, id int64) (*orchestrator.Pipeline, error)
}

func (f fakePipelines) Pipeline(ctx context.Context, id int64) (*orchestrator.Pipeline, error) {
	return f.PipelineFunc(ctx, id)
}

func newTestServer(public bool) *echo.Echo {
	stored := &orchestrator.Pipeline{ID: 4, Trigger: orchestrator.Trigger{Project: "g/app", Ref: "master", SHA: "abc"},
		Jobs: []orchestrator.Job{
			{Name: "build", Stage: orchestrator.StageBuild, State: orchestrator.StateSuccess, Description: "built in 3s"},
			{Name: "test/unit", Stage: orchestrator.StageTest, State: orchestrator.StateFailed, Description: "exit 1: <script>alert(1)</script>"},
		}}
	pipelines := fakePipelines{PipelineFunc: func(_ context.Context, id int64) (*orchestrator.Pipeline, error) {
		if id != stored.ID {
			return nil, fmt.Errorf("pipeline %d: %w", id, orchestrator.ErrNotFound)
		}
		return stored, nil
	}}
	e := echo.New()
	New(Options{Pipelines: pipelines, Tokens: []string{"secret-token"}, PublicPages: public}).Register(e)
	return e
}

func TestRoutes(t *testing.T) {
	tests := []struct {
		name, path, token string
		public            bool
		code              int
		body              string
	}{
		{"api without token", "/api/v1/pipelines/4", "", true, 401, `"error":"unauthorized"`},
		{"api wrong token", "/api/v1/pipelines/4", "nope", true, 401, `"error":"unauthorized"`},
		{"api", "/api/v1/pipelines/4", "secret-token", true, 200, `"state":"failed"`},
		{"api unknown", "/api/v1/pipelines/5", "secret-token", true, 404, `"error":"Not Found"`},
		{"api bad id", "/api/v1/pipelines/x", "secret-token", true, 400, `"error":"bad request"`},
		{"public page", "/pipelines/4", "", true, 200, `data-job="test/unit"`},
		{"private page without token", "/pipelines/4", "", false, 401, `"error":"unauthorized"`},
		{"page escapes", "/pipelines/4", "", true, 200, `exit 1: &lt;script&gt;alert(1)&lt;/script&gt;`},
		{"healthz", "/healthz", "", true, 200, `"status":"ok"`},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, tt.path, nil)
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		rec := httptest.NewRecorder()
		newTestServer(tt.public).ServeHTTP(rec, req)
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("%s: GET %s = %d %s, want %d containing %s", tt.name, tt.path, rec.Code, rec.Body, tt.code, tt.body)
		}
		if strings.Contains(rec.Body.String(), "<script>") {
			t.Errorf("%s: GET %s returned unescaped markup", tt.name, tt.path)
		}
	}
}
