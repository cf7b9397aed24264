package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var sortStrings = cmpopts.SortSlices(func(a, b string) bool { return a < b })

// approveWaiting approves, through the API, the first pipeline that waits for approval.
func (g *gantryProc) approveWaiting(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, g.url+"/api/v1/pipelines?status=waiting_for_approval", nil)
		req.Header.Set("Authorization", "Bearer "+g.apiToken)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		var list struct {
			Pipelines []apiPipeline `json:"pipelines"`
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		must(t, err)
		if len(list.Pipelines) > 0 {
			if _, err := approveAPI(g, list.Pipelines[0].ID, ""); err != nil {
				t.Fatal(err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no pipeline waits for approval")
		}
	}
}

// forkMergeRequest opens merge request iid on g's project from a new fork whose branch
// "feature" holds one commit of its own, and delivers GitLab's hook for it. It returns the fork,
// its repository, the head and the pipeline the hook answered with.
func forkMergeRequest(t *testing.T, g *gantryProc, repo *gitlabtest.Repo, iid int64) (gitlabtest.Project, *gitlabtest.Repo, string, int64) {
	t.Helper()
	forkRepo := gitlabtest.NewRepo(t)
	forkRepo.Git("pull", "-q", repo.Dir, "main")
	forkRepo.Git("checkout", "-q", "-b", "feature")
	head := forkRepo.Commit("from a fork", map[string]string{"fork.txt": "hello"})
	fork := g.gitlab.AddProject("someone/bb-"+randomName(), forkRepo.Dir)
	g.gitlab.AddMergeRequest(g.project.ID, gitlabtest.MergeRequest{IID: iid, SourceProjectID: fork.ID, SourceBranch: "feature", TargetBranch: "main", Author: "someone"})
	return fork, forkRepo, head, g.mergeRequestHook(t, fork, iid, head)
}

// mergeRequestHook delivers GitLab's merge request hook for head of source and returns the
// pipeline it answered with.
func (g *gantryProc) mergeRequestHook(t *testing.T, source gitlabtest.Project, iid int64, head string) int64 {
	t.Helper()
	code, ans, _ := g.hook(t, "Merge Request Hook", g.secret, mrPayload(g.project, source, iid, "update", "0000000000000000000000000000000000000001", head, "feature"))
	if code != http.StatusAccepted {
		t.Fatalf("merge request hook answered %d %v", code, ans)
	}
	return int64(ans["pipeline_id"].(float64))
}

// waitState polls a pipeline until it is in state.
func (g *gantryProc) waitState(t *testing.T, id int64, state string) apiPipeline {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		p := g.pipeline(t, id)
		if p.State == state {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("pipeline %d is %s, want %s: %+v", id, p.State, state, p.Jobs)
		}
	}
}

// statusPosts lists the accepted commit status posts on a project's commit as "name state:
// description".
func statusPosts(g *gantryProc, projectID int64, sha string) []string {
	var out []string
	for _, c := range g.gitlab.Calls() {
		if c.Method == http.MethodPost && c.ProjectID == projectID && strings.HasSuffix(c.Path, "/statuses/"+sha) && c.Status == http.StatusCreated {
			out = append(out, c.Body["name"]+" "+c.Body["state"]+": "+c.Body["description"])
		}
	}
	return out
}

// archivesRead lists the archives GitLab served, as "project@sha".
func archivesRead(g *gantryProc) []string {
	var out []string
	for _, c := range g.gitlab.Calls() {
		if strings.Contains(c.Path, "/repository/archive") {
			out = append(out, fmt.Sprintf("%d@%s", c.ProjectID, c.Query.Get("sha")))
		}
	}
	return out
}

// gantryCLI runs `gantry pipelines …` against g with its API token.
func (g *gantryProc) gantryCLI(t *testing.T, args ...string) string {
	t.Helper()
	env := map[string]string{"GANTRY_URL": g.url, "GANTRY_TOKEN": g.apiToken}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), append([]string{"pipelines"}, args...), func(k string) string { return env[k] }, &stdout, &stderr); err != nil {
		t.Fatalf("gantry pipelines %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// TestForkMergeRequestApproval is the approval gate end to end: a fork's merge request fetches
// and runs nothing, and shows every status pending on the fork with how to approve; approved
// with the CLI, it runs to the end on the fork without a release; the fork's next commit waits
// again, and declining it cancels every status.
func TestForkMergeRequestApproval(t *testing.T) {
	g, repo := startBusyboxProject(t, testenv.RedisURL(t), "")
	fork, forkRepo, head, id := forkMergeRequest(t, g, repo, 4)

	p := g.waitState(t, id, "waiting_for_approval")
	// The tests are known once the fork's pipeline file is read, after approval: until then the
	// build's status alone holds the merge request.
	waiting := []string{
		"gantry/build pending: waiting for approval (merge request from a fork): gantry pipelines approve " + fmt.Sprint(id),
	}
	for deadline := time.Now().Add(time.Minute); len(statusPosts(g, fork.ID, head)) < len(waiting); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("statuses on the fork: %v", statusPosts(g, fork.ID, head))
		}
	}
	time.Sleep(time.Second) // what would run has had its time
	if d := cmp.Diff(waiting, statusPosts(g, fork.ID, head), sortStrings); d != "" {
		t.Errorf("statuses of the waiting pipeline (-want +got):\n%s", d)
	}
	if r := archivesRead(g); len(r) != 0 {
		t.Errorf("archives read before approval: %v", r)
	}
	if r := filesRead(g); len(r) != 0 {
		t.Errorf("pipeline files read before approval: %v", r)
	}
	if st, _ := p.job("release"); st != "" {
		t.Errorf("a fork's pipeline has a release job (%s)", st)
	}

	out := g.gantryCLI(t, "approve", fmt.Sprint(id), "--as", "maint", "--sha", head[:10])
	if !strings.Contains(out, "(approved)") || !strings.Contains(out, "approved by maint (API token sha256:") {
		t.Errorf("gantry pipelines approve printed %q", out)
	}
	p = g.waitFinished(t, id, 2*time.Minute)
	if p.State != "success" {
		t.Errorf("approved pipeline = %s: %+v", p.State, p.Jobs)
	}
	want := map[string][]string{"gantry/build": {"pending", "running", "success"}, "gantry/test/check": {"pending", "running", "success"}}
	waitStatusesOn(t, g, fork.ID, head, want, 10*time.Second)
	if got := g.gitlab.StatusHistory(g.project.ID, head); len(got) != 0 {
		t.Errorf("statuses on the target project: %v", got)
	}
	if d := cmp.Diff([]string{fmt.Sprintf("%d@%s", fork.ID, head)}, archivesRead(g)); d != "" {
		t.Errorf("archives read (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{fmt.Sprintf("%d@%s", fork.ID, head)}, filesRead(g)); d != "" {
		t.Errorf("pipeline files read (-want +got):\n%s", d)
	}

	// The fork's next commit is another pipeline, and it waits again.
	next := forkRepo.Commit("more from the fork", map[string]string{"fork.txt": "again"})
	second := g.mergeRequestHook(t, fork, 4, next)
	if second == id {
		t.Fatalf("the new commit answered with the approved pipeline %d", id)
	}
	g.waitState(t, second, "waiting_for_approval")
	if _, err := approveAPI(g, second, `{"sha":"`+head+`"}`); err == nil {
		t.Error("an approval naming the reviewed, older commit was accepted for the new one")
	}
	g.gantryCLI(t, "decline", fmt.Sprint(second), "--as", "maint")
	if p := g.waitFinished(t, second, time.Minute); p.State != "canceled" {
		t.Errorf("declined pipeline = %s", p.State)
	}
	want = map[string][]string{"gantry/build": {"pending", "canceled"}}
	waitStatusesOn(t, g, fork.ID, next, want, time.Minute)
	if r := archivesRead(g); len(r) != 1 {
		t.Errorf("archives read: %v, want only the approved commit's", r)
	}
	if code, err := approveAPI(g, second, ""); err == nil || code != http.StatusConflict {
		t.Errorf("approval after decline = %d %v, want 409", code, err)
	}
}

// TestMergeRequestApprovalByMembership: with approval: non-members, a merge request whose author
// is a Developer of the project runs at once; one by an outsider waits, and expires unapproved.
func TestMergeRequestApprovalByMembership(t *testing.T) {
	g, repo := startBusyboxProject(t, testenv.RedisURL(t), "    approval: non-members\n    approval_expiry: 2s\n")
	g.gitlab.AddMember(g.project.ID, "dev", 30)
	repo.Git("checkout", "-q", "-b", "feature")
	member := repo.Commit("a member's change", map[string]string{"m.txt": "m"})
	g.gitlab.AddMergeRequest(g.project.ID, gitlabtest.MergeRequest{IID: 1, SourceProjectID: g.project.ID, SourceBranch: "feature", TargetBranch: "main", Author: "dev"})
	id := g.mergeRequestHook(t, g.project, 1, member)
	if p := g.waitFinished(t, id, 2*time.Minute); p.State != "success" {
		t.Errorf("a member's merge request = %s, want it run without approval", p.State)
	}

	repo.Git("checkout", "-q", "-b", "outside")
	outsider := repo.Commit("an outsider's change", map[string]string{"o.txt": "o"})
	g.gitlab.AddMergeRequest(g.project.ID, gitlabtest.MergeRequest{IID: 2, SourceProjectID: g.project.ID, SourceBranch: "outside", TargetBranch: "main", Author: "outsider"})
	code, ans, _ := g.hook(t, "Merge Request Hook", g.secret, mrPayload(g.project, g.project, 2, "open", "", outsider, "outside"))
	if code != http.StatusAccepted {
		t.Fatalf("merge request hook answered %d %v", code, ans)
	}
	id = int64(ans["pipeline_id"].(float64))
	g.waitState(t, id, "waiting_for_approval")
	// Nobody approves: the sweep (every 30 s) cancels it once the 2 s are up.
	p := g.waitFinished(t, id, 90*time.Second)
	if st, desc := p.job("build"); p.State != "canceled" || st != "canceled" || !strings.Contains(desc, "nobody approved") {
		t.Errorf("unapproved pipeline = %s, build %s %q, want canceled because nobody approved", p.State, st, desc)
	}
	for _, r := range archivesRead(g) {
		if strings.HasSuffix(r, "@"+outsider) {
			t.Errorf("the outsider's commit was fetched: %s", r)
		}
	}
}

// approveAPI posts an approval with body and returns the answer's code, and an error unless 2xx.
func approveAPI(g *gantryProc, id int64, body string) (int, error) {
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/v1/pipelines/%d/approve", g.url, id), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+g.apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("approve %d: %s", id, resp.Status)
	}
	return resp.StatusCode, nil
}
