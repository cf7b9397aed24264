package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

// api calls gantry's REST API with the test's token (or none when token is "").
func (g *gantryProc) api(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, g.url+path, r)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (g *gantryProc) archiveCalls(sha string) int {
	n := 0
	for _, c := range g.gitlab.Calls() {
		if strings.Contains(c.Path, "/repository/archive") && c.Query.Get("sha") == sha {
			n++
		}
	}
	return n
}

// TestAPIEndToEnd drives retries, cancel and trigger through the REST API against the real
// engine, Redis and registry.
func TestAPIEndToEnd(t *testing.T) {
	t.Parallel()
	g, repo := startBusyboxProject(t, testenv.RedisURL(t), "")

	t.Run("a flaky test retried until it passes, the build untouched", func(t *testing.T) {
		// The test passes from its third attempt on: GANTRY_JOB_ATTEMPT tells it which one it is.
		sha := repo.Commit("flaky", map[string]string{"test.sh": `[ "$GANTRY_JOB_ATTEMPT" -ge 3 ]` + "\n"})
		id := g.push(t, "main", zero, sha)
		first := g.waitFinished(t, id, 2*time.Minute)
		for attempt := 2; first.State != "success"; attempt++ {
			if attempt > 3 {
				t.Fatalf("still %s after %d attempts", first.State, attempt-1)
			}
			code, ans := g.api(t, "POST", fmt.Sprintf("/api/v1/pipelines/%d/retry", id), g.apiToken, nil)
			if code != http.StatusAccepted {
				t.Fatalf("retry answered %d %v", code, ans)
			}
			p := g.waitFinished(t, id, 2*time.Minute)
			if p.Image != first.Image {
				t.Errorf("attempt %d ran image %s, the build made %s", attempt, p.Image, first.Image)
			}
			first.State = p.State
		}
		// The build's status is posted once; the test's three attempts and the release held up
		// twice behind it each get their own.
		waitStatuses(t, g, sha, map[string][]string{
			"gantry/build":      {"pending", "running", "success"},
			"gantry/test/check": {"pending", "running", "failed", "pending", "running", "failed", "pending", "running", "success"},
			"gantry/release":    {"pending", "skipped", "pending", "skipped", "pending", "running", "success"},
		})
		if n := g.archiveCalls(sha); n != 1 {
			t.Errorf("source downloaded %d times, want once", n)
		}
		code, log := g.logText(t, id, "test/check", 1)
		if code != http.StatusOK || !strings.Contains(log, "exit 1") {
			t.Errorf("first attempt's log = %d %q, want it kept with its exit", code, log)
		}
	})

	t.Run("one job retried", func(t *testing.T) {
		sha := repo.Commit("steady", map[string]string{"test.sh": "true\n"})
		id := g.push(t, "main", zero, sha)
		before := g.waitFinished(t, id, 2*time.Minute)
		code, ans := g.api(t, "POST", fmt.Sprintf("/api/v1/pipelines/%d/jobs/test%%2Fcheck/retry", id), g.apiToken, nil)
		if code != http.StatusAccepted {
			t.Fatalf("job retry answered %d %v", code, ans)
		}
		after := g.waitFinished(t, id, 2*time.Minute)
		if after.State != "success" || after.Image != before.Image {
			t.Errorf("after the job retry: %s image %s, want success on image %s", after.State, after.Image, before.Image)
		}
		waitStatuses(t, g, sha, map[string][]string{
			"gantry/build": {"pending", "running", "success"}, "gantry/release": {"pending", "running", "success"},
			"gantry/test/check": {"pending", "running", "success", "pending", "running", "success"},
		})
	})

	t.Run("a running pipeline cancelled", func(t *testing.T) {
		sha := repo.Commit("slow", map[string]string{"test.sh": "sleep 30\n"})
		id := g.push(t, "main", zero, sha)
		g.waitJob(t, id, "test/check", "running")
		code, _ := g.api(t, "POST", fmt.Sprintf("/api/v1/pipelines/%d/jobs/test%%2Fcheck/retry", id), g.apiToken, nil)
		if code != http.StatusConflict {
			t.Errorf("retrying a running job answered %d, want 409", code)
		}
		code, ans := g.api(t, "POST", fmt.Sprintf("/api/v1/pipelines/%d/cancel", id), g.apiToken, nil)
		if code != http.StatusAccepted {
			t.Fatalf("cancel answered %d %v", code, ans)
		}
		if p := g.waitFinished(t, id, time.Minute); p.State != "canceled" {
			t.Errorf("pipeline after cancel = %s", p.State)
		}
		assertNoContainers(t, id, g.project.PathWithNamespace, 10*time.Second)
		waitStatuses(t, g, sha, map[string][]string{
			"gantry/build": {"pending", "running", "success"}, "gantry/test/check": {"pending", "running", "canceled"},
			"gantry/release": {"pending", "canceled"},
		})
	})

	t.Run("a pipeline triggered for a ref", func(t *testing.T) {
		head := repo.Git("rev-parse", "HEAD")
		code, ans := g.api(t, "POST", "/api/v1/projects/"+strings.ReplaceAll(g.project.PathWithNamespace, "/", "%2F")+"/pipelines", g.apiToken, map[string]string{"ref": "main"})
		if code != http.StatusAccepted {
			t.Fatalf("trigger answered %d %v", code, ans)
		}
		id := int64(ans["pipeline_id"].(float64))
		_, p := g.api(t, "GET", fmt.Sprintf("/api/v1/pipelines/%d", id), g.apiToken, nil)
		if trig := p["trigger"].(map[string]any); trig["sha"] != head || trig["kind"] != "api" {
			t.Errorf("triggered pipeline %v, want kind api on %s", trig, head)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, c := range []struct {
			method, path, token string
			want                int
		}{
			{"GET", "/api/v1/pipelines/1", "", http.StatusUnauthorized},
			{"POST", "/api/v1/pipelines/1/retry", "wrong", http.StatusUnauthorized},
			{"GET", "/api/v1/pipelines/999", g.apiToken, http.StatusNotFound},
			{"POST", "/api/v1/pipelines/999/cancel", g.apiToken, http.StatusNotFound},
			{"POST", "/api/v1/projects/group%2Fnone/pipelines", g.apiToken, http.StatusNotFound},
		} {
			var body any
			if strings.HasSuffix(c.path, "/pipelines") {
				body = map[string]string{"ref": "main"}
			}
			if code, ans := g.api(t, c.method, c.path, c.token, body); code != c.want || ans["error"] == nil {
				t.Errorf("%s %s = %d %v, want %d with an error", c.method, c.path, code, ans, c.want)
			}
		}
	})
}

// logText fetches a job attempt's log.
func (g *gantryProc) logText(t *testing.T, id int64, job string, attempt int) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/pipelines/%d/jobs/%s/log?attempt=%d", g.url, id, job, attempt), nil)
	req.Header.Set("Authorization", "Bearer "+g.apiToken)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitStatuses waits for the statuses GitLab accepted to reach want: they are posted in the
// background, so they may trail the pipeline's own state by a moment.
func waitStatuses(t *testing.T, g *gantryProc, sha string, want map[string][]string) {
	t.Helper()
	waitStatusesFor(t, g, sha, want, 10*time.Second)
}

// waitStatusesFor is waitStatuses with a limit: after a worker died holding a pipeline's status
// lock, its statuses wait for the lock to expire (a minute).
func waitStatusesFor(t *testing.T, g *gantryProc, sha string, want map[string][]string, limit time.Duration) {
	t.Helper()
	waitStatusesOn(t, g, g.project.ID, sha, want, limit)
}

// waitStatusesOn is waitStatusesFor on any project, such as a fork.
func waitStatusesOn(t *testing.T, g *gantryProc, project int64, sha string, want map[string][]string, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cmp.Equal(want, g.gitlab.StatusHistory(project, sha)) {
			return
		}
	}
	if d := cmp.Diff(want, g.gitlab.StatusHistory(project, sha)); d != "" {
		t.Errorf("statuses GitLab accepted on project %d for %s (-want +got):\n%s", project, sha[:8], d)
	}
}
