package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// gantryProc is a gantry serve running in-process against the real Redis, engine and registry,
// with the GitLab double standing in for GitLab.
type gantryProc struct {
	url      string
	apiToken string
	secret   string
	gitlab   *gitlabtest.Server
	project  gitlabtest.Project
	repo     *gitRepo
	registry testenv.Registry
	image    string // repository of the app image, without tag
	redisURL string
	logs     *syncBuffer
}

func randomName() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Webhook secrets and API tokens for tests that do not draw their own: the config refuses
// values shorter than 16 characters or that look like placeholders.
const (
	testHookSecret = "test-hook-secret-5f3a9c1d7b2e4a60"
	testAPIToken   = "test-api-token-8e1b6d4f2a9c7e53"
)

// startGantry writes a config for the sample project and runs `gantry serve` until the test ends.
func startGantry(t *testing.T) *gantryProc {
	t.Helper()
	reg := testenv.NeedRegistry(t)
	python := testenv.Need(t, "GANTRY_TEST_PYTHON_IMAGE")
	g := &gantryProc{
		apiToken: "api-" + randomName() + randomName(), secret: "hook-" + randomName() + randomName(),
		gitlab: gitlabtest.New(t), registry: reg, redisURL: testenv.RedisURL(t),
	}
	g.repo = newGitRepo(t, "../../testdata/sample")
	g.project = g.gitlab.AddProject("group/sample", g.repo.dir)
	ns := "e2e-" + randomName()
	g.image = reg.Host + "/" + ns + "/sample"
	addr := testenv.FreeAddr(t)
	g.url = "http://" + addr
	cfg := fmt.Sprintf(`
server: {listen: %q, public_url: %q}
redis: {url: "${TEST_REDIS_URL}"}
gitlab: {url: %q, token: "${TEST_GITLAB_TOKEN}"}
workers: {concurrency: 3, job_retries: 0}
api: {tokens: ["${TEST_API_TOKEN}"]}
registries:
  - {host: %q, username: %q, password_file: registry-password}
projects:
  - path: group/sample
    webhook_secret: "${TEST_HOOK_SECRET}"
    image: %s
    build: {args: {PYTHON_IMAGE: %q}}
    base: {dockerfile: Dockerfile.base, inputs: [requirements.txt, wheels], image: %s}
    tests:
      - {name: unit, command: ["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], timeout: 2m}
      - {name: lint, command: ["python3", "lint.py", "app", "tests"], timeout: 1m}
    release: {branches: [master]}
`, addr, g.url, g.gitlab.URL, reg.Host, reg.User, g.image, python, reg.Host+"/"+ns+"/sample-base")
	dir := t.TempDir()
	path := filepath.Join(dir, "gantry.yaml")
	must(t, os.WriteFile(path, []byte(cfg), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "registry-password"), []byte(reg.Password+"\n"), 0o600))
	env := map[string]string{
		"TEST_REDIS_URL": g.redisURL, "TEST_GITLAB_TOKEN": g.gitlab.Token,
		"TEST_API_TOKEN": g.apiToken, "TEST_HOOK_SECRET": g.secret,
	}
	g.logs = runServe(t, g.url, []string{"serve", "--config", path}, env)
	return g
}

// runServe runs gantry in-process until the test ends and waits until url answers /healthz.
func runServe(t *testing.T, url string, args []string, env map[string]string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() { done <- run(ctx, args, func(k string) string { return env[k] }, io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gantry %v: %v", args, err)
		}
		if t.Failed() {
			t.Logf("gantry log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil && resp.StatusCode == http.StatusOK {
			resp.Body.Close()
			return logs
		}
		select {
		case err := <-done:
			t.Fatalf("gantry ended before it was healthy: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gantry not healthy after 30s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hook posts a webhook the way GitLab does and returns the status, the decoded answer and how
// long the answer took.
func (g *gantryProc) hook(t *testing.T, event, token string, payload any) (int, map[string]any, time.Duration) {
	t.Helper()
	return g.delivery(t, event, token, randomName(), payload)
}

// delivery posts a webhook with a given Idempotency-Key, as GitLab's "Resend request" does.
func (g *gantryProc) delivery(t *testing.T, event, token, key string, payload any) (int, map[string]any, time.Duration) {
	t.Helper()
	body, err := json.Marshal(payload)
	must(t, err)
	req, _ := http.NewRequest(http.MethodPost, g.url+"/webhooks/gitlab", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", event)
	req.Header.Set("User-Agent", "GitLab/18.6.0")
	req.Header.Set("Idempotency-Key", key)
	if token != "" {
		req.Header.Set("X-Gitlab-Token", token)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	took := time.Since(start)
	must(t, err)
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, took
}

// pushPayload is a push hook body shaped like GitLab's (docs/gitlab.md §2.1).
func (g *gantryProc) pushPayload(branch, before, after, message string) map[string]any {
	checkout := any(after)
	commits := []any{map[string]any{"id": after, "message": message, "title": message, "timestamp": time.Now().Format(time.RFC3339)}}
	if strings.Trim(after, "0") == "" {
		checkout, commits = nil, []any{}
	}
	return map[string]any{
		"object_kind": "push", "event_name": "push", "before": before, "after": after,
		"ref": "refs/heads/" + branch, "checkout_sha": checkout, "user_username": "dev",
		"project_id": g.project.ID, "commits": commits, "total_commits_count": len(commits), "push_options": map[string]any{},
		"project": map[string]any{"id": g.project.ID, "path_with_namespace": g.project.PathWithNamespace,
			"web_url": "https://gitlab.example.com/group/sample", "default_branch": "master"},
	}
}

// pipeline fetches a pipeline through the REST API.
func (g *gantryProc) pipeline(t *testing.T, id int64) apiPipeline {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/v1/pipelines/%d", g.url, id), nil)
	req.Header.Set("Authorization", "Bearer "+g.apiToken)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET pipeline %d = %d %s", id, resp.StatusCode, b)
	}
	var p apiPipeline
	must(t, json.NewDecoder(resp.Body).Decode(&p))
	return p
}

// waitFinished polls a pipeline until it is over.
func (g *gantryProc) waitFinished(t *testing.T, id int64, limit time.Duration) apiPipeline {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		p := g.pipeline(t, id)
		switch p.State {
		case "success", "failed", "canceled", "skipped":
			for _, j := range p.Jobs {
				t.Logf("pipeline %d job %-10s %-8s %6.2fs  %s", id, j.Name, j.State, j.Duration, j.Description)
			}
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("pipeline %d still %s after %s: %+v", id, p.State, limit, p.Jobs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type apiPipeline struct {
	ID      int64  `json:"id"`
	State   string `json:"state"`
	Image   string `json:"image"`
	Digest  string `json:"digest"`
	Created string `json:"created_at"`
	Jobs    []struct {
		Name        string  `json:"name"`
		State       string  `json:"state"`
		Attempt     int     `json:"attempt"`
		Description string  `json:"description"`
		ErrorClass  string  `json:"error_class"`
		ExitCode    *int    `json:"exit_code"`
		StartedAt   string  `json:"started_at"`
		FinishedAt  string  `json:"finished_at"`
		Duration    float64 `json:"duration_seconds"`
	} `json:"jobs"`
}

func (p apiPipeline) job(name string) (state, desc string) {
	for _, j := range p.Jobs {
		if j.Name == name {
			return j.State, j.Description
		}
	}
	return "", ""
}

// gitRepo is a real git repository the GitLab double serves archives from.
type gitRepo struct {
	t   *testing.T
	dir string
}

func newGitRepo(t *testing.T, from string) *gitRepo {
	t.Helper()
	r := &gitRepo{t: t, dir: t.TempDir()}
	must(t, os.CopyFS(r.dir, os.DirFS(from)))
	r.git("init", "-q", "-b", "master")
	r.git("add", "-A")
	r.git("commit", "-q", "-m", "sample service")
	return r
}

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.com",
		"GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files on a branch (created from master when new) and returns the new SHA.
func (r *gitRepo) commit(branch, message string, files map[string]string) string {
	r.t.Helper()
	if r.git("branch", "--list", branch) == "" {
		r.git("branch", branch, "master")
	}
	r.git("checkout", "-q", branch)
	for name, content := range files {
		must(r.t, os.WriteFile(filepath.Join(r.dir, name), []byte(content), 0o644))
	}
	r.git("add", "-A")
	r.git("commit", "-q", "-m", message)
	sha := r.git("rev-parse", "HEAD")
	r.git("checkout", "-q", "master")
	return sha
}

func (r *gitRepo) head(branch string) string { return r.git("rev-parse", branch) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// syncBuffer collects gantry's log lines from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
