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
