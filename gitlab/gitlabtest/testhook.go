package gitlabtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// testHook answers POST /projects/:id/hooks/:hook_id/test/push_events (GitLab 17.0+): it
// delivers a push of the default branch's head to the hook, as GitLab's sample push data does,
// and a 2xx answer makes a disabled hook executable again (docs/gitlab.md §1.4). GitLab answers
// 201 when the delivery succeeded and 422 with the hook's failure when it did not. Only the push
// trigger is modelled; the others answer 400.
func (s *Server) testHook(w http.ResponseWriter, req *request) {
	if req.user == nil {
		writeJSON(w, http.StatusUnauthorized, message("401 Unauthorized"))
		return
	}
	if !requireProject(w, req) {
		return
	}
	id, err := strconv.ParseInt(req.tail[1], 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "hook_id is invalid"})
		return
	}
	if req.tail[3] != "push_events" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "trigger: only push_events is modelled by the double"})
		return
	}
	s.mu.Lock()
	h := s.findHook(req.project.ID, id)
	var hook Hook
	if h != nil {
		hook = *h
	}
	s.mu.Unlock()
	if h == nil {
		writeJSON(w, http.StatusNotFound, message("404 Not found"))
		return
	}
	body, err := s.samplePush(req)
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, message(err.Error()))
		return
	}
	if err := deliver(req, hook, body); err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, message("[Hook execution failed: "+err.Error()+"]"))
		return
	}
	s.mu.Lock()
	if h := s.findHook(req.project.ID, id); h != nil {
		h.AlertStatus, h.DisabledUntil = "executable", nil
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, message("201 Created"))
}

// samplePush is the push payload of the default branch's head, with the fields GitLab's sample
// carries that a receiver reads.
func (s *Server) samplePush(req *request) ([]byte, error) {
	p := req.project
	sha, ok := resolveCommit(req.r.Context(), p.RepoDir, "main")
	if !ok {
		return nil, fmt.Errorf("Ensure the project has commits.")
	}
	commit, ok := s.commitEntity(req.r.Context(), p, sha)
	if !ok {
		return nil, fmt.Errorf("Ensure the project has commits.")
	}
	webURL := s.URL + "/" + p.PathWithNamespace
	return json.Marshal(map[string]any{
		"object_kind": "push", "event_name": "push", "ref": "refs/heads/main",
		"before": strings.Repeat("0", 40), "after": sha, "checkout_sha": sha,
		"user_username": req.user.username, "project_id": p.ID,
		"project": map[string]any{"id": p.ID, "name": p.Path, "path_with_namespace": p.PathWithNamespace,
			"web_url": webURL, "default_branch": "main"},
		"commits": []map[string]any{{"id": sha, "message": commit["message"], "title": commit["title"],
			"url": webURL + "/-/commit/" + sha}},
		"total_commits_count": 1,
	})
}

// deliver posts body to the hook as GitLab would, with its token and custom headers; anything
// but a 2xx is a failure.
func deliver(req *request, h Hook, body []byte) error {
	r, err := http.NewRequestWithContext(req.r.Context(), http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range h.CustomHeaders {
		r.Header.Set(k, v)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Gitlab-Event", "Push Hook")
	if h.Token != "" {
		r.Header.Set("X-Gitlab-Token", h.Token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(r)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}
