package gitlabtest

import (
	"net/http"
	"path"
)

// showProject answers GET /projects/:id with the fields gantry reads.
func (s *Server) showProject(w http.ResponseWriter, req *request) {
	if !requireProject(w, req) {
		return
	}
	p := req.project
	writeJSON(w, http.StatusOK, map[string]any{
		"id": p.ID, "name": p.Path, "path": p.Path, "path_with_namespace": p.PathWithNamespace,
		"namespace":      map[string]any{"full_path": path.Dir(p.PathWithNamespace)},
		"web_url":        s.URL + "/" + p.PathWithNamespace,
		"default_branch": "main",
	})
}
