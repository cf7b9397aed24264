package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
)

// fakePipelines serves pipelines and logs from functions.
type fakePipelines struct {
	PipelineFunc func(ctx context.Context, id int64) (*orchestrator.Pipeline, error)
	LogFromFunc  func(ctx context.Context, id int64, job string, attempt int, offset int64) (string, int64, error)
}

func (f fakePipelines) Pipeline(ctx context.Context, id int64) (*orchestrator.Pipeline, error) {
	return f.PipelineFunc(ctx, id)
}

func (f fakePipelines) LogFrom(ctx context.Context, id int64, job string, attempt int, offset int64) (string, int64, error) {
	return f.LogFromFunc(ctx, id, job, attempt, offset)
}

// memory is a store of pipelines and logs in memory; tests change it while a server reads it.
type memory struct {
	mu        sync.Mutex
	pipelines map[int64]*orchestrator.Pipeline
	logs      map[string]string // "id job attempt" → text
}

func newMemory(ps ...*orchestrator.Pipeline) *memory {
	m := &memory{pipelines: map[int64]*orchestrator.Pipeline{}, logs: map[string]string{}}
	for _, p := range ps {
		m.pipelines[p.ID] = p
	}
	return m
}

func logKey(id int64, job string, attempt int) string {
	return fmt.Sprintf("%d %s %d", id, job, attempt)
}

func (m *memory) appendLog(id int64, job string, attempt int, text string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logs[logKey(id, job, attempt)] += text
}

// setJob changes a job of a stored pipeline.
func (m *memory) setJob(id int64, job string, edit func(*orchestrator.Job)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, _ := m.pipelines[id].Job(job)
	edit(j)
}

func (m *memory) fake() fakePipelines {
	return fakePipelines{
		PipelineFunc: func(_ context.Context, id int64) (*orchestrator.Pipeline, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			p, ok := m.pipelines[id]
			if !ok {
				return nil, fmt.Errorf("pipeline %d: %w", id, orchestrator.ErrNotFound)
			}
			cp := *p
			cp.Jobs = append([]orchestrator.Job(nil), p.Jobs...)
			return &cp, nil
		},
		LogFromFunc: func(_ context.Context, id int64, job string, attempt int, offset int64) (string, int64, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			text := m.logs[logKey(id, job, attempt)]
			if offset < 0 {
				offset = max(0, int64(len(text))+offset)
			}
			offset = min(offset, int64(len(text)))
			return text[offset:], int64(len(text)), nil
		},
	}
}

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// finishedPipeline is pipeline 4: built, one test failed on its second attempt with markup in
// its description and log, one passed, and the release skipped.
func finishedPipeline() *orchestrator.Pipeline {
	exit1 := 1
	return &orchestrator.Pipeline{ID: 4, CreatedAt: t0,
		Trigger:  orchestrator.Trigger{Project: "g/app", Kind: orchestrator.TriggerPush, Ref: "master", SHA: "abc123def4567890"},
		Image:    "sha256:1111aaaa2222bbbb3333cccc4444dddd5555eeee6666ffff7777000088889999",
		ImageRef: "registry.example.com/g/app:test-4",
		Jobs: []orchestrator.Job{
			{Name: "build", Stage: orchestrator.StageBuild, State: orchestrator.StateSuccess, Attempt: 1, Description: "built in 3s",
				StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(4 * time.Second)},
			{Name: "test/unit", Stage: orchestrator.StageTest, State: orchestrator.StateFailed, Attempt: 2,
				Description: "exit 1: <script>alert(1)</script>", ErrorClass: orchestrator.ClassProject, ExitCode: &exit1,
				StartedAt: t0.Add(5 * time.Second), FinishedAt: t0.Add(77 * time.Second)},
			{Name: "test/lint", Stage: orchestrator.StageTest, State: orchestrator.StateSuccess, Attempt: 1, Description: "passed",
				StartedAt: t0.Add(5 * time.Second), FinishedAt: t0.Add(9 * time.Second)},
			{Name: "release", Stage: orchestrator.StageRelease, State: orchestrator.StateSkipped, Attempt: 1, Description: "not run: a test failed"},
		}}
}

// markupLog is a test log that tries to become markup on the page.
const markupLog = "collecting ...\n<script>document.title='pwned'</script>\n<img src=x onerror=\"document.body.dataset.pwned=1\">\n" +
	"</pre><b id=\"injected\">bold</b>\nFAILED test_x.py::test_y - assert 1 == 2\n"

func newFixture() *memory {
	m := newMemory(finishedPipeline())
	m.appendLog(4, "build", 1, "Step 1/3 : FROM python:3.11-slim\nSuccessfully built 1111aaaa\n")
	m.appendLog(4, "test/unit", 1, "first attempt: engine lost\n")
	m.appendLog(4, "test/unit", 2, markupLog)
	m.appendLog(4, "test/lint", 1, "lint ok\n")
	return m
}

// newServer serves m with the options tests usually want, changed by edit.
func newServer(m *memory, edit func(*Options)) *echo.Echo {
	o := Options{Pipelines: m.fake(), Tokens: []string{"secret-token"}, PublicPages: true,
		Now: func() time.Time { return t0.Add(10 * time.Minute) }, FollowEvery: 10 * time.Millisecond}
	if edit != nil {
		edit(&o)
	}
	e := echo.New()
	New(o).Register(e)
	return e
}

// do runs one request against e.
func do(e *echo.Echo, method, path, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
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
		{"api duration", "/api/v1/pipelines/4", "secret-token", true, 200, `"duration_seconds":76`},
		{"api unknown", "/api/v1/pipelines/5", "secret-token", true, 404, `"error":"Not Found"`},
		{"api bad id", "/api/v1/pipelines/x", "secret-token", true, 400, `"error":"bad request"`},
		{"api zero id", "/api/v1/pipelines/0", "secret-token", true, 400, `"detail":"pipeline id must be a positive number"`},
		{"api no route", "/api/v1/nothing", "secret-token", true, 404, `"detail":"no such route: GET /api/v1/nothing"`},
		{"api no route without token", "/api/v1/nothing", "", true, 401, `"error":"unauthorized"`},
		{"public page", "/pipelines/4", "", true, 200, `data-job="test/unit"`},
		{"page state", "/pipelines/4", "", true, 200, `<span class="state failed">failed</span>`},
		{"page json", "/pipelines/4.json", "", true, 200, `"state":"failed"`},
		{"page unknown", "/pipelines/5", "", true, 404, `"error":"Not Found"`},
		{"private page without token", "/pipelines/4", "", false, 401, `"error":"unauthorized"`},
		{"private page json without token", "/pipelines/4.json", "", false, 401, `"error":"unauthorized"`},
		{"private page log without token", "/pipelines/4/jobs/build/log", "", false, 401, `"error":"unauthorized"`},
		{"private page with token", "/pipelines/4", "secret-token", false, 200, `data-job="build"`},
		{"page escapes", "/pipelines/4", "", true, 200, `exit 1: &lt;script&gt;alert(1)&lt;/script&gt;`},
		{"healthz", "/healthz", "", true, 200, `"status":"ok"`},
	}
	for _, tt := range tests {
		m := newFixture()
		rec := do(newServer(m, func(o *Options) { o.PublicPages = tt.public }), http.MethodGet, tt.path, tt.token, "")
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("%s: GET %s = %d %s, want %d containing %s", tt.name, tt.path, rec.Code, rec.Body, tt.code, tt.body)
		}
		if strings.Contains(rec.Body.String(), "<script>") || strings.Contains(rec.Body.String(), "secret-token") {
			t.Errorf("%s: GET %s returned unescaped markup or a token:\n%s", tt.name, tt.path, rec.Body)
		}
	}
}

// TestNewDefaults: options left out get their documented defaults (a followed log polled every
// 250ms with 30s to write, a clock, a logger, an empty metrics registry), never zero values that
// would make a ticker panic or a deadline pass at once.
func TestNewDefaults(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	if s.followEvery != 250*time.Millisecond || s.followWrite != 30*time.Second || s.now == nil || s.log == nil || s.metrics == nil {
		t.Errorf("New(Options{}) = follow every %v, write %v, now %v, log %v, metrics %v; want 250ms, 30s and the rest set",
			s.followEvery, s.followWrite, s.now != nil, s.log != nil, s.metrics != nil)
	}
}
