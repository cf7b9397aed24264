package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/google/go-cmp/cmp"
)

func TestListPipelines(t *testing.T) {
	tests := []struct {
		name, query string
		code        int
		want        Filter
		body        string
	}{
		{"defaults", "", 200, Filter{Limit: 20}, `{"pipelines":[{"id":4,`},
		{"every filter", "?project=g%2Fapp&ref=master&sha=abc1&status=failed&limit=5", 200,
			Filter{Project: "g/app", Ref: "master", SHA: "abc1", Status: orchestrator.StateFailed, Limit: 5}, `"state":"failed"`},
		{"limit of one", "?limit=1", 200, Filter{Limit: 1}, `"pipelines"`},
		{"limit lowered to the maximum", "?limit=1000", 200, Filter{Limit: 100}, `"pipelines"`},
		{"bad limit", "?limit=0", 400, Filter{}, `"detail":"limit must be a number from 1 to 100"`},
		{"bad status", "?status=done", 400, Filter{}, `"detail":"status must be one of`},
	}
	for _, tt := range tests {
		var got Filter
		list := func(_ context.Context, f Filter) ([]*orchestrator.Pipeline, error) {
			got = f
			return []*orchestrator.Pipeline{finishedPipeline()}, nil
		}
		rec := do(newServer(newFixture(), func(o *Options) { o.List = list }), http.MethodGet, "/api/v1/pipelines"+tt.query, "secret-token", "")
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("%s: GET /api/v1/pipelines%s = %d %s, want %d containing %s", tt.name, tt.query, rec.Code, rec.Body, tt.code, tt.body)
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s: filter (-want +got):\n%s", tt.name, d)
		}
	}
}

func TestListPipelinesShape(t *testing.T) {
	none := func(context.Context, Filter) ([]*orchestrator.Pipeline, error) { return nil, nil }
	e := newServer(newFixture(), func(o *Options) { o.List = none })
	rec := do(e, http.MethodGet, "/api/v1/pipelines", "secret-token", "")
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"pipelines":[]}` {
		t.Errorf("empty listing = %d %s, want {\"pipelines\":[]}", rec.Code, rec.Body)
	}
	if rec := do(e, http.MethodGet, "/api/v1/pipelines", "", ""); rec.Code != 401 {
		t.Errorf("listing without token = %d, want 401", rec.Code)
	}
	if rec := do(newServer(newFixture(), nil), http.MethodGet, "/api/v1/pipelines", "secret-token", ""); rec.Code != 501 {
		t.Errorf("listing without List = %d, want 501", rec.Code)
	}
	// A listed pipeline reads as GET one does.
	one := do(e, http.MethodGet, "/api/v1/pipelines/4", "secret-token", "")
	some := func(context.Context, Filter) ([]*orchestrator.Pipeline, error) {
		return []*orchestrator.Pipeline{finishedPipeline()}, nil
	}
	listed := do(newServer(newFixture(), func(o *Options) { o.List = some }), http.MethodGet, "/api/v1/pipelines", "secret-token", "")
	var l struct{ Pipelines []json.RawMessage }
	if err := json.Unmarshal(listed.Body.Bytes(), &l); err != nil || len(l.Pipelines) != 1 {
		t.Fatalf("listing = %s, %v", listed.Body, err)
	}
	if got, want := string(l.Pipelines[0]), strings.TrimSpace(one.Body.String()); got != want {
		t.Errorf("listed pipeline = %s, want what GET one says: %s", got, want)
	}
}
