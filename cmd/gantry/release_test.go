package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gantry-ci/gantry/internal/testenv"
)

// trigger starts a pipeline through the REST API, as any API token holder can.
func (g *gantryProc) trigger(t *testing.T, ref, sha string) int64 {
	t.Helper()
	path := "/api/v1/projects/" + strings.ReplaceAll(g.project.PathWithNamespace, "/", "%2F") + "/pipelines"
	code, ans := g.api(t, "POST", path, g.apiToken, map[string]string{"ref": ref, "sha": sha})
	if code != http.StatusAccepted && code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("trigger %s@%s answered %d %v", ref, sha[:8], code, ans)
	}
	return int64(ans["pipeline_id"].(float64))
}

// TestReleaseOnlyNewerCommits: once the branch released a commit, an API trigger of an older
// commit of the branch, or of a commit that was never on it, builds and tests but releases
// nothing, and the registry's tags stay where they were. Pipeline ids do not decide: both
// triggers make pipelines newer than the release.
func TestReleaseOnlyNewerCommits(t *testing.T) {
	t.Parallel()
	g, repo := startBusyboxProject(t, testenv.RedisURL(t), "")
	reg := registryClient{host: g.registry.Host, user: g.registry.User, password: g.registry.Password}
	imageRepo := repoPath(g.image, g.registry.Host)

	older := repo.Commit("older", map[string]string{"version": "1\n"})
	newer := repo.Commit("newer", map[string]string{"version": "2\n"})
	if p := g.waitFinished(t, g.push(t, "main", zero, newer), 2*time.Minute); p.State != "success" {
		t.Fatalf("push of the newer commit = %s: %+v", p.State, p.Jobs)
	}
	tags := reg.tags(t, imageRepo)
	_, latest := reg.labels(t, imageRepo, "latest")

	repo.Git("checkout", "-q", "-b", "elsewhere", older)
	stray := repo.Commit("never on main", map[string]string{"version": "3\n"})
	repo.Git("checkout", "-q", "main")

	for _, tt := range []struct {
		name, sha, reason string
	}{
		{"an older commit of main", older, "outdated: main already released " + newer[:8]},
		{"a commit never on main", stray, "not released: " + stray[:8] + " is not on main"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := g.waitFinished(t, g.trigger(t, "main", tt.sha), 2*time.Minute)
			if st, _ := p.job("test/check"); st != "success" {
				t.Errorf("test/check = %s, want success: the commit is built and tested", st)
			}
			if st, desc := p.job("release"); st != "skipped" || !strings.HasPrefix(desc, tt.reason) {
				t.Errorf("release = %s %q, want skipped %q…", st, desc, tt.reason)
			}
			if got := reg.tags(t, imageRepo); !cmp.Equal(got, tags) {
				t.Errorf("registry tags = %v, want %v unchanged", got, tags)
			}
			if _, got := reg.labels(t, imageRepo, "latest"); got != latest {
				t.Errorf("latest = %s, want %s (the newer commit's image) unchanged", got, latest)
			}
			if h := g.gitlab.StatusHistory(g.project.ID, tt.sha); h["gantry/release"] != nil {
				t.Errorf("gantry/release posted for %s: %v; a release the guard refused at planning posts nothing", tt.sha[:8], h["gantry/release"])
			}
		})
	}
}

// tagPayload is a tag push hook body shaped like GitLab's (docs/gitlab.md §2.2) for a lightweight
// tag, whose after is the commit.
func (g *gantryProc) tagPayload(tag, sha string) map[string]any {
	return map[string]any{
		"object_kind": "tag_push", "event_name": "tag_push", "before": zero, "after": sha,
		"ref": "refs/tags/" + tag, "checkout_sha": sha, "user_username": "dev",
		"project_id": g.project.ID, "commits": []any{}, "total_commits_count": 0, "push_options": map[string]any{},
		"project": map[string]any{"id": g.project.ID, "path_with_namespace": g.project.PathWithNamespace,
			"web_url": "https://gitlab.example.com/" + g.project.PathWithNamespace, "default_branch": "main"},
	}
}

// TestTagPushRelease: a tag matching the project's pattern releases under its own name and
// leaves latest alone; a tag outside the pattern, or a tag push GitLab knows nothing of (anyone
// with the hook secret can send one), releases nothing.
func TestTagPushRelease(t *testing.T) {
	t.Parallel()
	g, repo := startBusyboxProject(t, testenv.RedisURL(t), "    release: {branches: [main], tag_pushes: true, tag_pattern: 'v[0-9]+\\.[0-9]+\\.[0-9]+'}\n")
	reg := registryClient{host: g.registry.Host, user: g.registry.User, password: g.registry.Password}
	imageRepo := repoPath(g.image, g.registry.Host)

	first := repo.Commit("first", map[string]string{"version": "1\n"})
	if p := g.waitFinished(t, g.push(t, "main", zero, first), 2*time.Minute); p.State != "success" {
		t.Fatalf("push of main = %s: %+v", p.State, p.Jobs)
	}
	_, latest := reg.labels(t, imageRepo, "latest")
	tagged := repo.Commit("second", map[string]string{"version": "2\n"})
	repo.Git("tag", "v1.2.3", tagged)
	repo.Git("tag", "nightly", tagged)

	tagPush := func(t *testing.T, tag, sha string) apiPipeline {
		t.Helper()
		code, ans, _ := g.hook(t, "Tag Push Hook", g.secret, g.tagPayload(tag, sha))
		if code != http.StatusAccepted {
			t.Fatalf("tag push %s answered %d %v", tag, code, ans)
		}
		return g.waitFinished(t, int64(ans["pipeline_id"].(float64)), 2*time.Minute)
	}
	t.Run("a matching tag releases under its name", func(t *testing.T) {
		p := tagPush(t, "v1.2.3", tagged)
		if st, desc := p.job("release"); st != "success" {
			t.Fatalf("release = %s %q, want success", st, desc)
		}
		if got := reg.tags(t, imageRepo); !cmp.Equal(got, []string{first[:8], "latest", "v1.2.3"}) {
			t.Errorf("registry tags = %v, want [%s latest v1.2.3]", got, first[:8])
		}
		if _, got := reg.labels(t, imageRepo, "latest"); got != latest {
			t.Errorf("latest = %s, want %s unchanged: a tag never moves latest by default", got, latest)
		}
		if _, got := reg.labels(t, imageRepo, "v1.2.3"); got != p.Digest {
			t.Errorf("v1.2.3 = %s, want the pipeline's digest %s", got, p.Digest)
		}
	})
	for _, tt := range []struct{ name, tag, sha, reason string }{
		{"a tag outside the pattern", "nightly", tagged, ""},
		{"a tag push GitLab does not know", "v9.9.9", tagged, "not released: tag v9.9.9 does not point at"},
		{"a tag pointing at another commit", "v1.2.3", first, "not released: tag v1.2.3 does not point at"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := reg.tags(t, imageRepo)
			p := tagPush(t, tt.tag, tt.sha)
			st, desc := p.job("release")
			switch {
			case tt.reason == "" && st != "":
				t.Errorf("release job %s %q, want none: the tag does not match the pattern", st, desc)
			case tt.reason != "" && (st != "skipped" || !strings.HasPrefix(desc, tt.reason)):
				t.Errorf("release = %s %q, want skipped %q…", st, desc, tt.reason)
			}
			if got := reg.tags(t, imageRepo); !cmp.Equal(got, before) {
				t.Errorf("registry tags = %v, want %v unchanged", got, before)
			}
		})
	}
}
