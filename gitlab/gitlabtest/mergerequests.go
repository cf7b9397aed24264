package gitlabtest

import (
	"fmt"
	"net/http"
	"strconv"
)

// MergeRequest is a merge request the double serves from its target project.
type MergeRequest struct {
	IID int64
	// SourceProjectID is the project the commits come from: the target itself, or a fork.
	SourceProjectID int64
	SourceBranch    string
	TargetBranch    string
	// SHA is the head commit. Left "", it is the source branch's head in the source project's
	// repository at each request, as GitLab's merge request follows pushes to its source branch.
	SHA string
	// Author is the author's username, "gantry-bot" when left ""; the double makes the user
	// on first use.
	Author string
}

// mergeRequest is a merge request with the project it was opened in.
type mergeRequest struct {
	MergeRequest
	id       int64
	targetID int64
}

// AddMergeRequest opens a merge request in the project targetID, from mr.SourceProjectID (a
// fork when it is another project), and returns its global id.
func (s *Server) AddMergeRequest(targetID int64, mr MergeRequest) int64 {
	if mr.Author == "" {
		mr.Author = "gantry-bot"
	}
	s.userNamed(mr.Author)
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &mergeRequest{MergeRequest: mr, id: int64(9001 + len(s.mergeRequests)), targetID: targetID}
	s.mergeRequests = append(s.mergeRequests, m)
	return m.id
}

// findMergeRequest returns a copy of the merge request iid of project targetID, nil when none.
func (s *Server) findMergeRequest(targetID, iid int64) *mergeRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.mergeRequests {
		if m.targetID == targetID && m.IID == iid {
			found := *m
			return &found
		}
	}
	return nil
}

// showMergeRequest is GET /projects/:id/merge_requests/:iid (GitLab's "Get single MR"): the
// merge request of the target project with that iid, 404 "Not found" when it has none. sha is
// the diff head, the source branch's tip in the source project.
func (s *Server) showMergeRequest(w http.ResponseWriter, req *request) {
	if !requireProject(w, req) {
		return
	}
	iid, err := strconv.ParseInt(req.tail[1], 10, 64)
	if err != nil {
		writeJSON(w, http.StatusNotFound, message("404 Not found"))
		return
	}
	m := s.findMergeRequest(req.project.ID, iid)
	if m == nil {
		writeJSON(w, http.StatusNotFound, message("404 Not found"))
		return
	}
	sha := m.SHA
	if sha == "" {
		if src := s.project(strconv.FormatInt(m.SourceProjectID, 10)); src != nil {
			sha, _ = resolveCommit(req.r.Context(), src.RepoDir, "refs/heads/"+m.SourceBranch)
		}
	}
	var head any // GitLab answers null for a merge request whose source branch is gone
	if sha != "" {
		head = sha
	}
	author := s.userNamed(m.Author)
	writeJSON(w, http.StatusOK, map[string]any{
		"id": m.id, "iid": m.IID, "project_id": m.targetID,
		"title": fmt.Sprintf("merge request !%d", m.IID), "state": "opened", "draft": false,
		"source_branch": m.SourceBranch, "target_branch": m.TargetBranch,
		"source_project_id": m.SourceProjectID, "target_project_id": m.targetID,
		"sha": head, "merge_commit_sha": nil, "squash_commit_sha": nil,
		"diff_refs": map[string]any{"head_sha": head},
		"web_url":   fmt.Sprintf("%s/%s/-/merge_requests/%d", s.URL, req.project.PathWithNamespace, m.IID),
		"author":    map[string]any{"id": author.id, "username": author.username, "name": author.username, "state": "active"},
	})
}
