package main

import (
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestEndToEnd drives `gantry serve` with real webhook requests against the real Docker engine,
// Redis and registry, with the GitLab double recording every status. It is one test because the
// steps share one gantry and one registry repository, and later steps check that earlier
// releases are left alone.
func TestEndToEnd(t *testing.T) {
	g := startGantry(t)
	reg := registryClient{host: g.registry.Host, user: g.registry.User, password: g.registry.Password}
	repo := repoPath(g.image, g.registry.Host)
	t.Cleanup(func() { removeImages(t, g.image) })

	master := g.repo.head("master")
	var coldWall time.Duration
	t.Run("push to master builds, tests and releases", func(t *testing.T) {
		start := time.Now()
		code, ans, took := g.hook(t, "Push Hook", g.secret, g.pushPayload("master", zero, master, "sample service"))
		if code != http.StatusAccepted || ans["pipeline_id"] == nil {
			t.Fatalf("push master answered %d %v, want 202 with a pipeline_id", code, ans)
		}
		t.Logf("figure: webhook answer (cold) %s", took)
		p := g.waitFinished(t, int64(ans["pipeline_id"].(float64)), 10*time.Minute)
		coldWall = time.Since(start)
		t.Logf("figure: master pipeline wall time, cold: %s", coldWall.Round(10*time.Millisecond))
		for _, name := range []string{"build", "test/unit", "test/lint", "release"} {
			if st, desc := p.job(name); st != "success" {
				t.Errorf("job %s = %s (%s), want success", name, st, desc)
			}
		}
		if _, desc := p.job("test/unit"); !strings.Contains(desc, "3 passed") {
			t.Errorf("test/unit description = %q, want pytest's summary", desc)
		}
		short := master[:8]
		if got, want := reg.tags(t, repo), []string{short, "latest"}; !cmp.Equal(got, want) {
			t.Errorf("registry tags = %v, want %v", got, want)
		}
		labels, digest := reg.labels(t, repo, short)
		if labels["org.opencontainers.image.revision"] != master {
			t.Errorf("image revision label = %q, want %s", labels["org.opencontainers.image.revision"], master)
		}
		if digest != p.Digest {
			t.Errorf("registry digest %s, pipeline recorded %s", digest, p.Digest)
		}
		waitStatuses(t, g, master, map[string][]string{
			"gantry/build": {"pending", "running", "success"}, "gantry/test/unit": {"pending", "running", "success"},
			"gantry/test/lint": {"pending", "running", "success"}, "gantry/release": {"pending", "running", "success"},
		})
		assertPinned(t, g, master)
	})

	t.Run("code-only change on master reuses the base", func(t *testing.T) {
		sha := g.repo.commit("master", "friendlier greeting", map[string]string{"app/version.py": "VERSION = '0.2'\n"})
		start := time.Now()
		code, ans, took := g.hook(t, "Push Hook", g.secret, g.pushPayload("master", master, sha, "friendlier greeting"))
		if code != http.StatusAccepted {
			t.Fatalf("push answered %d %v", code, ans)
		}
		p := g.waitFinished(t, int64(ans["pipeline_id"].(float64)), 5*time.Minute)
		t.Logf("figure: webhook answer (warm) %s; master pipeline wall time, warm (code-only change): %s (cold was %s)",
			took, time.Since(start).Round(10*time.Millisecond), coldWall.Round(10*time.Millisecond))
		if p.State != "success" {
			t.Fatalf("pipeline = %s: %+v", p.State, p.Jobs)
		}
		if _, desc := p.job("build"); !strings.Contains(desc, "base reused") {
			t.Errorf("build description = %q, want the base reused", desc)
		}
		if tags := reg.tags(t, repo); !slices.Contains(tags, sha[:8]) {
			t.Errorf("registry tags = %v, want %s among them", tags, sha[:8])
		}
		master = sha
	})

	t.Run("push to another branch never releases", func(t *testing.T) {
		before := reg.tags(t, repo)
		sha := g.repo.commit("feature", "try something", map[string]string{"app/feature.py": "ENABLED = True\n"})
		code, ans, _ := g.hook(t, "Push Hook", g.secret, g.pushPayload("feature", zero, sha, "try something"))
		if code != http.StatusAccepted {
			t.Fatalf("push feature answered %d %v", code, ans)
		}
		p := g.waitFinished(t, int64(ans["pipeline_id"].(float64)), 5*time.Minute)
		if p.State != "success" {
			t.Errorf("feature pipeline = %s, want success: %+v", p.State, p.Jobs)
		}
		if st, _ := p.job("release"); st != "" {
			t.Errorf("feature pipeline has a release job (%s)", st)
		}
		if got := reg.tags(t, repo); !cmp.Equal(got, before) {
			t.Errorf("registry tags changed from %v to %v", before, got)
		}
		history := g.gitlab.StatusHistory(g.project.ID, sha)
		if _, posted := history["gantry/release"]; posted {
			t.Errorf("a gantry/release status was posted for a feature branch: %v", history["gantry/release"])
		}
		waitStatuses(t, g, sha, map[string][]string{
			"gantry/build": {"pending", "running", "success"}, "gantry/test/unit": {"pending", "running", "success"},
			"gantry/test/lint": {"pending", "running", "success"},
		})
	})

	t.Run("a failing test stops the release", func(t *testing.T) {
		before := reg.tags(t, repo)
		sha := g.repo.commit("master", "break a test", map[string]string{"tests/test_broken.py": "def test_broken():\n    assert 1 + 1 == 3\n"})
		code, ans, _ := g.hook(t, "Push Hook", g.secret, g.pushPayload("master", master, sha, "break a test"))
		if code != http.StatusAccepted {
			t.Fatalf("push answered %d %v", code, ans)
		}
		p := g.waitFinished(t, int64(ans["pipeline_id"].(float64)), 5*time.Minute)
		if st, desc := p.job("test/unit"); st != "failed" || !strings.HasPrefix(desc, "exit 1") || !strings.Contains(desc, "1 failed") {
			t.Errorf("test/unit = %s %q, want failed with \"exit 1: 1 failed, …\"", st, desc)
		}
		if st, _ := p.job("test/lint"); st != "success" {
			t.Errorf("test/lint = %s, want success", st)
		}
		if st, _ := p.job("release"); st != "skipped" {
			t.Errorf("release = %s, want skipped", st)
		}
		if got := reg.tags(t, repo); !cmp.Equal(got, before) {
			t.Errorf("registry tags changed from %v to %v", before, got)
		}
		waitStatuses(t, g, sha, map[string][]string{
			"gantry/build": {"pending", "running", "success"}, "gantry/test/unit": {"pending", "running", "failed"},
			"gantry/test/lint": {"pending", "running", "success"}, "gantry/release": {"pending", "skipped"},
		})
	})

	t.Run("a wrong token is refused and starts nothing", func(t *testing.T) {
		n := g.pipelineCount(t)
		code, ans, _ := g.hook(t, "Push Hook", "wrong-"+g.secret, g.pushPayload("master", master, master, "x"))
		if code != http.StatusUnauthorized {
			t.Errorf("wrong token answered %d %v, want 401", code, ans)
		}
		code, _, _ = g.hook(t, "Push Hook", "", g.pushPayload("master", master, master, "x"))
		if code != http.StatusUnauthorized {
			t.Errorf("missing token answered %d, want 401", code)
		}
		if got := g.pipelineCount(t); got != n {
			t.Errorf("pipelines = %d after refused hooks, want %d", got, n)
		}
	})

	t.Run("a branch deletion is ignored", func(t *testing.T) {
		n := g.pipelineCount(t)
		code, ans, _ := g.hook(t, "Push Hook", g.secret, g.pushPayload("feature", g.repo.head("feature"), zero, ""))
		if code != http.StatusOK || ans["ignored"] == nil {
			t.Errorf("branch deletion answered %d %v, want 200 ignored", code, ans)
		}
		if got := g.pipelineCount(t); got != n {
			t.Errorf("pipelines = %d after a branch deletion, want %d", got, n)
		}
	})

	if rejected := g.gitlab.Rejected(); len(rejected) > 0 {
		t.Errorf("GitLab refused %d calls, first: %+v", len(rejected), rejected[0])
	}
}

const zero = "0000000000000000000000000000000000000000"

// assertStatuses compares, per status name, the states GitLab accepted for a commit.
func assertStatuses(t *testing.T, g *gantryProc, sha string, want map[string][]string) {
	t.Helper()
	if d := cmp.Diff(want, g.gitlab.StatusHistory(g.project.ID, sha)); d != "" {
		t.Errorf("statuses GitLab accepted for %s (-want +got):\n%s", sha[:8], d)
	}
}

// assertPinned checks that every status post for a commit after the first carried the GitLab
// pipeline id from the first answer, so no update can land in another pipeline.
func assertPinned(t *testing.T, g *gantryProc, sha string) {
	t.Helper()
	var ids []string
	for _, c := range g.gitlab.Calls() {
		if c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/statuses/"+sha) {
			ids = append(ids, c.Body["pipeline_id"])
		}
	}
	if len(ids) < 2 {
		t.Fatalf("%d status posts for %s, want several", len(ids), sha[:8])
	}
	for i, id := range ids[1:] {
		if id == "" || id != ids[1] {
			t.Errorf("status post %d for %s carried pipeline_id %q, want %q like the others", i+2, sha[:8], id, ids[1])
		}
	}
}

// pipelineCount counts stored pipelines straight from Redis.
func (g *gantryProc) pipelineCount(t *testing.T) int64 {
	t.Helper()
	return countPipelines(t, g.redisURL)
}

// removeImages deletes what the test left on the engine. It uses the CLI because this is the
// test's own cleanup, not gantry's.
func removeImages(t *testing.T, repo string) {
	out, _ := exec.Command("docker", "images", "--format", "{{.Repository}}:{{.Tag}}").Output()
	var refs []string
	for _, ref := range strings.Fields(string(out)) {
		if strings.HasPrefix(ref, repo) {
			refs = append(refs, ref)
		}
	}
	if len(refs) > 0 {
		exec.Command("docker", append([]string{"rmi", "-f"}, refs...)...).Run()
	}
}
