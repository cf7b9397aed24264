package gitlabtest_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

var states = []gitlab.BuildStateValue{gitlab.Pending, gitlab.Running, gitlab.Success, gitlab.Failed, gitlab.Canceled, gitlab.Skipped}

// post sets a status on b.sha at ref main.
func (b *testBundle) post(gl *gitlab.Client, name string, state gitlab.BuildStateValue, desc string) (*gitlab.CommitStatus, error) {
	st, _, err := gl.Commits.SetCommitStatus(b.proj.ID, b.sha, &gitlab.SetCommitStatusOptions{
		State: state, Ref: gitlab.Ptr("main"), Name: gitlab.Ptr(name), Description: gitlab.Ptr(desc),
	})
	return st, err
}

// list returns the statuses of b.sha named name.
func (b *testBundle) list(t *testing.T, name string, all bool) []*gitlab.CommitStatus {
	t.Helper()
	sts, _, err := b.gl.Commits.GetCommitStatuses(b.proj.ID, b.sha, &gitlab.GetCommitStatusesOptions{
		Name: gitlab.Ptr(name), All: gitlab.Ptr(all),
	})
	if err != nil {
		t.Fatal(err)
	}
	return sts
}

func refused(event, from string) string {
	return fmt.Sprintf(`{"message":"Cannot transition status via :%s from :%s (Reason(s): Status cannot transition via \"%s\")"}`,
		event, from, event)
}

// TestTransitionTable walks every row of docs/gitlab.md §3.1's table: what a post does to the
// pending or running job of the same name, ref and user, or next to a finished one.
func TestTransitionTable(t *testing.T) {
	t.Parallel()
	type row struct {
		existing, post gitlab.BuildStateValue
		want           int    // answer code
		body           string // exact body of a refusal
		sameJob        bool   // 201 updates the existing job rather than adding one
	}
	var rows []row
	for _, post := range states {
		rows = append(rows, row{existing: "", post: post, want: 201})
	}
	for _, post := range states {
		switch post {
		case gitlab.Pending:
			rows = append(rows, row{gitlab.Pending, post, 400, refused("enqueue", "pending"), false})
		default:
			rows = append(rows, row{gitlab.Pending, post, 201, "", true})
		}
	}
	for _, post := range states {
		switch post {
		case gitlab.Running:
			rows = append(rows, row{gitlab.Running, post, 400, refused("run", "running"), false})
		case gitlab.Pending:
			rows = append(rows, row{gitlab.Running, post, 400, refused("enqueue", "running"), false})
		case gitlab.Skipped:
			rows = append(rows, row{gitlab.Running, post, 400, refused("skip", "running"), false})
		default:
			rows = append(rows, row{gitlab.Running, post, 201, "", true})
		}
	}
	for _, existing := range []gitlab.BuildStateValue{gitlab.Success, gitlab.Failed, gitlab.Canceled, gitlab.Skipped} {
		for _, post := range states {
			rows = append(rows, row{existing: existing, post: post, want: 201})
		}
	}

	b := setup(t)
	for _, r := range rows {
		t.Run(fmt.Sprintf("%s then %s", r.existing, r.post), func(t *testing.T) {
			t.Parallel()
			name := fmt.Sprintf("gantry/%s-%s", r.existing, r.post)
			var before *gitlab.CommitStatus
			if r.existing != "" {
				var err error
				if before, err = b.post(b.gl, name, r.existing, "first"); err != nil {
					t.Fatal(err)
				}
			}
			st, err := b.post(b.gl, name, r.post, "second")
			if r.want != 201 {
				code, body := apiError(t, err)
				if code != r.want || body != r.body {
					t.Fatalf("post %s = %d %s, want %d %s", r.post, code, body, r.want, r.body)
				}
				// A refused post changes nothing, its description included.
				if got := b.list(t, name, true); len(got) != 1 || got[0].Status != string(r.existing) || got[0].Description != "first" {
					t.Errorf("after refusal the statuses are %+v, want the first one untouched", got[0])
				}
				return
			}
			if err != nil {
				t.Fatalf("post %s: %v", r.post, err)
			}
			if st.Status != string(r.post) || st.Description != "second" || st.Ref != "main" || st.SHA != b.sha {
				t.Errorf("post %s answered %+v", r.post, st)
			}
			all, latest := b.list(t, name, true), b.list(t, name, false)
			switch {
			case before == nil:
				if len(all) != 1 {
					t.Errorf("first post made %d jobs, want 1", len(all))
				}
			case r.sameJob:
				if st.ID != before.ID || len(all) != 1 {
					t.Errorf("post %s made job %d (%d in all), want job %d updated", r.post, st.ID, len(all), before.ID)
				}
			default:
				if st.ID == before.ID || len(all) != 2 || len(latest) != 1 || latest[0].ID != st.ID || st.PipelineID != before.PipelineID {
					t.Errorf("post %s after %s: job %d, all %d, latest %v; want a new job in pipeline %d, the old one retried",
						r.post, r.existing, st.ID, len(all), latest, before.PipelineID)
				}
			}
		})
	}
}

func TestStatusValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	url := fmt.Sprintf("%s/api/v4/projects/%d/statuses/%s", b.srv.URL, b.proj.ID, b.sha)
	tests := []struct{ name, contentType, body, want string }{
		{"missing state", "application/json", `{"ref":"main"}`, `{"error":"state is missing"}`},
		{"failure is not a state", "application/json", `{"state":"failure","ref":"main"}`, `{"error":"state does not have a valid value"}`},
		{"cancelled is not a state", "application/x-www-form-urlencoded", `state=cancelled&ref=main`, `{"error":"state does not have a valid value"}`},
		{"target_url scheme", "application/json", `{"state":"pending","ref":"main","target_url":"ftp://ci.example.com/1"}`,
			`{"message":{"target_url":["is blocked: Only allowed schemes are http, https"]}}`},
		{"pipeline_id not a number", "application/json", `{"state":"pending","ref":"main","pipeline_id":"x"}`, `{"error":"pipeline_id is invalid"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Private-Token": {b.srv.Token}, "Content-Type": {tt.contentType}}
			resp, body := raw(t, http.MethodPost, url, h, tt.body)
			if resp.StatusCode != 400 || body != tt.want {
				t.Errorf("POST %s = %d %s, want 400 %s", tt.body, resp.StatusCode, body, tt.want)
			}
		})
	}
	if got := b.srv.StatusHistory(b.proj.ID, b.sha); len(got) != 0 {
		t.Errorf("StatusHistory after invalid posts = %v, want none", got)
	}
	// A form body, as curl sends it, is accepted like JSON.
	h := http.Header{"Private-Token": {b.srv.Token}, "Content-Type": {"application/x-www-form-urlencoded"}}
	if resp, body := raw(t, http.MethodPost, url, h, "state=success&ref=main&context=ci/form"); resp.StatusCode != 201 {
		t.Errorf("form POST = %d %s, want 201", resp.StatusCode, body)
	}
}

func TestPipelineID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first, err := b.post(b.gl, "gantry/build", gitlab.Running, "")
	if err != nil {
		t.Fatal(err)
	}
	// GitLab CI runs for the same commit: a newer pipeline appears (docs/gitlab.md §3.1, the pitfall).
	newer := b.srv.NewPipeline(b.proj.ID, b.sha, "main")

	pinned, _, err := b.gl.Commits.SetCommitStatus(b.proj.ID, b.sha, &gitlab.SetCommitStatusOptions{
		State: gitlab.Success, Ref: gitlab.Ptr("main"), Name: gitlab.Ptr("gantry/build"), PipelineID: gitlab.Ptr(first.PipelineID),
	})
	if err != nil || pinned.ID != first.ID || pinned.PipelineID != first.PipelineID {
		t.Fatalf("pinned post = %+v, %v; want job %d of pipeline %d updated", pinned, err, first.ID, first.PipelineID)
	}
	unpinned, err := b.post(b.gl, "gantry/test", gitlab.Pending, "")
	if err != nil || unpinned.PipelineID != newer {
		t.Errorf("unpinned post = %+v, %v; want it in the newer pipeline %d", unpinned, err, newer)
	}
	for _, tc := range []struct {
		ref string
		id  int64
	}{{"main", 4242}, {"other", first.PipelineID}} {
		_, _, err = b.gl.Commits.SetCommitStatus(b.proj.ID, b.sha, &gitlab.SetCommitStatusOptions{
			State: gitlab.Pending, Ref: gitlab.Ptr(tc.ref), Name: gitlab.Ptr("gantry/x"), PipelineID: gitlab.Ptr(tc.id),
		})
		if !errors.Is(err, gitlab.ErrNotFound) {
			t.Errorf("post pinned to pipeline %d on %s: error = %v, want 404", tc.id, tc.ref, err)
		}
	}
	h := http.Header{"Private-Token": {b.srv.Token}, "Content-Type": {"application/json"}}
	url := fmt.Sprintf("%s/api/v4/projects/%d/statuses/%s", b.srv.URL, b.proj.ID, b.sha)
	_, body := raw(t, http.MethodPost, url, h, `{"state":"pending","ref":"main","pipeline_id":4242}`)
	if want := `{"message":"404 Pipeline for pipeline_id, sha and ref Not Found"}`; body != want {
		t.Errorf("pinned to an unknown pipeline: body %s, want %s", body, want)
	}
}

func TestStatusesScopedByUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.AddToken("glpat-other", "someone")
	other := client(t, b.srv, "glpat-other")
	mine, err := b.post(b.gl, "ci", gitlab.Pending, "")
	if err != nil {
		t.Fatal(err)
	}
	// Another user's pending job of the same name is not the one a post updates.
	theirs, err := b.post(other, "ci", gitlab.Pending, "")
	if err != nil || theirs.ID == mine.ID || theirs.Author.Username != "someone" {
		t.Fatalf("other user's post = %+v, %v; want a job of its own", theirs, err)
	}
}

func TestRefGuess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st, _, err := b.gl.Commits.SetCommitStatus(b.proj.ID, b.sha, &gitlab.SetCommitStatusOptions{State: gitlab.Pending})
	if err != nil || st.Ref != "main" || st.Name != "default" {
		t.Fatalf("post without ref or name = %+v, %v; want ref main, name default", st, err)
	}
	b.repo.Git("checkout", "-q", "-b", "gone")
	orphan := b.repo.Commit("on a branch about to be deleted", map[string]string{"x": "1"})
	b.repo.Git("checkout", "-q", "main")
	b.repo.Git("branch", "-q", "-D", "gone")
	h := http.Header{"Private-Token": {b.srv.Token}, "Content-Type": {"application/json"}}
	url := fmt.Sprintf("%s/api/v4/projects/%d/statuses/%s", b.srv.URL, b.proj.ID, orphan)
	if resp, body := raw(t, http.MethodPost, url, h, `{"state":"pending"}`); resp.StatusCode != 404 ||
		body != `{"message":"404 References for commit Not Found"}` {
		t.Errorf("post without ref on a commit of no branch = %d %s", resp.StatusCode, body)
	}
}

func TestListStatuses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, name := range []string{"a", "b", "c"} {
		if _, err := b.post(b.gl, name, gitlab.Success, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.post(b.gl, "a", gitlab.Failed, "again"); err != nil {
		t.Fatal(err)
	}
	sts, resp, err := b.gl.Commits.GetCommitStatuses(b.proj.ID, b.sha, &gitlab.GetCommitStatusesOptions{
		ListOptions: gitlab.ListOptions{PerPage: 2}, Ref: gitlab.Ptr("main"),
	})
	if err != nil || len(sts) != 2 || sts[0].Name != "b" || sts[1].Name != "c" ||
		resp.TotalItems != 3 || resp.NextPage != 2 || resp.TotalPages != 2 {
		t.Fatalf("first page = %v, %+v, %v; want b, c of 3 latest", sts, resp, err)
	}
	sts, resp, _ = b.gl.Commits.GetCommitStatuses(b.proj.ID, b.sha, &gitlab.GetCommitStatusesOptions{
		ListOptions: gitlab.ListOptions{PerPage: 2, Page: 2},
	})
	if len(sts) != 1 || sts[0].Name != "a" || sts[0].Status != "failed" || resp.NextPage != 0 {
		t.Errorf("second page = %v, next %d; want the retried a", sts, resp.NextPage)
	}
	if got := b.srv.StatusHistory(b.proj.ID, b.sha); fmt.Sprint(got) != "map[a:[success failed] b:[success] c:[success]]" {
		t.Errorf("StatusHistory = %v", got)
	}
	if sts, _, _ := b.gl.Commits.GetCommitStatuses(b.proj.ID, b.sha, &gitlab.GetCommitStatusesOptions{Ref: gitlab.Ptr("other")}); len(sts) != 0 {
		t.Errorf("statuses of ref other = %v, want none", sts)
	}
}
