package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// zeroSHA is GitLab's "before" of a branch's first push.
const zeroSHA = "0000000000000000000000000000000000000000"

// gantryAPI is a client of a running gantry: the webhook as GitLab calls it, and the REST API.
type gantryAPI struct {
	url      string
	apiToken string
	http     *http.Client
}

func newGantryAPI(url, apiToken string) *gantryAPI {
	// Enough idle connections that posting many hooks and polling many pipelines reuse them.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	return &gantryAPI{url: url, apiToken: apiToken, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// hookProject is a project of the GitLab double as a push hook names it.
type hookProject struct {
	id     int64
	path   string
	secret string
}

// delivery is one answered webhook: when it was sent, when its answer had been read, and the
// pipeline it started.
type delivery struct {
	pipeline       int64
	sent, answered time.Time
}

// push posts a push hook the way GitLab does (docs/gitlab.md §2.1; the e2e harness's pushPayload)
// and expects 202 with a pipeline id.
func (a *gantryAPI) push(ctx context.Context, p hookProject, ref, before, after, message string) (delivery, error) {
	payload := map[string]any{
		"object_kind": "push", "event_name": "push", "before": before, "after": after,
		"ref": "refs/heads/" + ref, "checkout_sha": after, "user_username": "dev",
		"project_id": p.id, "total_commits_count": 1, "push_options": map[string]any{},
		"commits": []any{map[string]any{"id": after, "message": message, "title": message, "timestamp": time.Now().Format(time.RFC3339)}},
		"project": map[string]any{"id": p.id, "path_with_namespace": p.path,
			"web_url": "https://gitlab.example.com/" + p.path, "default_branch": "master"},
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return delivery{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url+"/webhooks/gitlab", bytes.NewReader(body))
	if err != nil {
		return delivery{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", "Push Hook")
	req.Header.Set("X-Gitlab-Token", p.secret)
	req.Header.Set("Idempotency-Key", randomHex(8))
	req.Header.Set("User-Agent", "GitLab/18.6.0")
	d := delivery{sent: time.Now()}
	resp, err := a.http.Do(req)
	if err != nil {
		return delivery{}, fmt.Errorf("post push hook: %w", err)
	}
	defer resp.Body.Close()
	var ans struct {
		PipelineID int64 `json:"pipeline_id"`
	}
	b, err := io.ReadAll(resp.Body)
	d.answered = time.Now()
	if err != nil {
		return delivery{}, fmt.Errorf("read push hook answer: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &ans) != nil || ans.PipelineID == 0 {
		return delivery{}, fmt.Errorf("push hook answered %d %s, want 202 with a pipeline_id", resp.StatusCode, b)
	}
	d.pipeline = ans.PipelineID
	return d, nil
}

// pipelineView is the part of GET /api/v1/pipelines/{id} the benchmarks read.
type pipelineView struct {
	ID    int64     `json:"id"`
	State string    `json:"state"`
	Jobs  []jobView `json:"jobs"`
}

type jobView struct {
	Name        string    `json:"name"`
	State       string    `json:"state"`
	Description string    `json:"description"`
	StartedAt   time.Time `json:"started_at"`
	FinishedAt  time.Time `json:"finished_at"`
}

// terminal reports whether the pipeline is over.
func (p pipelineView) terminal() bool {
	switch p.State {
	case "success", "failed", "canceled", "skipped":
		return true
	}
	return false
}

// finished is when the pipeline's last job ended, as the worker recorded it: the end of the
// pipeline to the millisecond, whatever the polling interval.
func (p pipelineView) finished() time.Time {
	var last time.Time
	for _, j := range p.Jobs {
		if j.FinishedAt.After(last) {
			last = j.FinishedAt
		}
	}
	return last
}

func (p pipelineView) job(name string) jobView {
	for _, j := range p.Jobs {
		if j.Name == name {
			return j
		}
	}
	return jobView{}
}

func (j jobView) duration() time.Duration {
	if j.StartedAt.IsZero() || j.FinishedAt.IsZero() {
		return 0
	}
	return j.FinishedAt.Sub(j.StartedAt)
}

// summary is one line per job, for a pipeline that did not succeed.
func (p pipelineView) summary() string {
	s := fmt.Sprintf("pipeline %d %s:", p.ID, p.State)
	for _, j := range p.Jobs {
		s += fmt.Sprintf(" [%s %s %q]", j.Name, j.State, j.Description)
	}
	return s
}

func (a *gantryAPI) pipeline(ctx context.Context, id int64) (pipelineView, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/v1/pipelines/%d", a.url, id), nil)
	if err != nil {
		return pipelineView{}, err
	}
	req.Header.Set("Authorization", "Bearer "+a.apiToken)
	resp, err := a.http.Do(req)
	if err != nil {
		return pipelineView{}, fmt.Errorf("get pipeline %d: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return pipelineView{}, fmt.Errorf("get pipeline %d: %d %s", id, resp.StatusCode, b)
	}
	var p pipelineView
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return pipelineView{}, fmt.Errorf("get pipeline %d: %w", id, err)
	}
	return p, nil
}

// wait polls a pipeline until it is over. The figures come from the jobs' recorded times, so
// poll only decides how soon the caller goes on.
func (a *gantryAPI) wait(ctx context.Context, id int64, poll, limit time.Duration) (pipelineView, error) {
	deadline := time.Now().Add(limit)
	for {
		p, err := a.pipeline(ctx, id)
		if err != nil {
			return p, err
		}
		if p.terminal() {
			return p, nil
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("still %s after %s: %s", p.State, limit, p.summary())
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(poll):
		}
	}
}
