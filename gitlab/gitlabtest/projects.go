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
		"visibility":     p.visibility(),
		"permissions":    s.permissions(req.user, p.ID),
	})
}

func (p *Project) visibility() string {
	switch {
	case p.Public:
		return "public"
	case p.Private:
		return "private"
	}
	return "internal"
}

// accessLevel is a user's access level in a project, 0 for no member.
func (s *Server) accessLevel(u *user, projectID int64) int {
	if u == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.members[projectID][u.id]
}

// canRead reports whether u (nil: no token) may read p: everyone a public project, every user an
// internal one, members and administrators a private one (docs/gitlab.md §9.3).
func (s *Server) canRead(u *user, p *Project) bool {
	switch {
	case p.Public:
		return true
	case u == nil:
		return false
	case !p.Private || u.admin:
		return true
	}
	return s.accessLevel(u, p.ID) >= 10
}

// permissions is GET /projects/:id's "permissions": the caller's own membership of the project
// (project_access) and of its group (group_access, always null here: the double has no groups),
// each null when there is none (docs/gitlab.md §9.3).
func (s *Server) permissions(u *user, projectID int64) map[string]any {
	var project any
	if level := s.accessLevel(u, projectID); level > 0 {
		project = map[string]int{"access_level": level, "notification_level": 3}
	}
	return map[string]any{"project_access": project, "group_access": nil}
}
