package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/api"
	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/gantry-ci/gantry/store"
	"github.com/labstack/echo/v5"
)

// cliStore is the API's store for the CLI tests: one pipeline, its logs, and what was asked.
type cliStore struct {
	mu     sync.Mutex
	p      *orchestrator.Pipeline
	logs   map[string]string // "job attempt" → text
	filter api.Filter
	calls  []string
}

func (s *cliStore) Pipeline(_ context.Context, id int64) (*orchestrator.Pipeline, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != s.p.ID {
		return nil, fmt.Errorf("pipeline %d: %w", id, orchestrator.ErrNotFound)
	}
	cp := *s.p
	cp.Jobs = append([]orchestrator.Job(nil), s.p.Jobs...)
	return &cp, nil
}

func (s *cliStore) LogFrom(_ context.Context, _ int64, job string, attempt int, offset int64) (string, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	text := s.logs[fmt.Sprintf("%s %d", job, attempt)]
	offset = min(max(offset, 0), int64(len(text)))
	return text[offset:], int64(len(text)), nil
}

func (s *cliStore) list(_ context.Context, f api.Filter) ([]*orchestrator.Pipeline, error) {
	s.filter = f
	p, _ := s.Pipeline(context.Background(), s.p.ID)
	return []*orchestrator.Pipeline{p}, nil
}

// The engine's side: pipeline 4 is over, so it can be retried but not cancelled.
func (s *cliStore) Retry(ctx context.Context, id int64) (*orchestrator.Pipeline, error) {
	s.calls = append(s.calls, fmt.Sprintf("retry %d", id))
	return s.Pipeline(ctx, id)
}

func (s *cliStore) RetryJob(ctx context.Context, id int64, job string) (*orchestrator.Pipeline, error) {
	p, _ := s.Pipeline(ctx, id)
	if _, ok := p.Job(job); !ok {
		return nil, fmt.Errorf("pipeline %d has no job %s: %w", id, job, orchestrator.ErrNotFound)
	}
	s.calls = append(s.calls, fmt.Sprintf("retry %d %s", id, job))
	return p, nil
}

func (s *cliStore) Cancel(_ context.Context, id int64) (*orchestrator.Pipeline, error) {
	return nil, &orchestrator.Refusal{Pipeline: id, Why: "is already failed"}
}

// Approve and Decline record the review and answer with the pipeline decided.
func (s *cliStore) Approve(ctx context.Context, id int64, r orchestrator.Review) (*orchestrator.Pipeline, error) {
	return s.decide(ctx, id, orchestrator.DecisionApproved, r)
}

func (s *cliStore) Decline(ctx context.Context, id int64, r orchestrator.Review) (*orchestrator.Pipeline, error) {
	return s.decide(ctx, id, orchestrator.DecisionDeclined, r)
}

func (s *cliStore) decide(ctx context.Context, id int64, d orchestrator.Decision, r orchestrator.Review) (*orchestrator.Pipeline, error) {
	s.calls = append(s.calls, fmt.Sprintf("%s %d by %s sha %q", d, id, r.By, r.SHA))
	p, err := s.Pipeline(ctx, id)
	if err != nil {
		return nil, err
	}
	p.Approval = &orchestrator.Approval{Reason: "merge request from a fork",
		Verdict: &orchestrator.Verdict{Decision: d, By: r.By, Via: r.Via, At: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}}
	return p, nil
}

func (s *cliStore) Trigger(_ context.Context, project, ref, sha string, force bool) (orchestrator.Accepted, error) {
	s.calls = append(s.calls, fmt.Sprintf("trigger %s %s %s force=%t", project, ref, sha, force))
	if sha == "01d01d0" && !force { // the commit of pipeline 11
		return orchestrator.Accepted{Pipeline: &orchestrator.Pipeline{ID: 11}, Duplicate: true}, nil
	}
	return orchestrator.Accepted{Pipeline: &orchestrator.Pipeline{ID: 12}}, nil
}

type cliBundle struct {
	store *cliStore
	url   string
}

func setupCLI(t *testing.T) cliBundle {
	t.Helper()
	t.Parallel()
	started := time.Now().Add(-time.Hour)
	s := &cliStore{p: &orchestrator.Pipeline{ID: 4, CreatedAt: started,
		Trigger: orchestrator.Trigger{Project: "g/app", Kind: orchestrator.TriggerPush, Ref: "master", SHA: "abc123def4567890"},
		Image:   "sha256:1111", ImageRef: "registry.example.com/g/app:test-4",
		Jobs: []orchestrator.Job{
			{Name: "build", Stage: orchestrator.StageBuild, State: orchestrator.StateSuccess, Attempt: 1, Description: "built",
				StartedAt: started, FinishedAt: started.Add(3 * time.Second)},
			{Name: "test/unit", Stage: orchestrator.StageTest, State: orchestrator.StateFailed, Attempt: 2,
				Description: "exit 1:\x1b[31m 2 failed", ErrorClass: orchestrator.ClassProject,
				StartedAt: started.Add(4 * time.Second), FinishedAt: started.Add(76 * time.Second)},
		}},
		logs: map[string]string{"build 1": "built it\n", "test/unit 1": "first try\n", "test/unit 2": "\x1b[31mFAILED\x1b[0m test_x\x1b]0;pwned\x07\n"}}
	e := echo.New()
	api.New(api.Options{Pipelines: s, List: s.list, Engine: s, Tokens: []string{"cli-token"}, FollowEvery: 10 * time.Millisecond}).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return cliBundle{store: s, url: srv.URL}
}

// gantry runs the CLI against the bundle's API with the right token.
func (b cliBundle) gantry(args ...string) (string, error) {
	return b.gantryAs("cli-token", args...)
}

func (b cliBundle) gantryAs(token string, args ...string) (string, error) {
	env := map[string]string{"GANTRY_URL": b.url + "/", "GANTRY_TOKEN": token}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"pipelines"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
	return stdout.String(), err
}

func TestCLIPipelinesList(t *testing.T) {
	b := setupCLI(t)
	out, err := b.gantry("list", "--project", "g/app", "--ref", "master", "--status", "failed", "--limit", "5")
	if err != nil {
		t.Fatal(err)
	}
	want := api.Filter{Project: "g/app", Ref: "master", Status: orchestrator.StateFailed, Limit: 5}
	if b.store.filter != want {
		t.Errorf("list asked for %+v, want %+v", b.store.filter, want)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID  PROJECT  REF     SHA       STATE   CREATED  DURATION") ||
		!strings.HasPrefix(lines[1], "4   g/app    master  abc123de  failed  1h ago   1m16s") {
		t.Errorf("list printed:\n%s\nwant a header and one aligned row", out)
	}
	out, err = b.gantry("list", "--json")
	var l struct{ Pipelines []map[string]any }
	if err != nil || json.Unmarshal([]byte(out), &l) != nil || len(l.Pipelines) != 1 || l.Pipelines[0]["state"] != "failed" {
		t.Errorf("list --json = %s, %v; want the API's JSON", out, err)
	}
}

func TestCLIPipelinesShow(t *testing.T) {
	b := setupCLI(t)
	out, err := b.gantry("show", "4")
	if exitCode(err) != exitPipelineFailed || err.Error() != "pipeline 4 failed" {
		t.Errorf("show of a failed pipeline: %v (exit status %d), want exit status %d", err, exitCode(err), exitPipelineFailed)
	}
	for _, want := range []string{
		"pipeline    #4 failed\n", "ref         master (push)\n", "image       sha256:1111\n",
		"page        " + b.url + "/pipelines/4\n",
		"STAGE  JOB        STATE    ATTEMPT  DURATION  DESCRIPTION\n",
		"build  build      success  1        3s        built\n",
		"test   test/unit  failed   2        1m12s     exit 1: [31m 2 failed (project failure)\n", // no escape reaches the terminal
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show printed:\n%s\nwant a line %q", out, want)
		}
	}
	out, err = b.gantry("show", "4", "--json") // a flag after the arguments counts too
	var p struct {
		ID    int64
		State string
	}
	if exitCode(err) != exitPipelineFailed || json.Unmarshal([]byte(out), &p) != nil || p.ID != 4 || p.State != "failed" {
		t.Errorf("show --json = %s, %v; want the API's JSON and the failure's exit status", out, err)
	}
}

// TestCLIPipelinesShowExitStatus: show's exit status is the pipeline's end, as the usage says.
func TestCLIPipelinesShowExitStatus(t *testing.T) {
	b := setupCLI(t)
	for _, tt := range []struct {
		unit orchestrator.State
		code int
	}{
		{orchestrator.StateCanceled, exitPipelineCanceled},
		{orchestrator.StateSuccess, 0},
		{orchestrator.StateRunning, 0}, // still going: nothing failed yet
		{orchestrator.StateFailed, exitPipelineFailed},
	} {
		b.store.mu.Lock()
		b.store.p.Jobs[1].State = tt.unit
		b.store.mu.Unlock()
		if _, err := b.gantry("show", "4"); (tt.code == 0) != (err == nil) || (err != nil && exitCode(err) != tt.code) {
			t.Errorf("show of a pipeline whose test is %s: %v (exit status %d), want exit status %d", tt.unit, err, exitCode(err), tt.code)
		}
	}
	if _, err := b.gantry("show", "99"); exitCode(err) != 1 {
		t.Errorf("show of an unknown pipeline: %v, want exit status 1", err)
	}
}

func TestCLIPipelinesLog(t *testing.T) {
	b := setupCLI(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		// A job's output is the pusher's: its escape sequences never reach the terminal
		// unless asked for with --raw.
		{[]string{"log", "4", "test/unit"}, "FAILED test_x\n"},
		{[]string{"log", "4", "test/unit", "--raw"}, "\x1b[31mFAILED\x1b[0m test_x\x1b]0;pwned\x07\n"},
		{[]string{"log", "4", "test/unit", "--attempt", "1"}, "first try\n"},
		{[]string{"log", "--follow", "4", "build"}, "built it\n"},
		// A test's short name is taken for its job: test names are unique in a pipeline.
		{[]string{"log", "4", "unit", "--attempt", "1"}, "first try\n"},
	} {
		if out, err := b.gantry(tt.args...); out != tt.want || err != nil {
			t.Errorf("gantry pipelines %v = %q, %v; want %q", tt.args, out, err, tt.want)
		}
	}
}

// TestCLIPipelinesLogFollow prints a running job's output until the job ends, then returns.
func TestCLIPipelinesLogFollow(t *testing.T) {
	b := setupCLI(t)
	s := b.store
	s.mu.Lock()
	s.p.Jobs[1].State, s.p.Jobs[1].Attempt, s.logs["test/unit 3"] = orchestrator.StateRunning, 3, "one\n"
	s.mu.Unlock()
	go func() { // ends the job; the test waits for the CLI, which waits for this
		time.Sleep(100 * time.Millisecond)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.logs["test/unit 3"] += "two\n"
		s.p.Jobs[1].State = orchestrator.StateSuccess
	}()
	if out, err := b.gantry("log", "4", "test/unit", "--follow"); out != "one\ntwo\n" || err != nil {
		t.Errorf("log --follow = %q, %v; want both lines once the job ended", out, err)
	}
}

func TestCLIPipelinesActions(t *testing.T) {
	b := setupCLI(t)
	if out, err := b.gantry("retry", "4"); err != nil || !strings.HasPrefix(out, "pipeline    #4 failed (retry queued)\n") {
		t.Errorf("retry = %q, %v", out, err)
	}
	if _, err := b.gantry("retry", "4", "--job", "test/unit"); err != nil {
		t.Errorf("retry --job: %v", err)
	}
	// A test's short name is taken for its job, as log takes it.
	if _, err := b.gantry("retry", "4", "--job", "unit"); err != nil {
		t.Errorf("retry --job unit: %v", err)
	}
	if _, err := b.gantry("retry", "4", "--job", "nosuch"); err == nil || !strings.Contains(err.Error(), "has no job nosuch") {
		t.Errorf("retry --job nosuch: %v, want the API's not found", err)
	}
	if out, err := b.gantry("trigger", "g/app", "master", "--sha", "abcdef1"); err != nil || out != "pipeline #12\n"+b.url+"/pipelines/12\n" {
		t.Errorf("trigger = %q, %v", out, err)
	}
	if out, err := b.gantry("trigger", "g/app", "master", "--sha", "01d01d0"); err != nil ||
		out != "pipeline #11 (the commit's pipeline already; --force runs it again)\n"+b.url+"/pipelines/11\n" {
		t.Errorf("trigger of a commit with a pipeline = %q, %v", out, err)
	}
	if out, err := b.gantry("trigger", "g/app", "master", "--sha", "01d01d0", "--force"); err != nil || out != "pipeline #12\n"+b.url+"/pipelines/12\n" {
		t.Errorf("trigger --force = %q, %v", out, err)
	}
	want := []string{"retry 4", "retry 4 test/unit", "retry 4 test/unit", "trigger g/app master abcdef1 force=false",
		"trigger g/app master 01d01d0 force=false", "trigger g/app master 01d01d0 force=true"}
	if got := strings.Join(b.store.calls, "; "); got != strings.Join(want, "; ") {
		t.Errorf("the API was asked %q, want %q", got, want)
	}
	if _, err := b.gantry("cancel", "4"); err == nil || err.Error() != "pipeline 4 is already failed" {
		t.Errorf("cancel of a finished pipeline: %v, want the API's refusal in its words", err)
	}
}

// TestCLIPipelinesApproval: approve and decline send the reviewer's name (--as, else $USER
// unset here) and the reviewed commit, and print the decision with the token that made it.
func TestCLIPipelinesApproval(t *testing.T) {
	b := setupCLI(t)
	out, err := b.gantry("approve", "4", "--as", "maint", "--sha", "abc123d")
	if err != nil || !strings.HasPrefix(out, "pipeline    #4 failed (approved)\n") ||
		!strings.Contains(out, "approval    approved by maint (API token sha256:") {
		t.Errorf("approve = %q, %v", out, err)
	}
	if _, err := b.gantry("decline", "4"); err != nil {
		t.Errorf("decline: %v", err)
	}
	if _, err := b.gantry("decline", "4", "--sha", "abc"); err == nil {
		t.Error("decline --sha accepted: only approve pins a commit")
	}
	want := []string{`approved 4 by maint sha "abc123d"`, `declined 4 by  sha ""`}
	if got := strings.Join(b.store.calls, "; "); got != strings.Join(want, "; ") {
		t.Errorf("the API was asked %q, want %q", got, want)
	}
}

func TestCLIPipelinesErrors(t *testing.T) {
	b := setupCLI(t)
	for _, tt := range []struct {
		token string
		args  []string
		want  string
	}{
		{"cli-token", []string{"show", "99"}, "GET /api/v1/pipelines/99: 404 Not Found: pipeline 99: not found"},
		{"cli-token", []string{"log", "4", "test/nope"}, "404 Not Found: pipeline 4 has no job test/nope"},
		{"cli-token", []string{"log", "4", "nope"}, "404 Not Found: pipeline 4 has no job nope"},
		{"wrong", []string{"list"}, "401 Unauthorized: missing or wrong bearer token (set GANTRY_TOKEN"},
		{"", []string{"show", "4"}, "401 Unauthorized"},
		{"cli-token", []string{"list", "--status", "done"}, "400 Bad Request: status must be one of"},
		{"cli-token", []string{"show"}, "pipelines show: want 1 arguments (ID), got []"},
		{"cli-token", []string{"trigger", "g/app"}, "want 2 arguments (PROJECT REF)"},
		{"cli-token", []string{"frobnicate"}, `unknown subcommand "frobnicate"`},
		{"cli-token", nil, `unknown subcommand ""`},
	} {
		out, err := b.gantryAs(tt.token, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("gantry pipelines %v = %q, %v; want an error containing %q", tt.args, out, err, tt.want)
		}
	}
	unreachable := cliBundle{url: "http://127.0.0.1:1"}
	if _, err := unreachable.gantry("list"); err == nil || !strings.Contains(err.Error(), "(GANTRY_URL)") {
		t.Errorf("list against nothing: %v, want an error naming GANTRY_URL", err)
	}
}

// TestCLIPipelinesWithRedis runs the CLI against the API over the real store, wired the way
// serve wires it: a filtered listing, newest first, and a log over its cap.
func TestCLIPipelinesWithRedis(t *testing.T) {
	t.Parallel()
	st := store.New(testenv.Redis(t), store.Options{LogCap: 1024})
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	var ids []int64
	for i, ref := range []string{"master", "dev", "master"} {
		p := &orchestrator.Pipeline{CreatedAt: time.Now(),
			Trigger: orchestrator.Trigger{Project: "g/app", Kind: orchestrator.TriggerPush, Ref: ref, SHA: fmt.Sprintf("%d0c0ffee", i+1)},
			Jobs:    []orchestrator.Job{{Name: "build", Stage: orchestrator.StageBuild, State: orchestrator.StateCreated, Attempt: 1}}}
		d := orchestrator.Dedup{Commit: fmt.Sprint(i), CommitTTL: time.Minute}
		if _, _, err := st.CreatePipeline(ctx, p, d); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	if err := st.AppendLog(ctx, ids[2], "build", 1, []byte(strings.Repeat("x", 2000)+"\nthe end\n")); err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	list := func(ctx context.Context, f api.Filter) ([]*orchestrator.Pipeline, error) {
		return st.List(ctx, store.Filter(f))
	}
	api.New(api.Options{Pipelines: st, List: list, Tokens: []string{"cli-token"}}).Register(e)
	srv := httptest.NewServer(e)
	defer srv.Close()
	b := cliBundle{url: srv.URL}

	out, err := b.gantry("list", "--ref", "master")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 3 || !strings.HasPrefix(lines[1], fmt.Sprintf("%d  g/app    master  30c0ffee  created", ids[2])) ||
		!strings.HasPrefix(lines[2], fmt.Sprintf("%d  g/app    master  10c0ffee  created", ids[0])) {
		t.Errorf("list --ref master = %v:\n%s\nwant pipelines %d and %d, newest first", err, out, ids[2], ids[0])
	}
	out, err = b.gantry("log", fmt.Sprint(ids[2]), "build")
	if err != nil || !strings.HasPrefix(out, "[gantry: the first ") ||
		!strings.Contains(out, " bytes of this log were dropped to stay under the 1 KiB cap]\nxxx") || !strings.HasSuffix(out, "\nthe end\n") {
		t.Errorf("log of a capped job = %v:\n%s\nwant the cap's note, then the tail", err, out)
	}
}

// TestCLIPipelinesHidesURLPassword: a GANTRY_URL with a password (a proxy's basic auth) never
// shows it in an error.
func TestCLIPipelinesHidesURLPassword(t *testing.T) {
	const pw = "proxy-Pa55w0rd"
	for _, u := range []string{"http://ci:" + pw + "@127.0.0.1:1", "http://ci:" + pw + "@bad host"} {
		getenv := func(k string) string { return map[string]string{"GANTRY_URL": u}[k] }
		err := run(context.Background(), []string{"pipelines", "show", "4"}, getenv, io.Discard, io.Discard)
		if err == nil || strings.Contains(err.Error(), pw) {
			t.Errorf("pipelines show with GANTRY_URL %s = %v, want an error without the password", u, err)
		}
	}
}
