package gitlab

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/google/go-cmp/cmp"
)

// TestMergeRequest reads a fork's merge request through the GitLab double: the source project
// and head come from GitLab, and the head follows a push to the source branch.
func TestMergeRequest(t *testing.T) {
	srv := gitlabtest.New(t)
	repo := gitlabtest.NewRepo(t)
	repo.Commit("one", map[string]string{"a.txt": "a"})
	target := srv.AddProject("group/app", repo.Dir)
	forkRepo := gitlabtest.NewRepo(t)
	forkRepo.Git("checkout", "-q", "-b", "feature")
	first := forkRepo.Commit("from a fork", map[string]string{"b.txt": "b"})
	fork := srv.AddProject("someone/app", forkRepo.Dir)
	srv.AddMergeRequest(target.ID, gitlabtest.MergeRequest{IID: 4, SourceProjectID: fork.ID, SourceBranch: "feature", TargetBranch: "main", Author: "someone"})
	c, err := New(srv.URL, srv.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.MergeRequest(t.Context(), target.ID, 4)
	want := orchestrator.MergeRequestHead{SourceProjectID: fork.ID, SHA: first, SourceBranch: "feature", TargetBranch: "main",
		WebURL: srv.URL + "/group/app/-/merge_requests/4", AuthorID: got.AuthorID, Author: "someone"}
	if got.AuthorID == 0 {
		t.Error("merge request read without its author's id")
	}
	if d := cmp.Diff(want, got); err != nil || d != "" {
		t.Errorf("MergeRequest(%d, 4) = %v (-want +got):\n%s", target.ID, err, d)
	}
	second := forkRepo.Commit("another", map[string]string{"b.txt": "c"})
	if got, err := c.MergeRequest(t.Context(), target.ID, 4); err != nil || got.SHA != second {
		t.Errorf("MergeRequest after a push = %+v, %v, want head %s", got, err, second)
	}
	// The iid belongs to the target: the fork has no merge request 4.
	if _, err := c.MergeRequest(t.Context(), fork.ID, 4); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("MergeRequest(fork, 4) error = %v, want ErrNotFound", err)
	}
	if _, err := c.MergeRequest(t.Context(), target.ID, 5); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("MergeRequest(target, 5) error = %v, want ErrNotFound", err)
	}
}

// TestMemberAccess reads access levels through the GitLab double's members API: a member's
// level, 0 for a user who is no member or for no user at all.
func TestMemberAccess(t *testing.T) {
	srv := gitlabtest.New(t)
	repo := gitlabtest.NewRepo(t)
	repo.Commit("one", map[string]string{"a.txt": "a"})
	target := srv.AddProject("group/app", repo.Dir)
	other := srv.AddProject("group/other", repo.Dir)
	srv.AddMember(target.ID, "dev", orchestrator.AccessDeveloper)
	srv.AddMember(other.ID, "outsider", 40)
	srv.AddMergeRequest(target.ID, gitlabtest.MergeRequest{IID: 1, SourceProjectID: target.ID, SourceBranch: "main", Author: "dev"})
	srv.AddMergeRequest(target.ID, gitlabtest.MergeRequest{IID: 2, SourceProjectID: target.ID, SourceBranch: "main", Author: "outsider"})
	c, err := New(srv.URL, srv.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	for iid, want := range map[int64]int{1: orchestrator.AccessDeveloper, 2: 0} {
		mr, err := c.MergeRequest(t.Context(), target.ID, iid)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.MemberAccess(t.Context(), target.ID, mr.AuthorID); err != nil || got != want {
			t.Errorf("MemberAccess(%s) = %d, %v, want %d", mr.Author, got, err, want)
		}
	}
	// No author named: nobody's access, and nothing asked of GitLab.
	before := len(srv.Calls())
	for _, user := range []int64{0, -1} {
		if got, err := c.MemberAccess(t.Context(), target.ID, user); err != nil || got != 0 {
			t.Errorf("MemberAccess(user %d) = %d, %v, want 0", user, got, err)
		}
	}
	if n := len(srv.Calls()) - before; n != 0 {
		t.Errorf("MemberAccess without a user made %d calls, want none", n)
	}
}

// TestMemberAccessState: a member GitLab holds blocked or awaiting approval has no access, as
// in GitLab itself; an active member, or one from a GitLab that names no state, has their level.
func TestMemberAccessState(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		state string
		want  int
	}{{"active", 40}, {"", 40}, {"blocked", 0}, {"awaiting", 0}} {
		c := fakeGitLab(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":7,"username":"dev","state":%q,"access_level":40}`, tt.state)
		})
		if got, err := c.MemberAccess(t.Context(), 1, 7); err != nil || got != tt.want {
			t.Errorf("MemberAccess of a member in state %q = %d, %v, want %d", tt.state, got, err, tt.want)
		}
	}
}
