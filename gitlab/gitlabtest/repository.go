package gitlabtest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
)

// archiveFormats maps the archive formats GitLab serves that git archive can make itself to
// git's names for them. The bz2 family would need an external compressor; the double answers
// 404 for it, as GitLab does for any archive it cannot make.
var archiveFormats = map[string]string{"tar.gz": "tar.gz", "tar": "tar", "zip": "zip"}

// archive is GET /projects/:id/repository/archive[.format]?sha= (docs/gitlab.md §5.1): the tree at
// sha under one top-level folder named <project.path>-<ref, '/' → '-'>-<full commit sha>. Any
// failure is GitLab's blanket 404 "File Not Found". The path and exclude_paths filters are not
// served (gantry does not use them); a request using them is answered 404.
func (s *Server) archive(w http.ResponseWriter, req *request) {
	if !requireProject(w, req) {
		return
	}
	notFound := func() { writeJSON(w, http.StatusNotFound, message("404 File Not Found")) }
	format := "tar.gz"
	if f, ok := strings.CutPrefix(req.tail[1], "archive."); ok {
		format = f
	}
	gitFormat, ok := archiveFormats[format]
	if !ok || req.params["path"] != "" || req.params["exclude_paths"] != "" {
		notFound()
		return
	}
	ctx, dir := req.r.Context(), req.project.RepoDir
	ref := req.params["sha"]
	if ref == "" {
		head, err := git(ctx, dir, "symbolic-ref", "--short", "HEAD")
		if err != nil {
			notFound()
			return
		}
		ref = strings.TrimSpace(string(head))
	}
	sha, ok := resolveCommit(ctx, dir, ref)
	if !ok {
		notFound()
		return
	}
	prefix := fmt.Sprintf("%s-%s-%s", req.project.Path, strings.ReplaceAll(ref, "/", "-"), sha)
	data, err := git(ctx, dir, "archive", "--format="+gitFormat, "--prefix="+prefix+"/", sha)
	if err != nil {
		notFound()
		return
	}
	s.mu.Lock()
	req.cut, s.cutNext = s.cutNext, false
	s.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s"`, prefix, format))
	h.Set("Content-Transfer-Encoding", "binary")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// rawFile is GET /projects/:id/repository/files/:file_path/raw?ref= (docs/gitlab.md §5.3): the
// file's bytes at ref (a SHA, branch or tag; the default branch without one). A missing file,
// ref or repository is GitLab's 404 "File Not Found".
func (s *Server) rawFile(w http.ResponseWriter, req *request) {
	if !requireProject(w, req) {
		return
	}
	notFound := func() { writeJSON(w, http.StatusNotFound, message("404 File Not Found")) }
	ctx, dir := req.r.Context(), req.project.RepoDir
	ref := req.params["ref"]
	if ref == "" {
		ref = "HEAD"
	}
	sha, ok := resolveCommit(ctx, dir, ref)
	if !ok {
		notFound()
		return
	}
	data, err := git(ctx, dir, "cat-file", "blob", sha+":"+req.tail[2])
	if err != nil {
		notFound()
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Gitlab-File-Path", req.tail[2])
	w.Header().Set("X-Gitlab-Size", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// commit is GET /projects/:id/repository/commits/:sha, the commit entity of a SHA, branch or tag.
func (s *Server) commit(w http.ResponseWriter, req *request) {
	if !requireProject(w, req) {
		return
	}
	ctx, dir := req.r.Context(), req.project.RepoDir
	sha, ok := resolveCommit(ctx, dir, req.tail[2])
	if !ok {
		writeJSON(w, http.StatusNotFound, message("404 Commit Not Found"))
		return
	}
	entity, ok := s.commitEntity(ctx, req.project, sha)
	if !ok {
		writeJSON(w, http.StatusNotFound, message("404 Commit Not Found"))
		return
	}
	writeJSON(w, http.StatusOK, entity)
}

// commitEntity is GitLab's commit entity of a full SHA, as the commit and merge-base
// endpoints answer it.
func (s *Server) commitEntity(ctx context.Context, project *Project, sha string) (map[string]any, bool) {
	dir := project.RepoDir
	out, err := git(ctx, dir, "show", "-s", "--format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B", sha)
	f := strings.SplitN(strings.TrimSuffix(string(out), "\n"), "\x00", 9)
	if err != nil || len(f) != 9 {
		return nil, false
	}
	msg := f[8]
	title, _, _ := strings.Cut(msg, "\n")
	parents := strings.Fields(f[1])
	if parents == nil {
		parents = []string{}
	}
	return map[string]any{
		"id":                sha,
		"short_id":          sha[:8],
		"title":             title,
		"message":           msg,
		"author_name":       f[2],
		"author_email":      f[3],
		"authored_date":     f[4],
		"committer_name":    f[5],
		"committer_email":   f[6],
		"committed_date":    f[7],
		"created_at":        f[7],
		"parent_ids":        parents,
		"stats":             commitStats(ctx, dir, sha),
		"status":            nil,
		"last_pipeline":     nil,
		"project_id":        project.ID,
		"trailers":          map[string]string{},
		"extended_trailers": map[string][]string{},
		"web_url":           fmt.Sprintf("%s/%s/-/commit/%s", s.URL, project.PathWithNamespace, sha),
	}, true
}

// commitStats counts the lines a commit adds and deletes against its first parent, as GitLab's
// stats do. Binary files count nothing.
func commitStats(ctx context.Context, dir, sha string) map[string]int64 {
	var add, del int64
	out, _ := git(ctx, dir, "show", "--numstat", "--format=", "--diff-merges=first-parent", sha)
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		a, _ := strconv.ParseInt(f[0], 10, 64)
		d, _ := strconv.ParseInt(f[1], 10, 64)
		add, del = add+a, del+d
	}
	return map[string]int64{"additions": add, "deletions": del, "total": add + del}
}

// resolveCommit returns the full SHA of the commit rev names (a SHA, short SHA, branch or tag),
// or false when the repository has no such commit.
func resolveCommit(ctx context.Context, dir, rev string) (string, bool) {
	if rev == "" || strings.HasPrefix(rev, "-") {
		return "", false
	}
	out, err := git(ctx, dir, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(out)), true
}

// firstBranchContaining returns the first branch whose history holds sha, "" when none does.
func firstBranchContaining(ctx context.Context, dir, sha string) string {
	out, err := git(ctx, dir, "for-each-ref", "--contains", sha, "--format=%(refname:short)", "refs/heads/")
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(first)
}

// git runs git in dir and returns its standard output.
func git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}
