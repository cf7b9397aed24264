package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// startBusyboxProject runs gantry serve for a busybox project "group/bb-<random>" whose one test runs
// the repository's test.sh, with extra project settings and the test registry as its image's
// home, so a release really pushes. Extra settings starting with "    release:" replace the
// default release settings (branch main).
func startBusyboxProject(t *testing.T, redisURL, extra string) (*gantryProc, *gitlabtest.Repo) {
	t.Helper()
	return startBusyboxProjectWith(t, redisURL, settings{}, extra)
}

// settings are more keys of the busybox project's config: of the redis and gitlab blocks and
// of its one test (", key: v"), and at the top level ("workers: {…}\n").
type settings struct{ redis, gitlab, test, top string }

// startBusyboxProjectWith is startBusyboxProject with more settings.
func startBusyboxProjectWith(t *testing.T, redisURL string, more settings, extra string) (*gantryProc, *gitlabtest.Repo) {
	t.Helper()
	release := "    release: {branches: [main]}\n"
	if strings.HasPrefix(extra, "    release:") {
		release = ""
	}
	busybox := testenv.Need(t, "GANTRY_TEST_BUSYBOX_IMAGE")
	reg := testenv.NeedRegistry(t)
	gl := gitlabtest.New(t)
	repo := gitlabtest.NewRepo(t)
	repo.Commit("busybox app", map[string]string{"Dockerfile": "FROM " + busybox + "\nCOPY . /app\n", "test.sh": "true\n"})
	// A project path of its own: tests run in parallel on one engine and find their containers
	// by the project label.
	proj := gl.AddProject("group/bb-"+randomName(), repo.Dir)
	image := reg.Host + "/e2e-" + randomName() + "/bb"
	t.Cleanup(func() { removeImages(t, image) })
	addr := testenv.FreeAddr(t)
	cfg := fmt.Sprintf(`
server: {listen: %q, public_url: "http://%s"}
redis: {url: %q%s}
gitlab: {url: %q, token: %q%s}
api: {tokens: [%s]}
registries:
  - {host: %q, username: %q, password: %q}
%sprojects:
  - path: %s
    webhook_secret: %s
    image: %s
    tests:
      - {name: check, command: ["sh", "/app/test.sh"], timeout: 1m%s}
%s%s`, addr, addr, redisURL, more.redis, gl.URL, gl.Token, more.gitlab, testAPIToken, reg.Host, reg.User, reg.Password, more.top,
		proj.PathWithNamespace, testHookSecret, image, more.test, release, extra)
	path := filepath.Join(t.TempDir(), "gantry.yaml")
	must(t, os.WriteFile(path, []byte(cfg), 0o600))
	g := &gantryProc{url: "http://" + addr, secret: testHookSecret, apiToken: testAPIToken, gitlab: gl, project: proj, registry: reg, image: image, redisURL: redisURL}
	g.logs = runServe(t, g.url, []string{"serve", "--config", path}, nil)
	return g, repo
}

func (g *gantryProc) push(t *testing.T, branch, before, sha string) int64 {
	t.Helper()
	code, ans, _ := g.hook(t, "Push Hook", g.secret, g.pushPayload(branch, before, sha, "change"))
	if code != http.StatusAccepted {
		t.Fatalf("push %s answered %d %v", sha[:8], code, ans)
	}
	return int64(ans["pipeline_id"].(float64))
}

// waitJob waits until a job is in a state.
func (g *gantryProc) waitJob(t *testing.T, id int64, job, state string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if st, _ := g.pipeline(t, id).job(job); st == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s of pipeline %d never %s", job, id, state)
		}
	}
}

// TestSupersede: a newer push to the branch cancels the older pipeline's running test (its
// container killed) and GitLab sees the older commit's statuses end canceled.
func TestSupersede(t *testing.T) {
	t.Parallel()
	g, repo := startBusyboxProject(t, testenv.RedisURL(t), "")
	first := repo.Commit("slow", map[string]string{"test.sh": "sleep 30\n"})
	older := g.push(t, "main", zero, first)
	g.waitJob(t, older, "test/check", "running")
	time.Sleep(500 * time.Millisecond) // the container is up
	second := repo.Commit("fast", map[string]string{"test.sh": "true\n"})
	newer := g.push(t, "main", first, second)

	p := g.waitFinished(t, older, time.Minute)
	if st, desc := p.job("test/check"); st != "canceled" || desc != "superseded by "+second[:8] {
		t.Errorf("older test/check = %s %q, want canceled, superseded by %s", st, desc, second[:8])
	}
	if p := g.waitFinished(t, newer, 2*time.Minute); p.State != "success" {
		t.Errorf("newer pipeline = %s: %+v", p.State, p.Jobs)
	}
	waitStatuses(t, g, first, map[string][]string{
		"gantry/build": {"pending", "running", "success"}, "gantry/test/check": {"pending", "running", "canceled"},
		"gantry/release": {"pending", "canceled"},
	})
	waitStatuses(t, g, second, map[string][]string{
		"gantry/build": {"pending", "running", "success"}, "gantry/test/check": {"pending", "running", "success"},
		"gantry/release": {"pending", "running", "success"},
	})
	// The cancellation reaches the worker running the job asynchronously: give it a moment.
	assertNoContainers(t, older, g.project.PathWithNamespace, 10*time.Second)
}

// assertNoContainers waits up to limit for the pipeline's gantry-labelled containers to be gone.
func assertNoContainers(t *testing.T, pipeline int64, project string, limit time.Duration) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, err := exec.Command("docker", "ps", "-aq", "--filter", fmt.Sprintf("label=gantry.pipeline=%d", pipeline),
			"--filter", "label=gantry.project="+project).Output()
		must(t, err)
		if left = strings.Fields(string(out)); len(left) == 0 {
			return
		}
	}
	t.Errorf("containers of pipeline %d still on the engine after %s: %v", pipeline, limit, left)
}

// TestOutdatedRelease: with superseding off, an older commit whose tests finish after a newer
// commit of the branch was released must not release: its release ends skipped, "outdated".
func TestOutdatedRelease(t *testing.T) {
	t.Parallel()
	g, repo := startBusyboxProject(t, testenv.RedisURL(t), "    supersede: false\n")
	reg := registryClient{host: g.registry.Host, user: g.registry.User, password: g.registry.Password}
	first := repo.Commit("slow", map[string]string{"test.sh": "sleep 6\n"})
	older := g.push(t, "main", zero, first)
	g.waitJob(t, older, "test/check", "running")
	second := repo.Commit("fast", map[string]string{"test.sh": "true\n"})
	newer := g.push(t, "main", first, second)
	if p := g.waitFinished(t, newer, 2*time.Minute); p.State != "success" {
		t.Fatalf("newer pipeline = %s: %+v", p.State, p.Jobs)
	}
	p := g.waitFinished(t, older, 2*time.Minute)
	if st, desc := p.job("release"); st != "skipped" || !strings.HasPrefix(desc, "outdated") {
		t.Errorf("older release = %s %q, want skipped, outdated", st, desc)
	}
	waitStatuses(t, g, first, map[string][]string{
		"gantry/build": {"pending", "running", "success"}, "gantry/test/check": {"pending", "running", "success"},
		"gantry/release": {"pending", "skipped"},
	})
	labels, _ := reg.labels(t, repoPath(g.image, g.registry.Host), "latest")
	if labels["org.opencontainers.image.revision"] != second {
		t.Errorf("latest in the registry is %s, want the newer commit %s", labels["org.opencontainers.image.revision"], second)
	}
}

// TestSchedule: a project's cron schedule starts a pipeline for the head of its ref, which
// releases like a push to that branch; firing again inside the dedup window starts nothing new.
func TestSchedule(t *testing.T) {
	t.Parallel()
	g, repo := startBusyboxProject(t, testenv.RedisURL(t), "    schedules: [{cron: \"@every 1s\", ref: main}]\n")
	p := g.waitFinished(t, waitPipeline(t, g), 2*time.Minute)
	if p.State != "success" {
		t.Fatalf("scheduled pipeline = %s: %+v", p.State, p.Jobs)
	}
	_, raw := g.api(t, "GET", fmt.Sprintf("/api/v1/pipelines/%d", p.ID), g.apiToken, nil)
	if trig := raw["trigger"].(map[string]any); trig["kind"] != "schedule" || trig["sha"] != repo.Git("rev-parse", "HEAD") {
		t.Errorf("scheduled pipeline trigger = %v, want kind schedule on the head of main", trig)
	}
	if st, _ := p.job("release"); st != "success" {
		t.Errorf("scheduled pipeline of main: release %q, want success", st)
	}
	time.Sleep(2 * time.Second)
	if n := g.pipelineCount(t); n != 1 {
		t.Errorf("pipelines after several firings = %d, want 1 (same ref, same commit)", n)
	}
}

// waitPipeline waits for pipeline id to exist.
// waitPipeline waits for the project's first pipeline and returns its id.
func waitPipeline(t *testing.T, g *gantryProc) int64 {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if code, raw := g.api(t, "GET", "/api/v1/pipelines", g.apiToken, nil); code == http.StatusOK {
			if ps, _ := raw["pipelines"].([]any); len(ps) > 0 {
				return int64(ps[len(ps)-1].(map[string]any)["id"].(float64))
			}
		}
	}
	t.Fatal("no pipeline appeared")
	return 0
}
