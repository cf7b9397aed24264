package gitlabtest

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// postStatus is POST /projects/:id/statuses/:sha, following Ci::CreateCommitStatusService
// (docs/gitlab.md §3.1) in the order GitLab checks things: parameter validation, project, commit,
// model validation, then the pipeline, the job and the transition.
func (s *Server) postStatus(w http.ResponseWriter, req *request) {
	p := req.params
	state, ok := p["state"]
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "state is missing"})
		return
	}
	if _, ok := transitions[state]; !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "state does not have a valid value"})
		return
	}
	var pipelineID int64
	if v, ok := p["pipeline_id"]; ok {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "pipeline_id is invalid"})
			return
		}
		pipelineID = id
	}
	var coverage *float64
	if v, ok := p["coverage"]; ok {
		c, err := strconv.ParseFloat(v, 64)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "coverage is invalid"})
			return
		}
		coverage = &c
	}
	if !requireProject(w, req) {
		return
	}
	sha, ok := resolveCommit(req.r.Context(), req.project.RepoDir, req.tail[1])
	if !ok {
		writeJSON(w, http.StatusNotFound, message("404 Commit Not Found"))
		return
	}
	name, ok := p["name"]
	if !ok {
		name, ok = p["context"]
	}
	if !ok {
		name = "default"
	}
	if invalid := validateStatus(name, p); invalid != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": invalid})
		return
	}
	ref := p["ref"]
	if ref == "" {
		if ref = s.guessRef(req, sha); ref == "" {
			writeJSON(w, http.StatusNotFound, message("404 References for commit Not Found"))
			return
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	pl := s.findPipeline(req.project.ID, sha, ref, pipelineID)
	if pl == nil && pipelineID != 0 {
		writeJSON(w, http.StatusNotFound, message("404 Pipeline for pipeline_id, sha and ref Not Found"))
		return
	}
	if pl == nil {
		pl = s.newPipeline(req.project.ID, sha, ref)
	}
	now := time.Now()
	j := s.activeJob(pl, name, ref, req.user)
	if j == nil {
		j = &job{id: int64(9001 + len(s.jobs)), pipeline: pl.id, project: pl.project, sha: sha, ref: ref,
			name: name, user: req.user, status: "created", createdAt: now}
		for _, old := range s.jobs {
			if old.pipeline == pl.id && old.name == name {
				old.retried = true
			}
		}
		s.jobs = append(s.jobs, j)
	}
	if refused := j.apply(state, now); refused != "" {
		writeJSON(w, http.StatusBadRequest, message(refused))
		return
	}
	if v, ok := p["target_url"]; ok {
		j.targetURL = &v
	}
	if v, ok := p["description"]; ok {
		j.description = &v
	}
	if coverage != nil {
		j.coverage = coverage
	}
	s.accepted = append(s.accepted, acceptance{project: pl.project, sha: sha, name: name, state: state})
	writeJSON(w, http.StatusCreated, j.entity(s.URL))
}

// validateStatus is the model validation of a commit status, as GitLab renders it:
// {"message": {"<attribute>": ["<problem>"]}}. The description limit is docs/gitlab.md's "≤255 (doc)";
// its error text is modelled on the target_url one.
func validateStatus(name string, p map[string]string) map[string][]string {
	problems := map[string][]string{}
	if name == "" {
		problems["name"] = []string{"can't be blank"}
	}
	if target := p["target_url"]; target != "" {
		u, err := url.Parse(target)
		switch {
		case err != nil || u.Host == "":
			problems["target_url"] = []string{"is blocked: URI is invalid"}
		case u.Scheme != "http" && u.Scheme != "https":
			problems["target_url"] = []string{"is blocked: Only allowed schemes are http, https"}
		case utf8.RuneCountInString(target) > 255:
			problems["target_url"] = []string{"is too long (maximum is 255 characters)"}
		}
	}
	if utf8.RuneCountInString(p["description"]) > 255 {
		problems["description"] = []string{"is too long (maximum is 255 characters)"}
	}
	if len(problems) == 0 {
		return nil
	}
	return problems
}

// guessRef is GitLab's choice of ref when a post has none: the ref of the newest pipeline of the
// commit, else the first branch that contains it — an arbitrary one.
func (s *Server) guessRef(req *request, sha string) string {
	s.mu.Lock()
	for _, pl := range slices.Backward(s.pipelines) {
		if pl.project == req.project.ID && pl.sha == sha {
			s.mu.Unlock()
			return pl.ref
		}
	}
	s.mu.Unlock()
	return firstBranchContaining(req.r.Context(), req.project.RepoDir, sha)
}

// findPipeline returns the pipeline a status goes to: the one asked for by id when it matches the
// commit and ref, else the newest of the commit and ref. The caller holds s.mu.
func (s *Server) findPipeline(project int64, sha, ref string, id int64) *pipeline {
	for _, pl := range slices.Backward(s.pipelines) {
		if pl.project == project && pl.sha == sha && pl.ref == ref && (id == 0 || pl.id == id) {
			return pl
		}
	}
	return nil
}

// activeJob returns the pending or running job a post updates in place. The caller holds s.mu.
func (s *Server) activeJob(pl *pipeline, name, ref string, u *user) *job {
	for _, j := range slices.Backward(s.jobs) {
		if j.pipeline == pl.id && j.name == name && j.ref == ref && j.user == u && j.active() {
			return j
		}
	}
	return nil
}

// requireProject answers 404 when the request's project is unknown, or private and the request
// anonymous: GitLab does not tell a private project from a missing one. Handlers call it after
// their parameter validation, because GitLab validates parameters before it looks the project up.
func requireProject(w http.ResponseWriter, req *request) bool {
	if req.project == nil || req.user == nil && !req.project.Public {
		writeJSON(w, http.StatusNotFound, message("404 Project Not Found"))
		return false
	}
	return true
}

// listStatuses is GET /projects/:id/repository/commits/:sha/statuses (docs/gitlab.md §3.2): without
// all=true only the latest job of each name (the ones not retried), ordered by id ascending
// unless order_by/sort say otherwise, paginated with GitLab's X-* headers.
func (s *Server) listStatuses(w http.ResponseWriter, req *request) {
	p := req.params
	orderBy, sortDir := cmp.Or(p["order_by"], "id"), cmp.Or(p["sort"], "asc")
	if orderBy != "id" && orderBy != "pipeline_id" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "order_by does not have a valid value"})
		return
	}
	if sortDir != "asc" && sortDir != "desc" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "sort does not have a valid value"})
		return
	}
	if !requireProject(w, req) {
		return
	}
	sha, ok := resolveCommit(req.r.Context(), req.project.RepoDir, req.tail[2])
	if !ok {
		writeJSON(w, http.StatusNotFound, message("404 Commit Not Found"))
		return
	}
	all := p["all"] == "true" || p["all"] == "1"
	pipelineID, _ := strconv.ParseInt(p["pipeline_id"], 10, 64)

	s.mu.Lock()
	var found []*job
	for _, j := range s.jobs {
		if j.project != req.project.ID || j.sha != sha || (j.retried && !all) ||
			p["ref"] != "" && j.ref != p["ref"] || p["name"] != "" && j.name != p["name"] ||
			p["stage"] != "" && p["stage"] != "external" || pipelineID != 0 && j.pipeline != pipelineID {
			continue
		}
		found = append(found, j)
	}
	slices.SortStableFunc(found, func(a, b *job) int {
		c := cmp.Compare(a.id, b.id)
		if orderBy == "pipeline_id" {
			c = cmp.Compare(a.pipeline, b.pipeline)
		}
		if sortDir == "desc" {
			c = -c
		}
		return c
	})
	page, perPage := paginate(w, p, len(found))
	out := []map[string]any{}
	for _, j := range found[min(len(found), (page-1)*perPage):min(len(found), page*perPage)] {
		out = append(out, j.entity(s.URL))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// paginate reads page and per_page (defaults 1 and 20, at most 100 per page) and sets GitLab's
// offset pagination headers.
func paginate(w http.ResponseWriter, p map[string]string, total int) (page, perPage int) {
	page, _ = strconv.Atoi(p["page"])
	page = max(page, 1)
	perPage, _ = strconv.Atoi(p["per_page"])
	if perPage <= 0 {
		perPage = 20
	}
	perPage = min(perPage, 100)
	pages := max((total+perPage-1)/perPage, 1)
	h := w.Header()
	h.Set("X-Total", strconv.Itoa(total))
	h.Set("X-Total-Pages", strconv.Itoa(pages))
	h.Set("X-Per-Page", strconv.Itoa(perPage))
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Next-Page", "")
	if page < pages {
		h.Set("X-Next-Page", strconv.Itoa(page+1))
	}
	h.Set("X-Prev-Page", "")
	if page > 1 {
		h.Set("X-Prev-Page", strconv.Itoa(page-1))
	}
	return page, perPage
}
