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
}
