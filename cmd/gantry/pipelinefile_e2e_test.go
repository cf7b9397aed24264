package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

// filesRead lists the repository files GitLab served, as "project@sha:path".
func filesRead(g *gantryProc) []string {
	var out []string
	for _, c := range g.gitlab.Calls() {
		if c.Method == http.MethodGet && strings.Contains(c.Path, "/repository/files/") {
			out = append(out, fmt.Sprintf("%d@%s", c.ProjectID, c.Query.Get("ref")))
		}
	}
	return out
}

// TestPipelineFileSetsTests: a commit whose .gantry.yml sets the tests runs exactly those, and
// GitLab sees statuses for exactly those, none for the server's test the file replaced; the
// commit before it, without the file, runs the server's test.
func TestPipelineFileSetsTests(t *testing.T) {
	t.Parallel()
	g, repo := startBusyboxProject(t, testenv.RedisURL(t), "")
	repo.Git("checkout", "-q", "-b", "feature")
	before := repo.Commit("no pipeline file yet", map[string]string{"a.txt": "1"})
	sha := repo.Commit("the tests move into the repository", map[string]string{".gantry.yml": `
tests:
  - {name: quick, command: ["sh", "/app/test.sh"], timeout: 30s}
  - {name: smoke, command: ["sh", "-c", "test -f /app/.gantry.yml"], memory: 64MiB}
`})
	once := []string{"pending", "running", "success"}

	id := g.push(t, "feature", zero, before)
	if p := g.waitFinished(t, id, 2*time.Minute); p.State != "success" {
		t.Fatalf("pipeline without the file = %s: %+v", p.State, p.Jobs)
	}
	waitStatuses(t, g, before, map[string][]string{"gantry/build": once, "gantry/test/check": once})

	id = g.push(t, "feature", before, sha)
	p := g.waitFinished(t, id, 2*time.Minute)
	if p.State != "success" {
		t.Fatalf("pipeline with the file = %s: %+v", p.State, p.Jobs)
	}
	var jobs []string
	for _, j := range p.Jobs {
		jobs = append(jobs, j.Name)
	}
	if d := cmp.Diff([]string{"build", "test/quick", "test/smoke"}, jobs); d != "" {
		t.Errorf("jobs (-want +got):\n%s", d)
	}
	waitStatuses(t, g, sha, map[string][]string{"gantry/build": once, "gantry/test/quick": once, "gantry/test/smoke": once})
	if d := cmp.Diff([]string{fmt.Sprintf("%d@%s", g.project.ID, before), fmt.Sprintf("%d@%s", g.project.ID, sha)}, filesRead(g)); d != "" {
		t.Errorf("pipeline files read (-want +got):\n%s", d)
	}
}

// TestPipelineFileRefused: a .gantry.yml that sets a trust key (release) fails gantry/build
// with the file and the key named, and runs nothing: no test, no status but the build's. So
// does one asking for more than the server's ceilings.
func TestPipelineFileRefused(t *testing.T) {
	t.Parallel()
	g, repo := startBusyboxProject(t, testenv.RedisURL(t), "    limits: {memory: 256MiB}\n")
	repo.Git("checkout", "-q", "-b", "feature")
	for _, tt := range []struct{ file, desc string }{
		{"release: {branches: [feature]}\ntests: [{name: quick, command: [sh, /app/test.sh]}]\n",
			".gantry.yml: release: set in the server's config, not the repository"},
		{"tests: [{name: quick, command: [sh, /app/test.sh], memory: 8GiB}]\n",
			".gantry.yml: tests[0].memory: 8GiB is above the server's ceiling of 256MiB (limits.memory in the server's config)"},
	} {
		sha := repo.Commit("a pipeline file", map[string]string{".gantry.yml": tt.file})
		p := g.waitFinished(t, g.push(t, "feature", zero, sha), 2*time.Minute)
		st, desc := p.job("build")
		if p.State != "failed" || st != "failed" || desc != tt.desc || len(p.Jobs) != 1 {
			t.Errorf("pipeline = %s, build %s %q, jobs %+v; want only the build, failed with %q", p.State, st, desc, p.Jobs, tt.desc)
		}
		waitStatuses(t, g, sha, map[string][]string{"gantry/build": {"pending", "running", "failed"}})
		if posts := statusPosts(g, g.project.ID, sha); len(posts) != 3 || posts[2] != "gantry/build failed: "+tt.desc {
			t.Errorf("statuses posted: %q", posts)
		}
		if r := archivesRead(g); len(r) != 0 {
			t.Errorf("archives read for a refused file: %v", r)
		}
	}
}

// TestForkPipelineFile: a fork's .gantry.yml is untrusted content, read from the fork at its
// commit only once a maintainer approved the pipeline. Its tests then run, posted on the fork;
// one asking for more than the server's ceilings fails the build, with nothing run.
func TestForkPipelineFile(t *testing.T) {
	t.Parallel()
	g, repo := startBusyboxProject(t, testenv.RedisURL(t), "    limits: {networks: [none]}\n")
	fork, forkRepo, _, first := forkMergeRequest(t, g, repo, 7)
	// The first hook's pipeline reads the merge request's head from GitLab when it starts: were
	// the next commit there already, that pipeline would hand over to one of it (binding.go),
	// and the next hook would name that one (200) rather than start its own.
	g.waitState(t, first, "waiting_for_approval")

	head := forkRepo.Commit("the fork's own tests", map[string]string{".gantry.yml": "tests: [{name: forkcheck, command: [sh, /app/test.sh]}]\n"})
	id := g.mergeRequestHook(t, fork, 7, head)
	g.waitState(t, id, "waiting_for_approval")
	time.Sleep(time.Second) // what would read the file has had its time
	if r := filesRead(g); len(r) != 0 {
		t.Fatalf("pipeline files read before approval: %v", r)
	}
	if _, err := approveAPI(g, id, ""); err != nil {
		t.Fatal(err)
	}
	if p := g.waitFinished(t, id, 2*time.Minute); p.State != "success" {
		t.Fatalf("approved pipeline = %s: %+v", p.State, p.Jobs)
	}
	once := []string{"pending", "running", "success"}
	waitStatusesOn(t, g, fork.ID, head, map[string][]string{"gantry/build": once, "gantry/test/forkcheck": once}, 10*time.Second)
	if d := cmp.Diff([]string{fmt.Sprintf("%d@%s", fork.ID, head)}, filesRead(g)); d != "" {
		t.Errorf("pipeline files read (-want +got):\n%s", d)
	}

	greedy := forkRepo.Commit("the fork wants the network", map[string]string{".gantry.yml": "tests: [{name: forkcheck, command: [sh, /app/test.sh], network: bridge}]\n"})
	id = g.mergeRequestHook(t, fork, 7, greedy)
	g.waitState(t, id, "waiting_for_approval")
	if _, err := approveAPI(g, id, ""); err != nil {
		t.Fatal(err)
	}
	p := g.waitFinished(t, id, 2*time.Minute)
	want := `.gantry.yml: tests[0].network: "bridge" is not allowed by the server (limits.networks: none)`
	if st, desc := p.job("build"); p.State != "failed" || st != "failed" || desc != want || len(p.Jobs) != 1 {
		t.Errorf("pipeline = %s, build %s %q, jobs %+v; want the build alone, failed with %q", p.State, st, desc, p.Jobs, want)
	}
	for _, r := range archivesRead(g) {
		if strings.HasSuffix(r, "@"+greedy) {
			t.Errorf("the refused commit's archive was read: %s", r)
		}
	}
}
