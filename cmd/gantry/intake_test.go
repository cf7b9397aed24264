package main

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// mrPayload is a merge request hook shaped like GitLab's (docs/gitlab.md §2.3).
func mrPayload(target, source gitlabtest.Project, iid int64, action, oldrev, sha, branch string) map[string]any {
	attrs := map[string]any{
		"id": 9000 + iid, "iid": iid, "action": action, "state": "opened", "title": "a change",
		"source_branch": branch, "target_branch": "master",
		"source_project_id": source.ID, "target_project_id": target.ID,
		"last_commit": map[string]any{"id": sha, "message": "a change", "title": "a change"},
		"source":      map[string]any{"path_with_namespace": source.PathWithNamespace, "web_url": "https://gitlab.example.com/" + source.PathWithNamespace},
		"target":      map[string]any{"path_with_namespace": target.PathWithNamespace, "web_url": "https://gitlab.example.com/" + target.PathWithNamespace},
	}
	if oldrev != "" {
		attrs["oldrev"] = oldrev
	}
	return map[string]any{
		"object_kind": "merge_request", "event_type": "merge_request",
		"user":              map[string]any{"username": "dev"},
		"project":           map[string]any{"id": target.ID, "path_with_namespace": target.PathWithNamespace, "web_url": "https://gitlab.example.com/" + target.PathWithNamespace},
		"object_attributes": attrs, "changes": map[string]any{},
	}
}

// TestOnePushOnePipeline: one push to a merge request's branch makes GitLab send its double MR
// hook, and someone presses "Resend request" on the first: exactly one pipeline runs.
func TestOnePushOnePipeline(t *testing.T) {
	g, repo := startBusyboxProject(t, testenv.RedisURL(t), "")
	old := repo.Git("rev-parse", "HEAD")
	sha := repo.Commit("second", map[string]string{"more.txt": "x"})
	// GitLab reads the merge request back (the engine trusts its source and head, not the hook's).
	g.gitlab.AddMergeRequest(g.project.ID, gitlabtest.MergeRequest{IID: 3, SourceProjectID: g.project.ID, SourceBranch: "main", TargetBranch: "master"})
	mr := mrPayload(g.project, g.project, 3, "update", old, sha, "main")
	var ids []float64
	for _, key := range []string{"delivery-a", "delivery-b", "delivery-a"} {
		code, ans, _ := g.delivery(t, "Merge Request Hook", g.secret, key, mr)
		if code != http.StatusAccepted && code != http.StatusOK {
			t.Fatalf("MR hook %s answered %d %v", key, code, ans)
		}
		ids = append(ids, ans["pipeline_id"].(float64))
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("pipeline ids %v, want one pipeline named by every answer", ids)
	}
	p := g.waitFinished(t, int64(ids[0]), 2*time.Minute)
	if p.State != "success" {
		t.Errorf("pipeline = %s: %+v", p.State, p.Jobs)
	}
	if n := g.pipelineCount(t); n != 1 {
		t.Errorf("stored pipelines = %d, want 1", n)
	}
	waitStatuses(t, g, sha, map[string][]string{
		"gantry/build": {"pending", "running", "success"}, "gantry/test/check": {"pending", "running", "success"},
	})
}

// TestRedisDown: with Redis gone the webhook answers 503 (GitLab keeps the delivery to resend),
// and once Redis is back the same delivery is accepted.
func TestRedisDown(t *testing.T) {
	bin := testenv.NeedBinary(t, "redis-server")
	port := strings.Split(testenv.FreeAddr(t), ":")[1]
	dir := t.TempDir()
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", dir)
		must(t, cmd.Start())
		for i := 0; i < 100; i++ {
			if out, _ := exec.Command("redis-cli", "-p", port, "ping").Output(); strings.TrimSpace(string(out)) == "PONG" {
				return cmd
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("redis did not start")
		return nil
	}
	redis := start()
	t.Cleanup(func() { redis.Process.Kill(); redis.Wait() })
	g, repo := startBusyboxProject(t, "redis://127.0.0.1:"+port+"/0", "")
	sha := repo.Git("rev-parse", "HEAD")
	push := g.pushPayload("main", zero, sha, "busybox app")

	redis.Process.Kill()
	redis.Wait()
	code, ans, took := g.delivery(t, "Push Hook", g.secret, "delivery-1", push)
	if code != http.StatusServiceUnavailable {
		t.Errorf("with Redis down the hook answered %d %v, want 503", code, ans)
	}
	t.Logf("503 answered in %s", took)

	redis = start()
	code, ans, _ = g.delivery(t, "Push Hook", g.secret, "delivery-1", push)
	if code != http.StatusAccepted {
		t.Fatalf("after Redis came back the hook answered %d %v, want 202", code, ans)
	}
	id := int64(ans["pipeline_id"].(float64))
	if p := g.waitFinished(t, id, 2*time.Minute); p.State != "success" {
		t.Errorf("pipeline = %s", p.State)
	}
	if n := g.pipelineCount(t); n != 1 {
		t.Errorf("stored pipelines = %d, want 1 (nothing half-written from the failed delivery)", n)
	}
}

// TestGitLabFailing: GitLab answers 502, 500 and 429 to the first status posts of a pipeline.
// The pipeline does not wait for it, and every status still reaches GitLab in order and ends
// terminal, with nothing refused.
func TestGitLabFailing(t *testing.T) {
	t.Parallel()
	// No pipeline file, whose read would come first and take the faults meant for the posts.
	g, repo := startBusyboxProject(t, testenv.RedisURL(t), "    pipeline_file: \"\"\n")
	sha := repo.Git("rev-parse", "HEAD")
	g.gitlab.FailNext(4, http.StatusBadGateway)
	id := g.push(t, "feature", zero, sha)
	g.gitlab.FailNext(3, http.StatusTooManyRequests)
	g.gitlab.FailNext(2, http.StatusInternalServerError)
	if p := g.waitFinished(t, id, 2*time.Minute); p.State != "success" {
		t.Fatalf("pipeline = %s: %+v", p.State, p.Jobs)
	}
	waitStatuses(t, g, sha, map[string][]string{
		"gantry/build": {"pending", "running", "success"}, "gantry/test/check": {"pending", "running", "success"},
	})
	if rejected := g.gitlab.Rejected(); len(rejected) > 0 {
		t.Errorf("GitLab refused %d calls, first %+v", len(rejected), rejected[0])
	}
}
