package gitlabtest

import (
	"fmt"
	"slices"
	"time"
)

// pipeline is an external pipeline: the one GitLab creates for the first status of a commit and
// ref, and which holds every later status of that commit and ref.
type pipeline struct {
	id       int64
	project  int64
	sha, ref string
}

// NewPipeline makes GitLab create a pipeline for a commit and ref, as a push that also runs GitLab
// CI does. Statuses posted afterwards without pipeline_id land in it (the pitfall of docs/gitlab.md
// §3.1); statuses pinned to an older pipeline by pipeline_id stay there. It returns its id.
func (s *Server) NewPipeline(projectID int64, sha, ref string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newPipeline(projectID, sha, ref).id
}

// Pipeline is an external pipeline as the double holds it: the id GitLab gave it and the commit
// and ref whose statuses it holds.
type Pipeline struct {
	ID, ProjectID int64
	SHA, Ref      string
}

// Pipelines returns every pipeline the double made, oldest first, so a test can show which
// commit and ref a pipeline id belongs to when a status pinned to it is refused.
func (s *Server) Pipelines() []Pipeline {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Pipeline, 0, len(s.pipelines))
	for _, pl := range s.pipelines {
		out = append(out, Pipeline{ID: pl.id, ProjectID: pl.project, SHA: pl.sha, Ref: pl.ref})
	}
	return out
}

// newPipeline adds a pipeline; ids start at 501. The caller holds s.mu.
func (s *Server) newPipeline(project int64, sha, ref string) *pipeline {
	pl := &pipeline{id: int64(501 + len(s.pipelines)), project: project, sha: sha, ref: ref}
	s.pipelines = append(s.pipelines, pl)
	return pl
}

// job is one commit status, GitLab's GenericCommitStatus.
type job struct {
	id          int64
	pipeline    int64
	project     int64
	sha, ref    string
	name        string
	user        *user
	status      string
	targetURL   *string
	description *string
	coverage    *float64
	createdAt   time.Time
	startedAt   *time.Time
	finishedAt  *time.Time
	// retried marks a job that a newer job of the same name replaced in its pipeline.
	retried bool
}

// transition is one event of GitLab's CommitStatus state machine: the states it may leave from
// and the state it enters.
type transition struct {
	event string
	from  []string
	to    string
}

// transitions maps each state the API accepts to the event Ci::CreateCommitStatusService fires
// for it (docs/gitlab.md §3.1, app/models/commit_status.rb). The states GitLab CI jobs pass through
// (waiting_for_resource, preparing, manual, scheduled) are listed although commit statuses never
// reach them, so the rows read like GitLab's.
var transitions = map[string]transition{
	"pending": {"enqueue", []string{"created", "skipped", "manual", "scheduled"}, "pending"},
	"running": {"run", []string{"pending"}, "running"},
	"success": {"success", []string{"created", "waiting_for_resource", "preparing", "pending", "running"}, "success"},
	"failed": {"drop", []string{"created", "waiting_for_resource", "preparing", "pending", "running",
		"manual", "scheduled"}, "failed"},
	"canceled": {"cancel", []string{"created", "waiting_for_resource", "preparing", "pending", "running",
		"manual", "scheduled"}, "canceled"},
	"skipped": {"skip", []string{"created", "waiting_for_resource", "preparing", "pending"}, "skipped"},
}

// apply moves j to state, or returns GitLab's message for a transition it refuses.
func (j *job) apply(state string, now time.Time) string {
	if state == "running" {
		// The API calls enqueue (the non-raising form) before run!, so a new job passes through
		// pending and a pending one stays put; only run! can refuse.
		j.fire(transitions["pending"], now)
	}
	t := transitions[state]
	if !j.fire(t, now) {
		return fmt.Sprintf(`Cannot transition status via :%s from :%s (Reason(s): Status cannot transition via "%s")`,
			t.event, j.status, t.event)
	}
	return ""
}

// fire runs one event, setting the timestamps GitLab sets on the way.
func (j *job) fire(t transition, now time.Time) bool {
	if !slices.Contains(t.from, j.status) {
		return false
	}
	j.status = t.to
	switch t.to {
	case "running":
		j.startedAt = &now
	case "success", "failed", "canceled":
		j.finishedAt = &now
	}
	return true
}

// active reports whether j is the job a new post of the same name, ref and user updates rather
// than replaces (docs/gitlab.md §3.1 step 3).
func (j *job) active() bool {
	return j.status == "pending" || j.status == "running"
}

// entity is API::Entities::CommitStatus.
func (j *job) entity(baseURL string) map[string]any {
	return map[string]any{
		"id":            j.id,
		"sha":           j.sha,
		"ref":           j.ref,
		"status":        j.status,
		"name":          j.name,
		"target_url":    j.targetURL,
		"description":   j.description,
		"created_at":    stamp(&j.createdAt),
		"started_at":    stamp(j.startedAt),
		"finished_at":   stamp(j.finishedAt),
		"allow_failure": false,
		"coverage":      j.coverage,
		"pipeline_id":   j.pipeline,
		"author": map[string]any{
			"id":         j.user.id,
			"username":   j.user.username,
			"name":       j.user.username,
			"state":      "active",
			"locked":     false,
			"avatar_url": nil,
			"web_url":    baseURL + "/" + j.user.username,
		},
	}
}

// stamp formats a time the way GitLab's API does (UTC, milliseconds), or null.
func stamp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
