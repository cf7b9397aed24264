package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// TestOnePipelinePerCommit: a push to a branch, then GitLab's merge request hook for the same
// commit, then an API trigger of it: one pipeline, answered as such each time, the merge
// request attached to it, and GitLab sees each status of the commit run once — no widget
// flipping between two pipelines. `"force": true` runs the commit again.
func TestOnePipelinePerCommit(t *testing.T) {
	t.Parallel()
	g, repo := startBusyboxProject(t, testenv.RedisURL(t), "")
	repo.Git("checkout", "-q", "-b", "feature")
	sha := repo.Commit("a feature", map[string]string{"feature.txt": "1"})
	first := g.push(t, "feature", zero, sha)

	g.gitlab.AddMergeRequest(g.project.ID, gitlabtest.MergeRequest{IID: 3, SourceProjectID: g.project.ID, SourceBranch: "feature", TargetBranch: "main", Author: "dev"})
	code, ans, _ := g.hook(t, "Merge Request Hook", g.secret, mrPayload(g.project, g.project, 3, "open", "", sha, "feature"))
	if code != http.StatusOK || ans["ignored"] != "duplicate" || int64(ans["pipeline_id"].(float64)) != first {
		t.Fatalf("merge request hook for the pushed commit = %d %v, want 200 naming pipeline %d", code, ans, first)
	}
	path := "/api/v1/projects/" + strings.ReplaceAll(g.project.PathWithNamespace, "/", "%2F") + "/pipelines"
	code, ans = g.api(t, "POST", path, g.apiToken, map[string]string{"ref": "feature", "sha": sha})
	if code != http.StatusOK || ans["existing"] != true || int64(ans["pipeline_id"].(float64)) != first {
		t.Fatalf("API trigger of the commit = %d %v, want 200 existing, naming pipeline %d", code, ans, first)
	}

	if p := g.waitFinished(t, first, 2*time.Minute); p.State != "success" {
		t.Fatalf("pipeline %d = %s, want success: %+v", first, p.State, p.Jobs)
	}
	if _, raw := g.api(t, "GET", "/api/v1/pipelines/"+strconv.FormatInt(first, 10), g.apiToken, nil); raw["merge_request_iid"] != float64(3) {
		t.Errorf("pipeline %d merge_request_iid = %v, want the attached merge request 3", first, raw["merge_request_iid"])
	}
	if _, raw := g.api(t, "GET", "/api/v1/pipelines?sha="+sha, g.apiToken, nil); len(raw["pipelines"].([]any)) != 1 {
		t.Errorf("pipelines of the commit = %v, want one", raw["pipelines"])
	}
	once := []string{"pending", "running", "success"}
	waitStatuses(t, g, sha, map[string][]string{"gantry/build": once, "gantry/test/check": once})

	code, ans = g.api(t, "POST", path, g.apiToken, map[string]any{"ref": "feature", "sha": sha, "force": true})
	if code != http.StatusAccepted || int64(ans["pipeline_id"].(float64)) == first {
		t.Fatalf("forced trigger = %d %v, want 202 and a new pipeline", code, ans)
	}
	again := int64(ans["pipeline_id"].(float64))
	if p := g.waitFinished(t, again, 2*time.Minute); p.State != "success" {
		t.Errorf("forced pipeline %d = %s, want success", again, p.State)
	}
}

// TestReleaseAddedAfterTheMergeRequest: a merge request from the release branch itself, then the
// push of its commit, once after the merge request's pipeline finished and once at once: one
// pipeline each, built once, whose release the push adds; the image reaches the registry, and
// GitLab's statuses of the commit run once each, the build's never back to pending.
func TestReleaseAddedAfterTheMergeRequest(t *testing.T) {
	t.Parallel()
	g, repo := startBusyboxProject(t, testenv.RedisURL(t), "")
	reg := registryClient{host: g.registry.Host, user: g.registry.User, password: g.registry.Password}
	imageRepo := repoPath(g.image, g.registry.Host)
	g.gitlab.AddMergeRequest(g.project.ID, gitlabtest.MergeRequest{IID: 3, SourceProjectID: g.project.ID, SourceBranch: "main", TargetBranch: "production", Author: "dev"})
	before := repo.Git("rev-parse", "HEAD")
	for _, c := range []struct {
		name string
		// finished waits for the merge request's pipeline to end before the push.
		finished bool
	}{{"after the merge request's pipeline finished", true}, {"while it runs", false}} {
		sha := repo.Commit(c.name, map[string]string{"version": c.name})
		code, ans, _ := g.hook(t, "Merge Request Hook", g.secret, mrPayload(g.project, g.project, 3, "update", before, sha, "main"))
		if code != http.StatusAccepted {
			t.Fatalf("%s: merge request hook = %d %v, want 202", c.name, code, ans)
		}
		first := int64(ans["pipeline_id"].(float64))
		if c.finished {
			p := g.waitFinished(t, first, 2*time.Minute)
			if st, _ := p.job("release"); p.State != "success" || st != "" {
				t.Fatalf("%s: merge request pipeline = %s, release %q; want success without a release", c.name, p.State, st)
			}
		}
		code, ans, _ = g.hook(t, "Push Hook", g.secret, g.pushPayload("main", before, sha, c.name))
		if code != http.StatusOK || ans["ignored"] != "duplicate" || ans["release_added"] != true || int64(ans["pipeline_id"].(float64)) != first {
			t.Fatalf("%s: push = %d %v, want 200 naming pipeline %d, the release added", c.name, code, ans, first)
		}
		p := g.waitFinished(t, first, 2*time.Minute)
		if st, desc := p.job("release"); p.State != "success" || st != "success" || p.Digest == "" {
			t.Fatalf("%s: pipeline %s, release %s %q, digest %q; want released", c.name, p.State, st, desc, p.Digest)
		}
		if _, latest := reg.labels(t, imageRepo, "latest"); latest != p.Digest {
			t.Errorf("%s: latest = %s, want the pipeline's digest %s", c.name, latest, p.Digest)
		}
		if _, raw := g.api(t, "GET", "/api/v1/pipelines?sha="+sha, g.apiToken, nil); len(raw["pipelines"].([]any)) != 1 {
			t.Errorf("%s: pipelines of the commit = %v, want one", c.name, raw["pipelines"])
		}
		_, raw := g.api(t, "GET", "/api/v1/pipelines/"+strconv.FormatInt(first, 10), g.apiToken, nil)
		if rt, _ := raw["release_trigger"].(map[string]any); raw["merge_request_iid"] != float64(3) || rt["kind"] != "push" {
			t.Errorf("%s: pipeline merge_request_iid %v, release_trigger %v; want 3 and the push", c.name, raw["merge_request_iid"], raw["release_trigger"])
		}
		once := []string{"pending", "running", "success"}
		waitStatuses(t, g, sha, map[string][]string{"gantry/build": once, "gantry/test/check": once, "gantry/release": once})
		before = sha
	}
}
