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
