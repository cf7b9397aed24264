package gitlab

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gantry-ci/gantry/orchestrator"
	gl "gitlab.com/gitlab-org/api/client-go"
	"go.uber.org/zap"
)

var (
	_ orchestrator.Statuses = (*Client)(nil)
	_ orchestrator.Statuses = LogStatuses{}
)

// maxDescription is GitLab's limit on a status description, in characters (docs/gitlab.md §3.1).
// The engine already writes descriptions that fit; this cut keeps a longer one from being refused.
const maxDescription = orchestrator.MaxDescription

// alreadyThere maps a state to the start of GitLab's refusal of a post of that state to a job
// already in it (docs/gitlab.md §3.1). Such a post is a replay — the first one's answer was lost —
// so the refusal means the job is where it should be.
var alreadyThere = map[orchestrator.State]string{
	orchestrator.StatePending: "Cannot transition status via :enqueue from :pending ",
	orchestrator.StateRunning: "Cannot transition status via :run from :running ",
}

// Post sets a commit status and returns the id of the GitLab pipeline holding it. The ref is
// always sent, as GitLab otherwise picks an arbitrary branch of the commit; the pipeline id, when
// known, pins the status to the pipeline of the earlier ones. 429, 409, 5xx and lost answers are
// retried, so a post GitLab carried out may be sent again: a repeated pending or running is
// refused by GitLab and taken as done here; a repeated final state makes GitLab add a job in the
// same state and mark the first one retried, so the commit's status stays what it was.
func (c *Client) Post(ctx context.Context, u orchestrator.StatusUpdate) (int64, error) {
	what := fmt.Sprintf("post status %s=%s to project %d commit %s", u.Name, u.State, u.ProjectID, u.SHA)
	if u.PipelineID != 0 {
		what += fmt.Sprintf(" in pipeline %d", u.PipelineID)
	}
	if u.Ref == "" {
		return 0, fmt.Errorf("%s: no ref", what)
	}
	opt := &gl.SetCommitStatusOptions{
		State:       gl.BuildStateValue(u.State),
		Ref:         gl.Ptr(u.Ref),
		Name:        nonEmpty(u.Name),
		TargetURL:   nonEmpty(u.TargetURL),
		Description: nonEmpty(truncate(u.Description, maxDescription)),
		// A float in GitLab (docs/gitlab.md §3.1, §3.4); absent rather than 0 when unknown, so a
		// job without coverage does not lower the pipeline's.
		Coverage: u.Coverage,
	}
	if u.PipelineID != 0 {
		opt.PipelineID = gl.Ptr(u.PipelineID)
	}
	fields := statusFields(u)
	var st *gl.CommitStatus
	err := c.retry(ctx, fields, func(ctx context.Context) (*gl.Response, error) {
		ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
		defer cancel()
		var resp *gl.Response
		var err error
		st, resp, err = c.api.Commits.SetCommitStatus(u.ProjectID, u.SHA, opt, gl.WithContext(ctx))
		return resp, err
	})
	switch {
	case err == nil:
		return st.PipelineID, nil
	case alreadyInState(err, u.State):
		c.logger.Info("commit status already in state", fields...)
		return c.knownPipeline(ctx, u), nil
	case errors.Is(err, gl.ErrNotFound) && u.PipelineID != 0:
		// client-go drops the 404's body: the project, the commit or the pinned pipeline is gone.
		// A pipeline goes when someone deletes it or GitLab archives it (docs/gitlab.md §3.5):
		// the status then goes to the commit's newest pipeline, as an unpinned post would,
		// rather than nowhere. A missing project or commit fails the second post too.
		c.logger.Warn("pinned pipeline not found: posting to the commit's newest", append(fields, zap.Int64("pipeline_id", u.PipelineID))...)
		pinned := u.PipelineID
		u.PipelineID = 0
		id, err := c.Post(ctx, u)
		if err != nil {
			return 0, fmt.Errorf("pipeline %d not found, then: %w", pinned, err)
		}
		return id, nil
	case errors.Is(err, gl.ErrNotFound):
		return 0, fmt.Errorf("%s: project, commit or pipeline missing: %w: %w", what, orchestrator.ErrNotFound, orchestrator.ErrRejected)
	case refusedForGood(err):
		return 0, fmt.Errorf("%s: %w: %w", what, err, orchestrator.ErrRejected)
	}
	return 0, fmt.Errorf("%s: %w", what, err)
}

// refusedForGood reports a 4xx answer that sending the same request again cannot change; 408,
// 409 (the commit status lock) and 429 are passing.
func refusedForGood(err error) bool {
	var er *gl.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil {
		return false
	}
	code := er.Response.StatusCode
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusConflict && code != http.StatusTooManyRequests
}

// knownPipeline is the pipeline of a status GitLab already holds: the one the caller knows, else
// the one GitLab reports for the newest status of that name and ref in the state posted. Not
// finding it is not an error — the status is posted — so it is logged and 0 returned.
func (c *Client) knownPipeline(ctx context.Context, u orchestrator.StatusUpdate) int64 {
	if u.PipelineID != 0 {
		return u.PipelineID
	}
	name := cmp.Or(u.Name, "default")
	ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
	defer cancel()
	sts, _, err := c.api.Commits.GetCommitStatuses(u.ProjectID, u.SHA, &gl.GetCommitStatusesOptions{
		ListOptions: gl.ListOptions{PerPage: 100}, Ref: gl.Ptr(u.Ref), Name: gl.Ptr(name),
	}, gl.WithContext(ctx))
	var newest *gl.CommitStatus
	for _, st := range sts {
		if st.Name == name && st.Ref == u.Ref && st.Status == string(u.State) && (newest == nil || st.ID > newest.ID) {
			newest = st
		}
	}
	if newest == nil {
		c.logger.Warn("pipeline of commit status not found", append(statusFields(u), zap.Error(err))...)
		return 0
	}
	return newest.PipelineID
}

// alreadyInState reports whether err is GitLab refusing a post because the job is in state.
func alreadyInState(err error, state orchestrator.State) bool {
	prefix, ok := alreadyThere[state]
	return ok && strings.HasPrefix(refusal(err), prefix)
}

// refusal is the message of a 400 answer, "" for any other error.
func refusal(err error) string {
	var er *gl.ErrorResponse
	if !errors.As(err, &er) || er.Response.StatusCode != http.StatusBadRequest {
		return ""
	}
	var body struct {
		Message any `json:"message"`
	}
	if json.Unmarshal(er.Body, &body) != nil {
		return ""
	}
	msg, _ := body.Message.(string) // validation errors carry an object instead
	return msg
}

// LogStatuses stands in for GitLab when gantry runs without a GitLab token: it logs each status
// it would post, one line each, and posts nothing. A nil Logger logs nothing.
type LogStatuses struct {
	Logger *zap.Logger
}

// NewLogStatuses returns a LogStatuses logging to logger.
func NewLogStatuses(logger *zap.Logger) LogStatuses {
	return LogStatuses{Logger: logger}
}

// Post logs u and answers orchestrator.ErrNoGitLab: the status is done with, not posted.
func (l LogStatuses) Post(_ context.Context, u orchestrator.StatusUpdate) (int64, error) {
	if l.Logger != nil {
		l.Logger.Info("commit status (not posted: no GitLab token)",
			append(statusFields(u), zap.String("description", u.Description))...)
	}
	return 0, orchestrator.ErrNoGitLab
}

func statusFields(u orchestrator.StatusUpdate) []zap.Field {
	return []zap.Field{
		zap.Int64("project", u.ProjectID),
		zap.String("sha", u.SHA),
		zap.String("ref", u.Ref),
		zap.String("name", u.Name),
		zap.String("state", string(u.State)),
	}
}

// truncate cuts s to n characters, counting runes as GitLab counts characters.
func truncate(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
