package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// repo is a git repository the GitLab double serves archives from. Every benchmark pipeline gets
// a commit of its own, so that builds do real work and no two pushes are deduplicated.
type repo struct {
	dir string
}

// newRepo creates a repository in dir with the files of from (a directory; empty for none) and
// files on top, committed to master, and returns it with the first commit's SHA.
func newRepo(ctx context.Context, dir, from string, files map[string]string) (*repo, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	if from != "" {
		if err := os.CopyFS(dir, os.DirFS(from)); err != nil {
			return nil, "", fmt.Errorf("copy %s: %w", from, err)
		}
	}
	r := &repo{dir: dir}
	if _, err := r.git(ctx, "init", "-q", "-b", "master"); err != nil {
		return nil, "", err
	}
	sha, err := r.commit(ctx, "initial commit", files)
	return r, sha, err
}

// commit writes files (slash-separated path → content), commits every change on master and
// returns the new SHA.
func (r *repo) commit(ctx context.Context, message string, files map[string]string) (string, error) {
	for name, content := range files {
		p := filepath.Join(r.dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	if _, err := r.git(ctx, "add", "-A"); err != nil {
		return "", err
	}
	if _, err := r.git(ctx, "commit", "-q", "--allow-empty", "-m", message); err != nil {
		return "", err
	}
	return r.git(ctx, "rev-parse", "HEAD")
}

// git runs git in the repository, with a fixed identity and without the user's configuration,
// which may ask to sign commits.
func (r *repo) git(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Bench", "GIT_AUTHOR_EMAIL=bench@example.com",
		"GIT_COMMITTER_NAME=Bench", "GIT_COMMITTER_EMAIL=bench@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}
