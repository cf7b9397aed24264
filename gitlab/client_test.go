package gitlab

import (
	"context"
	"errors"
	"go/build"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/orchestrator"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

// testBundle is a client of a GitLab double serving group/app, whose repository has one commit.
// The client does not sleep between retries; it records the waits it would have made.
type testBundle struct {
	srv  *gitlabtest.Server
	repo *gitlabtest.Repo
	proj gitlabtest.Project
	sha  string
	c    *Client

	mu    sync.Mutex
	waits []time.Duration
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	srv := gitlabtest.New(t)
	repo := gitlabtest.NewRepo(t)
	sha := repo.Commit("Add the app", map[string]string{
		"README.md":         "hello\n",
		"src/app.py":        "print('hi')\n",
		"tests/test_a.py":   "def test_a():\n    assert True\n",
		"docker/Dockerfile": "FROM python:3.11-slim\n",
	})
	c, err := New(srv.URL, srv.Token, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	b := &testBundle{srv: srv, repo: repo, proj: srv.AddProject("group/app", repo.Dir), sha: sha, c: c}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.waits = append(b.waits, d)
		return ctx.Err()
	}
	return b
}

func (b *testBundle) slept() []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Duration(nil), b.waits...)
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, url, token string }{
		{"no scheme", "gitlab.example.com", "glpat-x"},
		{"other scheme", "ftp://gitlab.example.com", "glpat-x"},
		{"empty URL", "", "glpat-x"},
	}
	for _, tt := range tests {
		if _, err := New(tt.url, tt.token, nil); err == nil {
			t.Errorf("New(%q, %q) error = nil, want one (%s)", tt.url, tt.token, tt.name)
		} else if tt.token != "" && strings.Contains(err.Error(), tt.token) {
			t.Errorf("New error %q shows the token", err)
		}
	}
	for _, token := range []string{"glpat-x", ""} {
		if _, err := New("https://gitlab.example.com/", token, nil); err != nil {
			t.Errorf("New(valid URL, %q) error = %v", token, err)
		}
	}
}

// TestAnonymous is gantry without a token: archives of public projects, and nothing else.
func TestAnonymous(t *testing.T) {
	t.Parallel()
	b := setup(t)
	anon, err := New(b.srv.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	public := b.srv.AddProject("group/public", b.repo.Dir)
	b.srv.MakePublic(public.ID)
	rc, err := anon.Archive(context.Background(), public.ID, b.sha)
	if err != nil {
		t.Fatalf("anonymous Archive of a public project: %v", err)
	}
	rc.Close()
	if _, err := anon.Archive(context.Background(), b.proj.ID, b.sha); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("anonymous Archive of a private project: error = %v, want ErrNotFound as GitLab hides it", err)
	}
	u := orchestrator.StatusUpdate{ProjectID: public.ID, SHA: b.sha, Ref: "main", Name: "gantry/build", State: orchestrator.StatePending}
	if _, err := anon.Post(context.Background(), u); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("anonymous Post error = %v, want the 401", err)
	}
	for _, c := range b.srv.Calls() {
		if c.User != "" {
			t.Errorf("anonymous call %s %s was made as %s", c.Method, c.Path, c.User)
		}
	}
}

func TestRateLimitWait(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := &Client{maxWait: time.Minute, now: func() time.Time { return now }}
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"retry-after seconds", http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{"retry-after date", http.Header{"Retry-After": {now.Add(5 * time.Second).Format(http.TimeFormat)}}, 5 * time.Second},
		{"retry-after wins", http.Header{"Retry-After": {"2"}, "Ratelimit-Reset": {"9999999999"}}, 2 * time.Second},
		{"reset only", http.Header{"Ratelimit-Reset": {"1772366410"}}, 10 * time.Second},
		{"reset passed", http.Header{"Ratelimit-Reset": {"1772366390"}}, 0},
		{"capped", http.Header{"Retry-After": {"3600"}}, time.Minute},
		{"none", http.Header{}, 0},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0},
	}
	for _, tt := range tests {
		if got := c.rateLimitWait(tt.header); got != tt.want {
			t.Errorf("rateLimitWait(%s: %v) = %v, want %v", tt.name, tt.header, got, tt.want)
		}
	}
}

// TestImports keeps the package an adapter: it reaches GitLab and the domain, and nothing else
// of gantry.
func TestImports(t *testing.T) {
	t.Parallel()
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		first, _, _ := strings.Cut(imp, "/")
		switch {
		case !strings.Contains(first, "."): // standard library
		case imp == "github.com/gantry-ci/gantry/orchestrator",
			imp == "gitlab.com/gitlab-org/api/client-go",
			strings.HasPrefix(imp, "go.uber.org/zap"):
		default:
			t.Errorf("package gitlab imports %s", imp)
		}
	}
}

// fakeGitLab is a client of a stand-in GitLab that answers with handle, for answers the double
// never gives (a member who is blocked, a next page that does not move on). It does not sleep
// between retries.
func fakeGitLab(t *testing.T, handle http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(handle)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, "glpat-fake", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	return c
}

// TestRetryLogged: every retry is logged on the logger the client was given, counting attempts
// from 1 with the wait before the next; a client made without a logger retries all the same.
func TestRetryLogged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	core, logs := observer.New(zapcore.WarnLevel)
	for _, logger := range []*zap.Logger{zap.New(core), nil} {
		c, err := New(b.srv.URL, b.srv.Token, logger)
		if err != nil {
			t.Fatal(err)
		}
		c.sleep = b.c.sleep
		b.srv.FailNext(1, 502)
		if _, err := c.Post(context.Background(), b.update(orchestrator.StatePending, 0)); err != nil {
			t.Fatalf("Post after one 502 (logger %v): %v", logger != nil, err)
		}
	}
	entries := logs.FilterMessage("gitlab call failed, retrying").All()
	if len(entries) != 1 {
		t.Fatalf("%d retries logged, want 1", len(entries))
	}
	if f := entries[0].ContextMap(); f["attempt"] != int64(1) || f["wait"] != 200*time.Millisecond {
		t.Errorf("retry logged with attempt %v, wait %v; want 1 and 200ms", f["attempt"], f["wait"])
	}
}
