package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

// TestHookCannotNameAnotherProject: the holder of project A's webhook secret sends a push that
// names A's path but project B's id and a commit of B. Gantry never reads B's source nor posts
// on B with its own token: GitLab hears of nothing but A.
func TestHookCannotNameAnotherProject(t *testing.T) {
	g, _ := startBusyboxProject(t, testenv.RedisURL(t), "")
	busybox := testenv.Need(t, "GANTRY_TEST_BUSYBOX_IMAGE")
	other := gitlabtest.NewRepo(t)
	secret := other.Commit("B's code", map[string]string{"Dockerfile": "FROM " + busybox + "\nCOPY . /app\n", "test.sh": "true\n", "secret.txt": "B only"})
	b := g.gitlab.AddProject("other/secret-"+randomName(), other.Dir)

	push := g.pushPayload("main", zero, secret, "change")
	push["project_id"] = b.ID
	push["project"].(map[string]any)["id"] = b.ID
	code, ans, _ := g.hook(t, "Push Hook", g.secret, push)
	switch code {
	case http.StatusAccepted:
		p := g.waitFinished(t, int64(ans["pipeline_id"].(float64)), time.Minute)
		if p.State != "canceled" {
			t.Errorf("pipeline = %s, want canceled (refused)", p.State)
		}
		for _, j := range p.Jobs {
			if !strings.Contains(j.Description, "refused") {
				t.Errorf("job %s = %s %q, want the refusal as its reason", j.Name, j.State, j.Description)
			}
		}
	case http.StatusOK, http.StatusUnauthorized, http.StatusForbidden:
		// Refused by the webhook itself (once it asks the engine for the project's id).
	default:
		t.Fatalf("hook answered %d %v", code, ans)
	}
	// The statuses of a refused pipeline would be posted within moments; give them time to show.
	time.Sleep(time.Second)
	for _, c := range g.gitlab.Calls() {
		if c.ProjectID == b.ID || strings.Contains(c.Path, fmt.Sprintf("/projects/%d/", b.ID)) {
			t.Errorf("GitLab got %s %s on project B", c.Method, c.Path)
		}
		if c.Method == http.MethodPost || strings.Contains(c.Path, "/repository/archive") {
			t.Errorf("GitLab got %s %s for a refused pipeline", c.Method, c.Path)
		}
	}
}

// TestForkMergeRequestFromGitLab: a merge request hook whose payload names a decoy fork and its
// commit, while GitLab's merge request comes from another fork: gantry builds the head GitLab
// has, from the fork GitLab names, posts its statuses there, and never touches the decoy.
func TestForkMergeRequestFromGitLab(t *testing.T) {
	g, repo := startBusyboxProject(t, testenv.RedisURL(t), "")
	forkRepo := gitlabtest.NewRepo(t)
	forkRepo.Git("pull", "-q", repo.Dir, "main")
	forkRepo.Git("checkout", "-q", "-b", "feature")
	head := forkRepo.Commit("from the real fork", map[string]string{"fork.txt": "hello"})
	fork := g.gitlab.AddProject("someone/tiny-"+randomName(), forkRepo.Dir)
	decoyRepo := gitlabtest.NewRepo(t)
	decoyRepo.Git("pull", "-q", repo.Dir, "main")
	decoySHA := decoyRepo.Commit("not this one", map[string]string{"decoy.txt": "x"})
	decoy := g.gitlab.AddProject("mallory/tiny-"+randomName(), decoyRepo.Dir)
	g.gitlab.AddMergeRequest(g.project.ID, gitlabtest.MergeRequest{IID: 6, SourceProjectID: fork.ID, SourceBranch: "feature", TargetBranch: "main"})

	code, ans, _ := g.hook(t, "Merge Request Hook", g.secret, mrPayload(g.project, decoy, 6, "open", "", decoySHA, "decoy"))
	if code != http.StatusAccepted {
		t.Fatalf("MR hook answered %d %v", code, ans)
	}
	g.approveWaiting(t) // a fork's: only GitLab's pipeline of it waits, the payload's is skipped
	want := map[string][]string{
		"gantry/build": {"pending", "running", "success"}, "gantry/test/check": {"pending", "running", "success"},
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		touched := callsOn(g, decoy.ID)
		if len(touched) > 0 {
			t.Fatalf("GitLab got calls on the decoy the payload named: %v", touched)
		}
		got := g.gitlab.StatusHistory(fork.ID, head)
		if cmp.Equal(want, got) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("statuses on the fork's head %s (-want +got):\n%s", head[:8], cmp.Diff(want, got))
		}
	}
	for _, sha := range []string{head, decoySHA} {
		if got := g.gitlab.StatusHistory(g.project.ID, sha); len(got) != 0 {
			t.Errorf("statuses on the target project at %s: %v", sha[:8], got)
		}
	}
	for _, c := range g.gitlab.Calls() {
		if strings.Contains(c.Path, "/repository/archive") && (c.ProjectID != fork.ID || c.Query.Get("sha") != head) {
			t.Errorf("archive read from project %d at %s, want the fork at %s", c.ProjectID, c.Query.Get("sha"), head[:8])
		}
	}
}

// callsOn lists the calls GitLab got on one project.
func callsOn(g *gantryProc, projectID int64) []string {
	var out []string
	for _, c := range g.gitlab.Calls() {
		if c.ProjectID == projectID {
			out = append(out, c.Method+" "+c.Path)
		}
	}
	return out
}
