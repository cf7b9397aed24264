package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/orchestrator"
)

// fakeEngine records what it was asked and answers from its functions.
type fakeEngine struct {
	calls        []string
	RetryFunc    func(id int64) (*orchestrator.Pipeline, error)
	RetryJobFunc func(id int64, job string) (*orchestrator.Pipeline, error)
	CancelFunc   func(id int64) (*orchestrator.Pipeline, error)
	TriggerFunc  func(project, ref, sha string, force bool) (orchestrator.Accepted, error)
}

func (f *fakeEngine) Retry(_ context.Context, id int64) (*orchestrator.Pipeline, error) {
	f.calls = append(f.calls, fmt.Sprintf("retry %d", id))
	return f.RetryFunc(id)
}

func (f *fakeEngine) RetryJob(_ context.Context, id int64, job string) (*orchestrator.Pipeline, error) {
	f.calls = append(f.calls, fmt.Sprintf("retry %d %s", id, job))
	return f.RetryJobFunc(id, job)
}

func (f *fakeEngine) Cancel(_ context.Context, id int64) (*orchestrator.Pipeline, error) {
	f.calls = append(f.calls, fmt.Sprintf("cancel %d", id))
	return f.CancelFunc(id)
}

func (f *fakeEngine) Approve(_ context.Context, id int64, r orchestrator.Review) (*orchestrator.Pipeline, error) {
	f.calls = append(f.calls, fmt.Sprintf("approve %d by %q via %q sha %q", id, r.By, r.Via, r.SHA))
	return f.RetryFunc(id)
}

func (f *fakeEngine) Decline(_ context.Context, id int64, r orchestrator.Review) (*orchestrator.Pipeline, error) {
	f.calls = append(f.calls, fmt.Sprintf("decline %d by %q via %q", id, r.By, r.Via))
	return f.RetryFunc(id)
}

func (f *fakeEngine) Trigger(_ context.Context, project, ref, sha string, force bool) (orchestrator.Accepted, error) {
	f.calls = append(f.calls, fmt.Sprintf("trigger %s %s %s force=%t", project, ref, sha, force))
	return f.TriggerFunc(project, ref, sha, force)
}

// newFakeEngine knows pipeline 4 only: pipeline 4 can be retried but not cancelled (it is
// over), and only project g/app can be triggered.
func newFakeEngine() *fakeEngine {
	known := func(id int64) (*orchestrator.Pipeline, error) {
		if id != 4 {
			return nil, fmt.Errorf("pipeline %d: %w", id, orchestrator.ErrNotFound)
		}
		p := finishedPipeline()
		p.Jobs[1].State = orchestrator.StatePending
		return p, nil
	}
	return &fakeEngine{
		RetryFunc: known,
		RetryJobFunc: func(id int64, job string) (*orchestrator.Pipeline, error) {
			switch job {
			case "build":
				return nil, &orchestrator.Refusal{Pipeline: id, Job: job, Why: "is still running"}
			case "lint": // the state machine's own refusal: the job moved on meanwhile
				return nil, fmt.Errorf("%w: retry on running", orchestrator.ErrInvalidTransition)
			}
			return known(id)
		},
		CancelFunc: func(id int64) (*orchestrator.Pipeline, error) {
			return nil, &orchestrator.Refusal{Pipeline: id, Why: "is already failed"}
		},
		TriggerFunc: func(project, ref, sha string, force bool) (orchestrator.Accepted, error) {
			if project != "g/app" {
				return orchestrator.Accepted{}, fmt.Errorf("trigger %s: %w", project, orchestrator.ErrUnknownProject)
			}
			if sha == "01d01d0" && !force { // the commit of pipeline 11
				return orchestrator.Accepted{Pipeline: &orchestrator.Pipeline{ID: 11}, Duplicate: true}, nil
			}
			if sha == "0add0add" && !force { // the commit of pipeline 13, which did not release
				return orchestrator.Accepted{Pipeline: &orchestrator.Pipeline{ID: 13}, Duplicate: true, ReleaseAdded: true}, nil
			}
			return orchestrator.Accepted{Pipeline: &orchestrator.Pipeline{ID: 12}}, nil
		},
	}
}

func TestEngineRoutes(t *testing.T) {
	tests := []struct {
		name, path, body, token string
		code                    int
		want, call              string
	}{
		{"retry", "/api/v1/pipelines/4/retry", "", "secret-token", 202, `"state":"running"`, "retry 4"},
		{"retry unknown", "/api/v1/pipelines/7/retry", "", "secret-token", 404, `"error":"Not Found"`, "retry 7"},
		{"retry bad id", "/api/v1/pipelines/x/retry", "", "secret-token", 400, `"error":"bad request"`, ""},
		{"retry without token", "/api/v1/pipelines/4/retry", "", "", 401, `"error":"unauthorized"`, ""},
		{"retry job escaped", "/api/v1/pipelines/4/jobs/test%2Funit/retry", "", "secret-token", 202, `"id":4`, "retry 4 test/unit"},
		{"retry job raw", "/api/v1/pipelines/4/jobs/test/unit/retry", "", "secret-token", 202, `"id":4`, "retry 4 test/unit"},
		{"retry running job", "/api/v1/pipelines/4/jobs/build/retry", "", "secret-token", 409, `{"error":"Conflict","detail":"job build of pipeline 4 is still running"}`, "retry 4 build"},
		{"retry job that moved on", "/api/v1/pipelines/4/jobs/lint/retry", "", "secret-token", 409, `{"error":"Conflict","detail":"the pipeline changed meanwhile: look at it again before asking again"}`, "retry 4 lint"},
		{"cancel finished", "/api/v1/pipelines/4/cancel", "", "secret-token", 409, `{"error":"Conflict","detail":"pipeline 4 is already failed"}`, "cancel 4"},
		{"trigger", "/api/v1/projects/g%2Fapp/pipelines", `{"ref":"master"}`, "secret-token", 202, `{"pipeline_id":12}`, "trigger g/app master  force=false"},
		{"trigger raw path with sha", "/api/v1/projects/g/app/pipelines", `{"ref":"dev","sha":"ABCDEF1"}`, "secret-token", 202, `{"pipeline_id":12}`, "trigger g/app dev abcdef1 force=false"},
		{"trigger unknown project", "/api/v1/projects/g%2Fnope/pipelines", `{"ref":"master"}`, "secret-token", 404, `"detail":"trigger g/nope: unknown project"`, "trigger g/nope master  force=false"},
		{"trigger a commit that has a pipeline", "/api/v1/projects/g%2Fapp/pipelines", `{"ref":"dev","sha":"01d01d0"}`, "secret-token", 200, `"existing":true,"pipeline_id":11}`, "trigger g/app dev 01d01d0 force=false"},
		{"trigger a commit whose pipeline gets its release", "/api/v1/projects/g%2Fapp/pipelines", `{"ref":"master","sha":"0add0add"}`, "secret-token", 200, `"existing":true,"pipeline_id":13,"release_added":true}`, "trigger g/app master 0add0add force=false"},
		{"trigger forced", "/api/v1/projects/g%2Fapp/pipelines", `{"ref":"dev","sha":"01d01d0","force":true}`, "secret-token", 202, `{"pipeline_id":12}`, "trigger g/app dev 01d01d0 force=true"},
		{"trigger without ref", "/api/v1/projects/g%2Fapp/pipelines", `{"sha":"abcdef1"}`, "secret-token", 400, `"detail":"ref is required"`, ""},
		{"trigger bad sha", "/api/v1/projects/g%2Fapp/pipelines", `{"ref":"x","sha":"HEAD"}`, "secret-token", 400, `"detail":"sha must be`, ""},
		{"trigger unknown field", "/api/v1/projects/g%2Fapp/pipelines", `{"branch":"x"}`, "secret-token", 400, `unknown field`, ""},
		{"trigger not json", "/api/v1/projects/g%2Fapp/pipelines", `ref=x`, "secret-token", 400, `"error":"bad request"`, ""},
		{"trigger without token", "/api/v1/projects/g%2Fapp/pipelines", `{"ref":"master"}`, "", 401, `"error":"unauthorized"`, ""},
		// The token is named by the start of its SHA-256 (sha256sum of "secret-token").
		{"approve", "/api/v1/pipelines/4/approve", "", "secret-token", 202, `"id":4`, `approve 4 by "" via "API token sha256:930bbdc5" sha ""`},
		{"approve by and sha", "/api/v1/pipelines/4/approve", `{"by":"maint","sha":"ABCDEF1"}`, "secret-token", 202, `"id":4`, `approve 4 by "maint" via "API token sha256:930bbdc5" sha "abcdef1"`},
		{"approve unknown", "/api/v1/pipelines/7/approve", "", "secret-token", 404, `"error":"Not Found"`, `approve 7 by "" via "API token sha256:930bbdc5" sha ""`},
		{"approve without token", "/api/v1/pipelines/4/approve", "", "", 401, `"error":"unauthorized"`, ""},
		{"approve with a wrong token", "/api/v1/pipelines/4/approve", "", "not-the-token", 401, `"error":"unauthorized"`, ""},
		{"approve by a forged name", "/api/v1/pipelines/4/approve", `{"by":"maint\n[INFO] approved by root"}`, "secret-token", 400, `"detail":"by must be`, ""},
		{"approve bad sha", "/api/v1/pipelines/4/approve", `{"sha":"HEAD"}`, "secret-token", 400, `"detail":"sha must be`, ""},
		{"approve unknown field", "/api/v1/pipelines/4/approve", `{"user":"x"}`, "secret-token", 400, `unknown field`, ""},
		{"decline", "/api/v1/pipelines/4/decline", `{"by":"maint"}`, "secret-token", 202, `"id":4`, `decline 4 by "maint" via "API token sha256:930bbdc5"`},
		{"decline without token", "/api/v1/pipelines/4/decline", "", "", 401, `"error":"unauthorized"`, ""},
	}
	for _, tt := range tests {
		engine := newFakeEngine()
		rec := do(newServer(newFixture(), func(o *Options) { o.Engine = engine }), http.MethodPost, tt.path, tt.token, tt.body)
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("%s: POST %s = %d %s, want %d containing %s", tt.name, tt.path, rec.Code, rec.Body, tt.code, tt.want)
		}
		if got := strings.Join(engine.calls, "; "); got != tt.call {
			t.Errorf("%s: engine calls = %q, want %q", tt.name, got, tt.call)
		}
	}
}

func TestEngineRoutesWithoutEngine(t *testing.T) {
	e := newServer(newFixture(), nil)
	for _, path := range []string{"/api/v1/pipelines/4/retry", "/api/v1/pipelines/4/cancel",
		"/api/v1/pipelines/4/jobs/build/retry", "/api/v1/projects/g%2Fapp/pipelines",
		"/api/v1/pipelines/4/approve", "/api/v1/pipelines/4/decline"} {
		rec := do(e, http.MethodPost, path, "secret-token", `{"ref":"master"}`)
		if rec.Code != http.StatusNotImplemented || !strings.Contains(rec.Body.String(), `"error":"not available"`) {
			t.Errorf("POST %s without an engine = %d %s, want 501 JSON", path, rec.Code, rec.Body)
		}
	}
}
