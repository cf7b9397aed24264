package gitlabtest_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// untar lists a tar.gz archive's regular files, path → content.
func untar(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = string(data)
		}
	}
}

func TestArchive(t *testing.T) {
	t.Parallel()
	b := setup(t)
	second := b.repo.Commit("Change the app", map[string]string{"src/app.py": "print('bye')\n"})
	b.repo.Git("checkout", "-q", "-b", "feature/x")
	third := b.repo.Commit("On a branch", map[string]string{"new.txt": "new\n"})
	tests := []struct {
		name   string
		pid    any
		sha    *string
		prefix string
		app    string
	}{
		{"first commit by sha", b.proj.ID, gitlab.Ptr(b.sha), "app-" + b.sha + "-" + b.sha + "/", "print('hi')\n"},
		{"branch by path", "group/app", gitlab.Ptr("main"), "app-main-" + second + "/", "print('bye')\n"},
		{"slashed branch", b.proj.ID, gitlab.Ptr("feature/x"), "app-feature-x-" + third + "/", "print('bye')\n"},
		{"default branch", b.proj.ID, nil, "app-feature-x-" + third + "/", "print('bye')\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if _, err := b.gl.Repositories.StreamArchive(tt.pid, &buf, &gitlab.ArchiveOptions{
				Format: gitlab.Ptr("tar.gz"), SHA: tt.sha,
			}); err != nil {
				t.Fatal(err)
			}
			files := untar(t, &buf)
			for name := range files {
				if !strings.HasPrefix(name, tt.prefix) {
					t.Errorf("archive entry %s is not under %s", name, tt.prefix)
				}
			}
			if files[tt.prefix+"README.md"] != "hello\n" || files[tt.prefix+"src/app.py"] != tt.app {
				t.Errorf("archive files = %v", files)
			}
		})
	}
}

func TestArchiveCut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.CutNextArchive()
	var buf bytes.Buffer
	_, err := b.gl.Repositories.StreamArchive(b.proj.ID, &buf, &gitlab.ArchiveOptions{SHA: gitlab.Ptr(b.sha)})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("StreamArchive of a cut answer: error = %v, want unexpected EOF", err)
	}
	if _, err := b.gl.Repositories.StreamArchive(b.proj.ID, &buf, &gitlab.ArchiveOptions{SHA: gitlab.Ptr(b.sha)}); err != nil {
		t.Errorf("StreamArchive after the cut one: %v", err)
	}
}

func TestCommit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	second := b.repo.Commit("Second\n\nBody.", map[string]string{"README.md": "hello\nworld\n"})
	c, _, err := b.gl.Commits.GetCommit("group/app", "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != second || c.ShortID != second[:8] || c.Title != "Second" || c.Message != "Second\n\nBody.\n" ||
		c.AuthorName != "Ada Lovelace" || len(c.ParentIDs) != 1 || c.ParentIDs[0] != b.sha ||
		c.CreatedAt == nil || c.CreatedAt.IsZero() || c.Stats == nil || c.Stats.Additions != 1 || c.ProjectID != b.proj.ID {
		t.Errorf("GetCommit(main) = %+v", c)
	}
	h := http.Header{"Private-Token": {b.srv.Token}}
	if resp, body := raw(t, http.MethodGet, b.srv.URL+"/api/v4/projects/1001/repository/commits/--help", h, ""); resp.StatusCode != 404 {
		t.Errorf("GET commit --help = %d %s, want 404", resp.StatusCode, body)
	}
}
