package gitlabtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Repo is a git repository in a test's temporary directory, to back a project of the double.
type Repo struct {
	// Dir is the repository's work tree.
	Dir string

	t       testing.TB
	commits int
}

// NewRepo creates an empty repository whose branch is "main". Commits made through it have fixed
// authors and dates and ignore the user's git configuration, so SHAs are the same on every run.
func NewRepo(t testing.TB) *Repo {
	t.Helper()
	r := &Repo{Dir: t.TempDir(), t: t}
	r.Git("init", "-q", "-b", "main")
	return r
}

// Commit writes files (slash-separated path → content), stages every change in the work tree and
// commits it with message. It returns the new commit's SHA.
func (r *Repo) Commit(message string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.Dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.Git("add", "-A")
	r.commits++
	r.Git("commit", "-q", "--allow-empty", "-m", message)
	return r.Git("rev-parse", "HEAD")
}

// Git runs git in the repository and returns its trimmed output, failing the test on error.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	date := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(r.commits) * time.Minute).Format(time.RFC3339)
	cmd := exec.Command("git", append([]string{"-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Ada Lovelace", "GIT_AUTHOR_EMAIL=ada@example.com", "GIT_AUTHOR_DATE="+date,
		"GIT_COMMITTER_NAME=Gantry Test", "GIT_COMMITTER_EMAIL=test@example.com", "GIT_COMMITTER_DATE="+date,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}
