package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestScaleOut: two `gantry server` and three `gantry worker` processes on one Redis. 200
// webhooks — 40 commits on their own branches, each delivered five times over both servers
// (two of them GitLab's resend of one delivery) — arrive while one worker is SIGKILLed in the
// middle of a job. Each commit gets exactly one pipeline, which finishes; no job attempt runs
// twice except the one the killed worker held, taken over once; every GitLab status ends
// terminal; nothing is left on the engine.
func TestScaleOut(t *testing.T) {
	t.Parallel()
	const commits, perCommit = 40, 5
	c := startCluster(t, "group/scale", 3, 2, 3, "5s")
	shas := make([]string, commits)
	for i := range shas {
		c.repo.Git("checkout", "-q", "-B", fmt.Sprintf("b%02d", i), c.sha)
		shas[i] = c.repo.Commit(fmt.Sprintf("change %d", i), map[string]string{"n.txt": fmt.Sprint(i)})
	}

	var sent, answered2xx atomic.Int64
	var mu sync.Mutex
	pipelineOf := map[string]map[int64]bool{}
	deliver := func(i, k int) {
		g := c.servers[k%2]
		key := fmt.Sprintf("scale-%d-%d", i, min(k, 3)) // deliveries 3 and 4: a resend of one delivery
		code, ans, _ := g.delivery(t, "Push Hook", g.secret, key, g.pushPayload(fmt.Sprintf("b%02d", i), c.sha, shas[i], "change"))
		sent.Add(1)
		if code/100 != 2 {
			t.Errorf("delivery %d of commit %d answered %d %v", k, i, code, ans)
			return
		}
		answered2xx.Add(1)
		id, _ := ans["pipeline_id"].(float64)
		mu.Lock()
		if pipelineOf[shas[i]] == nil {
			pipelineOf[shas[i]] = map[int64]bool{}
		}
		pipelineOf[shas[i]][int64(id)] = true
		mu.Unlock()
	}
	start := time.Now()
	var wg sync.WaitGroup
	jobs := make(chan [2]int)
	for range 8 {
		wg.Go(func() {
			for j := range jobs {
				deliver(j[0], j[1])
			}
		})
	}
	var victim *proc
	for i := range commits {
		for k := range perCommit {
			jobs <- [2]int{i, k}
		}
		if i == commits/2 {
			// Midway: kill a worker in the middle of a job.
			victim = runningAny(t, c.workers)
			must(t, victim.cmd.Process.Signal(syscall.SIGKILL))
			t.Logf("killed worker pid %d after %d deliveries", victim.cmd.Process.Pid, sent.Load())
		}
	}
	close(jobs)
	wg.Wait()

	g := c.servers[0]
	var pipelines []int64
	for _, sha := range shas {
		if len(pipelineOf[sha]) != 1 {
			t.Errorf("commit %s answered with pipelines %v, want exactly one", sha[:8], pipelineOf[sha])
		}
		for id := range pipelineOf[sha] {
			pipelines = append(pipelines, id)
		}
	}
	for _, id := range pipelines {
		if p := g.waitFinished(t, id, 5*time.Minute); p.State != "success" {
			t.Errorf("pipeline %d = %s, want success: %+v", id, p.State, p.Jobs)
		}
	}
	took := time.Since(start)
	for _, sha := range shas {
		waitTerminalStatuses(t, g, sha, 2*time.Minute)
	}

	runs, duplicates := jobRuns(t, c.workers, victim)
	t.Logf("scale-out: %d webhooks sent, %d answered 2xx, %d pipelines for %d commits, %d job runs, %d duplicate runs, all done in %s",
		sent.Load(), answered2xx.Load(), len(pipelines), commits, runs, duplicates, took.Round(100*time.Millisecond))
	if duplicates > 0 {
		t.Errorf("%d job attempts ran twice outside the takeover of the killed worker's job", duplicates)
	}
	if rejected := g.gitlab.Rejected(); len(rejected) > 0 {
		t.Errorf("GitLab refused %d calls, first %+v", len(rejected), rejected[0])
	}
	for _, id := range pipelines {
		assertNoContainers(t, id, "group/scale", 10*time.Second)
	}
}

// waitTerminalStatuses waits until GitLab has gantry/build and gantry/test/slow of the commit
// at success, and every status of it in a terminal state.
func waitTerminalStatuses(t *testing.T, g *gantryProc, sha string, limit time.Duration) {
	t.Helper()
	terminal := map[string]bool{"success": true, "failed": true, "canceled": true, "skipped": true}
	var h map[string][]string
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		h = g.gitlab.StatusHistory(g.project.ID, sha)
		done := last(h["gantry/build"]) == "success" && last(h["gantry/test/slow"]) == "success"
		for _, states := range h {
			done = done && terminal[last(states)]
		}
		if done {
			return
		}
	}
	t.Errorf("statuses of %s = %v, want build and test success and every status terminal", sha[:8], h)
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// runningAny waits for a worker that is running a job now: its last "job running" line is
// newer than its last "job finished".
func runningAny(t *testing.T, workers []*proc) *proc {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, w := range workers {
			b, _ := os.ReadFile(w.log)
			if i := strings.LastIndex(string(b), `"msg":"job running"`); i >= 0 && strings.Contains(string(b[i:]), `"job":"test/slow"`) {
				return w
			}
		}
	}
	t.Fatal("no worker is running a job")
	return nil
}

// jobRuns counts the "job running" lines of every worker, and the job attempts that ran more
// than once other than a takeover of one the victim had started.
func jobRuns(t *testing.T, workers []*proc, victim *proc) (runs, duplicates int) {
	t.Helper()
	type attempt struct {
		Pipeline int64  `json:"pipeline"`
		Job      string `json:"job"`
		Attempt  int    `json:"attempt"`
	}
	onVictim, elsewhere := map[attempt]int{}, map[attempt]int{}
	for _, w := range workers {
		b, err := os.ReadFile(w.log)
		must(t, err)
		for line := range strings.Lines(string(b)) {
			if !strings.Contains(line, `"msg":"job running"`) {
				continue
			}
			var a attempt
			if json.Unmarshal([]byte(line), &a) != nil {
				continue
			}
			runs++
			if w == victim {
				onVictim[a]++
			} else {
				elsewhere[a]++
			}
		}
	}
	for a, n := range elsewhere {
		if n > 1 || onVictim[a] > 1 {
			duplicates++
		}
	}
	return runs, duplicates
}
