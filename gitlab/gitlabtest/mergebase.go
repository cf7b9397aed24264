package gitlabtest

import (
	"net/http"
	"strings"
)

// mergeBase is GET /projects/:id/repository/merge_base?refs[]=A&refs[]=B, answered from the
// repository's real history the way GitLab answers it (lib/api/repositories.rb): fewer than two
// refs is 400 "Provide at least 2 refs"; refs it cannot resolve are 400 "Could not find ref: A"
// ("refs: A, B" for several); refs without a common ancestor are 404 "404 Merge Base Not Found";
// otherwise the merge base's commit entity.
func (s *Server) mergeBase(w http.ResponseWriter, req *request) {
	if !requireProject(w, req) {
		return
	}
	refs := req.r.URL.Query()["refs[]"]
	if len(refs) < 2 {
		writeJSON(w, http.StatusBadRequest, message("Provide at least 2 refs"))
		return
	}
	ctx, dir := req.r.Context(), req.project.RepoDir
	var shas, unknown []string
	for _, ref := range refs {
		sha, ok := resolveCommit(ctx, dir, ref)
		if !ok {
			unknown = append(unknown, ref)
		}
		shas = append(shas, sha)
	}
	if len(unknown) > 0 {
		noun := "ref"
		if len(unknown) > 1 {
			noun = "refs"
		}
		writeJSON(w, http.StatusBadRequest, message("Could not find "+noun+": "+strings.Join(unknown, ", ")))
		return
	}
	out, err := git(ctx, dir, append([]string{"merge-base", "--"}, shas...)...)
	base := strings.TrimSpace(string(out))
	if err != nil || base == "" {
		writeJSON(w, http.StatusNotFound, message("404 Merge Base Not Found"))
		return
	}
	entity, ok := s.commitEntity(ctx, req.project, base)
	if !ok {
		writeJSON(w, http.StatusNotFound, message("404 Merge Base Not Found"))
		return
	}
	writeJSON(w, http.StatusOK, entity)
}
