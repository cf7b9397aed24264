package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// update is a status of b.sha on main named gantry/build.
func (b *testBundle) update(state orchestrator.State, pipelineID int64) orchestrator.StatusUpdate {
	return orchestrator.StatusUpdate{
		ProjectID: b.proj.ID, SHA: b.sha, Ref: "main", Name: "gantry/build", State: state,
		Description: "building", TargetURL: "https://gantry.example.com/pipelines/7", PipelineID: pipelineID,
	}
}

// history is what the double accepted for b.sha.
func (b *testBundle) history() map[string][]string {
	return b.srv.StatusHistory(b.proj.ID, b.sha)
}

func TestPostLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	pipeline, err := b.c.Post(ctx, b.update(orchestrator.StatePending, 0))
	if err != nil || pipeline == 0 {
		t.Fatalf("Post(pending) = %d, %v; want a pipeline id", pipeline, err)
	}
	for _, state := range []orchestrator.State{orchestrator.StateRunning, orchestrator.StateSuccess} {
		if got, err := b.c.Post(ctx, b.update(state, pipeline)); err != nil || got != pipeline {
			t.Fatalf("Post(%s) = %d, %v; want %d", state, got, err, pipeline)
		}
	}
	want := map[string][]string{"gantry/build": {"pending", "running", "success"}}
	if diff := cmp.Diff(want, b.history()); diff != "" {
		t.Errorf("accepted statuses (-want +got):\n%s", diff)
	}
	calls := b.srv.Calls()
	for i, c := range calls {
		wantPipeline := map[bool]string{true: "", false: "501"}[i == 0]
		if c.Body["ref"] != "main" || c.Body["pipeline_id"] != wantPipeline || c.Body["target_url"] == "" || c.Body["description"] != "building" {
			t.Errorf("call %d body = %v, want ref main and pipeline_id %q", i, c.Body, wantPipeline)
		}
	}
	if r := b.srv.Rejected(); len(calls) != 3 || len(r) != 0 {
		t.Errorf("%d calls, rejected %v; want 3 calls, none rejected", len(calls), r)
	}
}

// TestPostReplay covers a post repeated because the caller, or a retry after a lost answer,
// sends a state the job is already in: GitLab refuses it and Post takes it as done.
func TestPostReplay(t *testing.T) {
	t.Parallel()
	t.Run("running twice", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		pipeline, err := b.c.Post(context.Background(), b.update(orchestrator.StateRunning, 0))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := b.c.Post(context.Background(), b.update(orchestrator.StateRunning, pipeline)); err != nil || got != pipeline {
			t.Fatalf("second Post(running) = %d, %v; want %d, nil", got, err, pipeline)
		}
		if diff := cmp.Diff(map[string][]string{"gantry/build": {"running"}}, b.history()); diff != "" {
			t.Errorf("accepted statuses (-want +got):\n%s", diff)
		}
	})
	t.Run("pending answer lost", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// GitLab creates the job, the proxy answers 502, the retry is refused: the pipeline id
		// comes from GitLab's list of statuses.
		b.srv.FailNextAfter(1, 502)
		got, err := b.c.Post(context.Background(), b.update(orchestrator.StatePending, 0))
		if err != nil || got != 501 {
			t.Fatalf("Post(pending) with its answer lost = %d, %v; want 501, nil", got, err)
		}
		if diff := cmp.Diff(map[string][]string{"gantry/build": {"pending"}}, b.history()); diff != "" {
			t.Errorf("accepted statuses (-want +got):\n%s", diff)
		}
		if w := b.slept(); len(w) != 1 {
			t.Errorf("waits = %v, want one backoff", w)
		}
	})
}

func TestPostRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		code, n   int
		wantWaits []time.Duration
	}{
		{"502 twice", 502, 2, []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}},
		{"500 once", 500, 1, []time.Duration{200 * time.Millisecond}},
		{"409 lock", 409, 1, []time.Duration{200 * time.Millisecond}},
		{"429 honours Retry-After", 429, 1, []time.Duration{time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.srv.FailNext(tt.n, tt.code)
			if got, err := b.c.Post(context.Background(), b.update(orchestrator.StatePending, 0)); err != nil || got == 0 {
				t.Fatalf("Post = %d, %v", got, err)
			}
			if diff := cmp.Diff(tt.wantWaits, b.slept()); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string][]string{"gantry/build": {"pending"}}, b.history()); diff != "" {
				t.Errorf("accepted statuses (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPostGivesUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.FailNext(10, 503)
	_, err := b.c.Post(context.Background(), b.update(orchestrator.StatePending, 0))
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Post against a GitLab down = %v, want the 503", err)
	}
	if n := len(b.srv.Calls()); n != 5 {
		t.Errorf("%d calls, want 5 attempts", n)
	}
	backoff := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond}
	if diff := cmp.Diff(backoff, b.slept()); diff != "" {
		t.Errorf("waits between the 5 attempts (-want +got):\n%s", diff)
	}

	// The caller gives up while Post waits to retry: it stops at once.
	ctx, cancel := context.WithCancel(context.Background())
	b.c.sleep = func(ctx context.Context, d time.Duration) error {
		cancel()
		return sleep(ctx, d)
	}
	before := len(b.srv.Calls())
	_, err = b.c.Post(ctx, b.update(orchestrator.StatePending, 0))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "503") {
		t.Errorf("Post canceled while waiting = %v, want the 503 and context.Canceled", err)
	}
	if n := len(b.srv.Calls()) - before; n != 1 {
		t.Errorf("%d calls after the cancel, want 1", n)
	}
}

func TestPostErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	pipeline, err := b.c.Post(ctx, b.update(orchestrator.StateRunning, 0))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := New(b.srv.URL, "glpat-wrong", nil)
	if err != nil {
		t.Fatal(err)
	}
	unknownSHA := b.update(orchestrator.StatePending, 0)
	unknownSHA.SHA = strings.Repeat("f", 40)
	// A pipeline that is not the commit's is posted again unpinned (docs/gitlab.md §3.5), which
	// for a commit GitLab does not have fails too.
	goneOfUnknown := b.update(orchestrator.StateSuccess, 4242)
	goneOfUnknown.SHA = strings.Repeat("e", 40)
	noRef := b.update(orchestrator.StatePending, 0)
	noRef.Ref = ""
	noRefPinned := noRef
	noRefPinned.PipelineID = 77
	// rejected: a refusal that sending the same post again cannot change (orchestrator.ErrRejected).
	tests := []struct {
		name               string
		c                  *Client
		u                  orchestrator.StatusUpdate
		notFound, rejected bool
		contains           string
		posts              int // calls made
	}{
		{"running to pending", b.c, b.update(orchestrator.StatePending, pipeline), false, true, "Cannot transition status via :enqueue from :running", 1},
		{"running to skipped", b.c, b.update(orchestrator.StateSkipped, pipeline), false, true, ":skip from :running", 1},
		{"not a GitLab state", b.c, b.update("failure", pipeline), false, true, "state does not have a valid value", 1},
		{"unknown commit", b.c, unknownSHA, true, true, "project 1001 commit ffff", 1},
		{"unknown pipeline of an unknown commit", b.c, goneOfUnknown, true, true, "pipeline 4242", 2},
		{"bad token", bad, b.update(orchestrator.StateSuccess, pipeline), false, true, "401 Unauthorized", 1},
		// The error names the pipeline a post was pinned to, and only then.
		{"no ref", b.c, noRef, false, false, "commit " + noRef.SHA + ": no ref", 0},
		{"no ref, pinned", b.c, noRefPinned, false, false, "commit " + noRef.SHA + " in pipeline 77: no ref", 0},
	}
	for _, tt := range tests {
		before := len(b.srv.Calls())
		_, err := tt.c.Post(ctx, tt.u)
		switch {
		case err == nil:
			t.Errorf("%s: Post error = nil", tt.name)
			continue
		case errors.Is(err, orchestrator.ErrNotFound) != tt.notFound:
			t.Errorf("%s: Post error %v, errors.Is(ErrNotFound) = %t, want %t", tt.name, err, !tt.notFound, tt.notFound)
		case errors.Is(err, orchestrator.ErrRejected) != tt.rejected:
			t.Errorf("%s: Post error %v, errors.Is(ErrRejected) = %t, want %t", tt.name, err, !tt.rejected, tt.rejected)
		case !strings.Contains(err.Error(), tt.contains):
			t.Errorf("%s: Post error = %v, want it to say %q", tt.name, err, tt.contains)
		case strings.Contains(err.Error(), b.srv.Token) || strings.Contains(err.Error(), "glpat-wrong"):
			t.Errorf("%s: Post error %q shows the token", tt.name, err)
		}
		if n := len(b.srv.Calls()) - before; n != tt.posts {
			t.Errorf("%s: %d calls, want %d", tt.name, n, tt.posts)
		}
	}
	if diff := cmp.Diff(map[string][]string{"gantry/build": {"running"}}, b.history()); diff != "" {
		t.Errorf("accepted statuses (-want +got):\n%s", diff)
	}
}

// TestPostPassingFailures: answers that may pass on another try are never reported as
// rejected for good, whether they were retried to the end (5xx but 501, 409 the status lock,
// 429) or answered once (408, 501), so the caller may post again later.
func TestPostPassingFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code, calls int
	}{{500, 5}, {503, 5}, {409, 5}, {429, 5}, {408, 1}, {501, 1}}
	for _, tt := range tests {
		b := setup(t)
		b.srv.FailNext(10, tt.code)
		_, err := b.c.Post(context.Background(), b.update(orchestrator.StatePending, 0))
		if err == nil || errors.Is(err, orchestrator.ErrRejected) {
			t.Errorf("Post answered %d: error %v, want one that is not ErrRejected", tt.code, err)
		}
		if n := len(b.srv.Calls()); n != tt.calls {
			t.Errorf("Post answered %d: %d calls, want %d", tt.code, n, tt.calls)
		}
	}
}

// TestPostReplayFindsNewestPipeline: a replayed pending post that GitLab refuses takes its
// pipeline from the newest status of the same name, ref and state, not from an older one nor
// from a status of another name, ref or state.
func TestPostReplayFindsNewestPipeline(t *testing.T) {
	t.Parallel()
	c := fakeGitLab(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"message":"Cannot transition status via :enqueue from :pending (Reason(s): Status cannot transition via \"enqueue\".)"}`)
			return
		}
		fmt.Fprint(w, `[
			{"id":10,"name":"gantry/build","ref":"main","status":"pending","pipeline_id":1},
			{"id":30,"name":"gantry/build","ref":"main","status":"pending","pipeline_id":3},
			{"id":20,"name":"gantry/build","ref":"main","status":"pending","pipeline_id":2},
			{"id":40,"name":"gantry/test","ref":"main","status":"pending","pipeline_id":4},
			{"id":50,"name":"gantry/build","ref":"dev","status":"pending","pipeline_id":5},
			{"id":60,"name":"gantry/build","ref":"main","status":"success","pipeline_id":6}]`)
	})
	u := orchestrator.StatusUpdate{ProjectID: 1, SHA: strings.Repeat("a", 40), Ref: "main", Name: "gantry/build", State: orchestrator.StatePending}
	if got, err := c.Post(context.Background(), u); err != nil || got != 3 {
		t.Errorf("replayed Post = %d, %v; want pipeline 3 of the newest matching status", got, err)
	}
}

func TestPostDescriptionTruncated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u := b.update(orchestrator.StateFailed, 0)
	u.Description = strings.Repeat("é", 300)
	if _, err := b.c.Post(context.Background(), u); err != nil {
		t.Fatalf("Post with a 300-character description: %v", err)
	}
	if got := b.srv.Calls()[0].Body["description"]; utf8.RuneCountInString(got) != 255 || !strings.HasPrefix(u.Description, got) {
		t.Errorf("description sent has %d characters, want the first 255", utf8.RuneCountInString(got))
	}
}

// TestPostCoverage: a test's coverage goes out as the status's coverage parameter, a number,
// and a status without one sends none (GitLab would take 0 for a value).
func TestPostCoverage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	u := b.update(orchestrator.StateFailed, 0)
	cov := 81.25
	u.Coverage = &cov
	if _, err := b.c.Post(ctx, u); err != nil {
		t.Fatalf("Post with coverage: %v", err)
	}
	u.Name, u.Coverage = "gantry/test/lint", nil
	if _, err := b.c.Post(ctx, u); err != nil {
		t.Fatalf("Post without coverage: %v", err)
	}
	calls := b.srv.Calls()
	if got := calls[0].Body["coverage"]; got != "81.25" {
		t.Errorf("coverage sent = %q, want 81.25", got)
	}
	if got, ok := calls[1].Body["coverage"]; ok {
		t.Errorf("coverage sent without one = %q, want none", got)
	}
}

// TestPostPinned checks the pitfall of docs/gitlab.md §3.1: a pipeline GitLab creates for the commit
// between two posts does not capture the later one.
func TestPostPinned(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	pipeline, err := b.c.Post(ctx, b.update(orchestrator.StateRunning, 0))
	if err != nil {
		t.Fatal(err)
	}
	b.srv.NewPipeline(b.proj.ID, b.sha, "main")
	if got, err := b.c.Post(ctx, b.update(orchestrator.StateSuccess, pipeline)); err != nil || got != pipeline {
		t.Errorf("Post(success) = %d, %v; want it in pipeline %d", got, err, pipeline)
	}
}

// TestPostPinnedPipelineGone: a post pinned to a pipeline GitLab no longer has for the commit
// (deleted or archived; docs/gitlab.md §3.5) is posted again unpinned, once, and answers the
// pipeline it landed in, so the status is not dropped and later posts follow it there.
func TestPostPinnedPipelineGone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	other := b.srv.NewPipeline(b.proj.ID, "0000000000000000000000000000000000000000", "main")
	got, err := b.c.Post(ctx, b.update(orchestrator.StateRunning, other))
	if err != nil || got == 0 || got == other {
		t.Fatalf("Post pinned to another commit's pipeline %d = %d, %v; want it posted in a pipeline of the commit", other, got, err)
	}
	if got2, err := b.c.Post(ctx, b.update(orchestrator.StateSuccess, got)); err != nil || got2 != got {
		t.Errorf("next Post = %d, %v; want it in pipeline %d", got2, err, got)
	}
	var pinned, unpinned int
	for _, c := range b.srv.Calls() {
		if c.Method != "POST" {
			continue
		}
		if c.Body["pipeline_id"] == strconv.FormatInt(other, 10) {
			pinned++
		} else if _, ok := c.Body["pipeline_id"]; !ok {
			unpinned++
		}
	}
	if pinned != 1 || unpinned != 1 {
		t.Errorf("posts pinned to the gone pipeline %d, unpinned %d; want one each", pinned, unpinned)
	}
}

func TestLogStatuses(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	u := orchestrator.StatusUpdate{ProjectID: 7, SHA: "abc", Ref: "main", Name: "gantry/build",
		State: orchestrator.StateRunning, Description: "building"}
	if got, err := (LogStatuses{Logger: zap.New(core)}).Post(context.Background(), u); got != 0 || !errors.Is(err, orchestrator.ErrNoGitLab) {
		t.Errorf("LogStatuses.Post = %d, %v; want 0, ErrNoGitLab", got, err)
	}
	if got, err := NewLogStatuses(nil).Post(context.Background(), u); got != 0 || !errors.Is(err, orchestrator.ErrNoGitLab) {
		t.Errorf("LogStatuses{}.Post = %d, %v; want 0, ErrNoGitLab", got, err)
	}
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d log lines, want 1", len(entries))
	}
	want := map[string]any{"project": int64(7), "sha": "abc", "ref": "main", "name": "gantry/build",
		"state": "running", "description": "building"}
	if diff := cmp.Diff(want, entries[0].ContextMap()); diff != "" {
		t.Errorf("log fields (-want +got):\n%s", diff)
	}
}
