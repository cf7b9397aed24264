package main

import (
	"cmp"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// buildGantry compiles the gantry binary once for tests that need separate processes.
func buildGantry(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gantry")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a gantry process with its log in a file.
type proc struct {
	cmd *exec.Cmd
	log string
}

func startProc(t *testing.T, bin, role, config string) *proc {
	t.Helper()
	log := filepath.Join(cmp.Or(os.Getenv("GANTRY_TEST_LOGS"), t.TempDir()), role+"-"+randomName()+".log")
	f, err := os.Create(log)
	must(t, err)
	cmd := exec.Command(bin, role, "--config", config)
	cmd.Stdout, cmd.Stderr = f, f
	must(t, cmd.Start())
	p := &proc{cmd: cmd, log: log}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("%s log:\n%s", role, b)
		}
	})
	return p
}

// loggedLine reports whether one line of the log holds every part.
func (p *proc) loggedLine(parts ...string) bool {
	b, _ := os.ReadFile(p.log)
	for line := range strings.Lines(string(b)) {
		if !slices.ContainsFunc(parts, func(s string) bool { return !strings.Contains(line, s) }) {
			return true
		}
	}
	return false
}

func (p *proc) logged(s string) bool {
	b, _ := os.ReadFile(p.log)
	return strings.Contains(string(b), s)
}

// startProcesses runs one `gantry server` and n `gantry worker` processes of the built binary
// for a busybox project whose one test, "slow", sleeps for sleep seconds.
func startProcesses(t *testing.T, project string, sleep, n int, grace string) (*gantryProc, string, []*proc) {
	t.Helper()
	c := startCluster(t, project, sleep, 1, n, grace)
	return c.servers[0], c.sha, c.workers
}

// cluster is gantry's processes on one Redis, and the project's repository with its first commit.
type cluster struct {
	servers []*gantryProc
	workers []*proc
	repo    *gitlabtest.Repo
	sha     string
}

// startCluster runs servers `gantry server` processes, each on its own address, and n `gantry
// worker` processes, all on one Redis, for the busybox project of startProcesses.
func startCluster(t *testing.T, project string, sleep, servers, n int, grace string) cluster {
	t.Helper()
	busybox := testenv.Need(t, "GANTRY_TEST_BUSYBOX_IMAGE")
	redisURL := testenv.RedisURL(t)
	bin := buildGantry(t)
	gl := gitlabtest.New(t)
	repo := gitlabtest.NewRepo(t)
	sha := repo.Commit("slow test", map[string]string{"Dockerfile": "FROM " + busybox + "\nCOPY . /app\n"})
	proj := gl.AddProject(project, repo.Dir)
	image := "gantry-e2e/" + strings.ReplaceAll(project, "/", "-") + "-" + randomName()
	t.Cleanup(func() { removeImages(t, image) })
	config := func(addr string) string {
		cfg := fmt.Sprintf(`
server: {listen: %q, public_url: "http://%s"}
redis: {url: %q}
gitlab: {url: %q, token: %q}
workers: {concurrency: 2, job_retries: 2, shutdown_grace: %s}
api: {tokens: [%s]}
projects:
  - path: %s
    webhook_secret: %s
    image: %s
    tests:
      - {name: slow, command: ["sh", "-c", "sleep %d; echo done"], timeout: 2m}
`, addr, addr, redisURL, gl.URL, gl.Token, grace, testAPIToken, project, testHookSecret, image, sleep)
		path := filepath.Join(t.TempDir(), "gantry.yaml")
		must(t, os.WriteFile(path, []byte(cfg), 0o600))
		return path
	}
	var gs []*gantryProc
	for range servers {
		addr := testenv.FreeAddr(t)
		startProc(t, bin, "server", config(addr))
		g := &gantryProc{url: "http://" + addr, secret: testHookSecret, apiToken: testAPIToken, gitlab: gl, project: proj, redisURL: redisURL}
		gs = append(gs, g)
	}
	workerConfig := config(testenv.FreeAddr(t)) // a worker listens nowhere; the address is never used
	var workers []*proc
	for range n {
		workers = append(workers, startProc(t, bin, "worker", workerConfig))
	}
	for _, g := range gs {
		waitHealthy(t, g.url)
	}
	return cluster{servers: gs, workers: workers, repo: repo, sha: sha}
}

// runningWorker waits for the worker process that started the test job.
func runningWorker(t *testing.T, workers []*proc) *proc {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, w := range workers {
			if w.logged(`"job":"test/slow"`) {
				return w
			}
		}
	}
	t.Fatal("no worker started the test job")
	return nil
}

// TestWorkerKilledMidTest: the worker running a test job is killed with SIGKILL while two other
// worker processes are alive. Another worker takes the job over once its lease runs out (8 s,
// checked every 3 s, rather than asynq's own lease and minute-long recovery), removes
// the dead worker's container, runs it again; the pipeline finishes, GitLab ends with terminal
// statuses posted in a legal order, and no gantry-labelled container of the pipeline is left.
func TestWorkerKilledMidTest(t *testing.T) {
	t.Parallel()
	g, sha, workers := startProcesses(t, "group/killed", 15, 3, "5s")
	id := g.push(t, "main", zero, sha)
	victim := runningWorker(t, workers)
	time.Sleep(2 * time.Second) // let the container run
	must(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	killed := time.Now()
	t.Logf("killed worker pid %d in the middle of test/slow", victim.cmd.Process.Pid)
	// The figure of the takeover promise (README, RELIABILITY): from the kill to the job running
	// again on another worker. Printed, not asserted: a loaded machine stretches it.
	for deadline := killed.Add(3 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if slices.ContainsFunc(workers, func(w *proc) bool { return w != victim && w.loggedLine(`"msg":"job running"`, `"job":"test/slow"`) }) {
			t.Logf("takeover: test/slow running again %.1f s after its worker was killed", time.Since(killed).Seconds())
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("test/slow never ran again")
		}
	}

	p := g.waitFinished(t, id, 5*time.Minute)
	if p.State != "success" {
		t.Errorf("pipeline = %s, want success after the takeover: %+v", p.State, p.Jobs)
	}
	waitStatusesFor(t, g, sha, map[string][]string{
		"gantry/build": {"pending", "running", "success"}, "gantry/test/slow": {"pending", "running", "success"},
	}, 2*time.Minute)
	if rejected := g.gitlab.Rejected(); len(rejected) > 0 {
		t.Errorf("GitLab refused %d calls, first %+v", len(rejected), rejected[0])
	}
	assertNoContainers(t, id, "group/killed", 10*time.Second)
}

func waitHealthy(t *testing.T, url string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("gantry server not healthy after 30s")
		}
	}
}

// TestWorkerStoppedMidTest: a worker stopped with SIGTERM in the middle of a long test gives it
// the grace period, then hands it back and exits; the other worker runs it to the end.
func TestWorkerStoppedMidTest(t *testing.T) {
	t.Parallel()
	g, sha, workers := startProcesses(t, "group/stopped", 10, 2, "2s")
	id := g.push(t, "main", zero, sha)
	victim := runningWorker(t, workers)
	time.Sleep(time.Second)
	stopped := time.Now()
	must(t, victim.cmd.Process.Signal(syscall.SIGTERM))
	victim.cmd.Wait()
	took := time.Since(stopped)
	t.Logf("worker exited %s after SIGTERM (grace 2s)", took.Round(10*time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("worker took %s to stop, grace is 2s", took)
	}
	p := g.waitFinished(t, id, 2*time.Minute)
	if p.State != "success" {
		t.Errorf("pipeline = %s after the hand-back: %+v", p.State, p.Jobs)
	}
	waitStatusesFor(t, g, sha, map[string][]string{
		"gantry/build": {"pending", "running", "success"}, "gantry/test/slow": {"pending", "running", "success"},
	}, 2*time.Minute)
	assertNoContainers(t, id, "group/stopped", 10*time.Second)
}
