package gitlab

import (
	"errors"
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
	srv.AddMergeRequest(target.ID, gitlabtest.MergeRequest{IID: 4, SourceProjectID: fork.ID, SourceBranch: "feature", TargetBranch: "main"})
	c, err := New(srv.URL, srv.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.MergeRequest(t.Context(), target.ID, 4)
	want := orchestrator.MergeRequestHead{SourceProjectID: fork.ID, SHA: first, SourceBranch: "feature", TargetBranch: "main",
		WebURL: srv.URL + "/group/app/-/merge_requests/4"}
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
