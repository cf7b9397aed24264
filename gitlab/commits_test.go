package gitlab

import (
	"errors"
	"testing"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/orchestrator"
)

func TestCommitMessage(t *testing.T) {
	srv := gitlabtest.New(t)
	repo := gitlabtest.NewRepo(t)
	sha := repo.Commit("fix typo\n\nlonger body [skip ci]", map[string]string{"a.txt": "a"})
	proj := srv.AddProject("group/app", repo.Dir)
	c, err := New(srv.URL, srv.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := c.CommitMessage(t.Context(), proj.ID, sha)
	if err != nil || !orchestrator.SkipCI(msg) {
		t.Errorf("CommitMessage = %q, %v, want the whole message with its [skip ci]", msg, err)
	}
	if _, err := c.CommitMessage(t.Context(), proj.ID, "0123456789012345678901234567890123456789"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("CommitMessage(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestProjectAndResolveRef(t *testing.T) {
	srv := gitlabtest.New(t)
	repo := gitlabtest.NewRepo(t)
	sha := repo.Commit("one", map[string]string{"a.txt": "a"})
	proj := srv.AddProject("group/app", repo.Dir)
	c, err := New(srv.URL, srv.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, webURL, err := c.Project(t.Context(), "group/app")
	if err != nil || id != proj.ID || webURL != srv.URL+"/group/app" {
		t.Errorf("Project = %d %q %v, want %d", id, webURL, err, proj.ID)
	}
	if got, err := c.ResolveRef(t.Context(), proj.ID, "main"); err != nil || got != sha {
		t.Errorf("ResolveRef(main) = %q, %v, want %s", got, err, sha)
	}
	if _, err := c.ResolveRef(t.Context(), proj.ID, "nope"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("ResolveRef(nope) error = %v, want ErrNotFound", err)
	}
	if _, _, err := c.Project(t.Context(), "group/none"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("Project(unknown) error = %v, want ErrNotFound", err)
	}
	if got, err := c.DefaultBranch(t.Context(), proj.ID); err != nil || got != "main" {
		t.Errorf("DefaultBranch = %q, %v, want main", got, err)
	}
	if _, err := c.DefaultBranch(t.Context(), 999); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("DefaultBranch(unknown project) error = %v, want ErrNotFound", err)
	}
}

// TestIsAncestor asks the double's merge-base endpoint, which answers from real git history:
// a branch's older commit is on it, a commit of another branch is not, and a commit GitLab does
// not have is nobody's ancestor.
func TestIsAncestor(t *testing.T) {
	srv := gitlabtest.New(t)
	repo := gitlabtest.NewRepo(t)
	older := repo.Commit("older", map[string]string{"a.txt": "1"})
	newer := repo.Commit("newer", map[string]string{"a.txt": "2"})
	repo.Git("checkout", "-q", "-b", "side", older)
	side := repo.Commit("side", map[string]string{"a.txt": "3"})
	repo.Git("tag", "main") // a tag named like the branch must not answer for refs/heads/main
	repo.Git("checkout", "-q", "--orphan", "unrelated")
	unrelated := repo.Commit("no shared history", map[string]string{"b.txt": "4"})
	repo.Git("checkout", "-q", "-f", "main")
	proj := srv.AddProject("group/app", repo.Dir)
	c, err := New(srv.URL, srv.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ancestor, descendant string
		want                 bool
	}{
		{older, "refs/heads/main", true},
		{newer, "refs/heads/main", true},
		{side, "refs/heads/main", false},
		{older, newer, true},
		{newer, older, false},
		{newer, newer, true},
		{older, side, true},
		{newer, side, false},
		{"0123456789012345678901234567890123456789", "refs/heads/main", false},
		{older, "refs/heads/nope", false},
		{unrelated, "refs/heads/main", false},
		{older, unrelated, false},
	}
	for _, tt := range tests {
		if got, err := c.IsAncestor(t.Context(), proj.ID, tt.ancestor, tt.descendant); err != nil || got != tt.want {
			t.Errorf("IsAncestor(%.8s, %.16s) = %v, %v, want %v", tt.ancestor, tt.descendant, got, err, tt.want)
		}
	}
}
