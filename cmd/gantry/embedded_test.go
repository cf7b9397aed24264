package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// TestServeEmbeddedDefaults is the README's first command: no config file, no Redis, and gantry
// still serves, ready, and says loudly that nothing survives a restart.
func TestServeEmbeddedDefaults(t *testing.T) {
	addr := testenv.FreeAddr(t)
	logs := runServe(t, "http://"+addr, []string{"serve"}, map[string]string{"GANTRY_SERVER_LISTEN": addr})
	resp, err := http.Get("http://" + addr + "/readyz")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz = %d, want 200 (embedded Redis and the local engine)", resp.StatusCode)
	}
	if metrics := getBody(t, "http://"+addr+"/metrics"); !strings.Contains(metrics, "# TYPE go_goroutines gauge") {
		t.Errorf("GET /metrics is not Prometheus text:\n%.300s", metrics)
	}
	for _, want := range []string{"NO REDIS CONFIGURED", "no config file"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestServeWithoutGitLabToken runs a whole pipeline on the embedded Redis (asynq included) with
// no GitLab token: the source of a public project is fetched anonymously and every status gantry
// would post is logged instead.
func TestServeWithoutGitLabToken(t *testing.T) {
	busybox := testenv.Need(t, "GANTRY_TEST_BUSYBOX_IMAGE")
	gl := gitlabtest.New(t)
	repo := gitlabtest.NewRepo(t)
	sha := repo.Commit("busybox app", map[string]string{
		"Dockerfile": "FROM " + busybox + "\nCOPY . /app\n",
		"check.sh":   "#!/bin/sh\necho checked\n",
	})
	proj := gl.AddProject("group/tiny", repo.Dir)
	gl.MakePublic(proj.ID)
	image := "gantry-e2e/tiny-" + randomName()
	t.Cleanup(func() { removeImages(t, image) })
	addr := testenv.FreeAddr(t)
	cfg := fmt.Sprintf(`
server: {listen: %q}
gitlab: {url: %q}
projects:
  - path: group/tiny
    webhook_secret: %s
    image: %s
    tests:
      - {name: check, command: ["sh", "/app/check.sh"], timeout: 30s}
    release: {branches: [master]}
`, addr, gl.URL, testHookSecret, image)
	path := filepath.Join(t.TempDir(), "gantry.yaml")
	must(t, os.WriteFile(path, []byte(cfg), 0o600))
	g := &gantryProc{url: "http://" + addr, secret: testHookSecret, gitlab: gl, project: proj}
	g.logs = runServe(t, g.url, []string{"serve", "--config", path}, nil)

	code, ans, _ := g.hook(t, "Push Hook", g.secret, g.pushPayload("feature", zero, sha, "busybox app"))
	if code != http.StatusAccepted {
		t.Fatalf("push answered %d %v, want 202", code, ans)
	}
	// The API has no token configured, so the test reads the page GitLab would link to.
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(g.logs.String(), `"pipeline finished"`) {
		if time.Now().After(deadline) {
			t.Fatalf("pipeline did not finish:\n%s", g.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	page := getBody(t, fmt.Sprintf("%s/pipelines/%d", g.url, int64(ans["pipeline_id"].(float64))))
	// The commit as the webhook named it, and the anchors commit statuses link to.
	for _, want := range []string{`data-job="build"`, `data-job="test/check"`, `class="state success">success</span>`,
		`<span class="title">busybox app</span>`, `<dd class="trigger">push</dd>`, `id="job-test/check"`} {
		if !strings.Contains(page, want) {
			t.Errorf("pipeline page lacks %s:\n%s", want, page)
		}
	}
	// gantry's own metrics saw the delivery, the jobs and the statuses it could only log.
	metrics := getBody(t, g.url+"/metrics")
	for _, want := range []string{
		`gantry_webhook_deliveries_total{answer="accepted"}`,
		`gantry_pipelines_created_total{kind="push"}`,
		`gantry_jobs_ended_total{error_class="none",stage="test",state="success"}`,
		`gantry_job_duration_seconds_count{stage="build",state="success"}`,
		`gantry_commit_status_posts_total{result="logged"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Statuses leave the outbox in the background: the last may follow the pipeline's end.
	logged := 0
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		logged = strings.Count(g.logs.String(), "not posted: no GitLab token")
		if logged >= 6 || time.Now().After(deadline) {
			break
		}
	}
	if logged != 6 { // build and test/check: pending, running, success
		t.Errorf("logged %d statuses, want 6:\n%s", logged, g.logs.String())
	}
	for _, c := range gl.Calls() {
		if c.Method == http.MethodPost {
			t.Errorf("GitLab got a POST without a token configured: %+v", c)
		}
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return string(b)
}
