package gitlabtest

import (
	"net/http"
	"strconv"
)

// AddMember gives the user username (made on first use) an access level in a project: 30 is
// Developer, 40 Maintainer (docs/gitlab.md §8).
func (s *Server) AddMember(projectID int64, username string, level int) {
	u := s.userNamed(username)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.members == nil {
		s.members = map[int64]map[int64]int{}
	}
	if s.members[projectID] == nil {
		s.members[projectID] = map[int64]int{}
	}
	s.members[projectID][u.id] = level
}

// BlockUser blocks the user username, as an administrator does: their memberships stay, with
// state "blocked" (docs/gitlab.md §8).
func (s *Server) BlockUser(username string) {
	u := s.userNamed(username)
	s.mu.Lock()
	defer s.mu.Unlock()
	u.blocked = true
}

// showMember is GET /projects/:id/members/all/:user_id (GitLab's "Get a member of a group or
// project, including inherited and invited members"): the member with their access level,
// 404 "404 Not found" for a user who is no member.
func (s *Server) showMember(w http.ResponseWriter, req *request) {
	if !requireProject(w, req) {
		return
	}
	id, err := strconv.ParseInt(req.tail[2], 10, 64)
	if err != nil {
		writeJSON(w, http.StatusNotFound, message("404 Not found"))
		return
	}
	s.mu.Lock()
	level, ok := s.members[req.project.ID][id]
	name, state := "", "active"
	for _, u := range s.users {
		if u.id == id {
			name = u.username
			if u.blocked {
				state = "blocked"
			}
		}
	}
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, message("404 Not found"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "username": name, "name": name, "state": state, "access_level": level,
	})
}
