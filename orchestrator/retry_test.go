package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRetryReusesWhatPassed: a flaky test fails, the pipeline is retried: only that test and
// the release after it run again, from the same image; the build is neither run nor posted again.
func TestRetryReusesWhatPassed(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	builds, unitRuns := 0, 0
	b.exec.BuildFunc = func(BuildRequest) (BuildResult, error) { builds++; return BuildResult{ImageID: "sha256:img"}, nil }
	b.exec.TestFunc = func(r TestRequest, log io.Writer) (TestResult, error) {
		if r.ImageID != "sha256:img" {
			t.Errorf("test ran from %s, want the built image", r.ImageID)
		}
		if r.Test.Name == "unit" {
			unitRuns++
			if unitRuns == 1 {
				return TestResult{ExitCode: 1}, nil
			}
		}
		return TestResult{}, nil
	}
	p := b.push(t, "master")
	b.drain(t, 0)
	if _, err := b.engine.RetryJob(context.Background(), p.ID, "build"); err != nil {
		t.Fatalf("RetryJob(build) of a finished pipeline: %v", err)
	}
	b.drain(t, 0)
	// Now a plain retry of the pipeline after a second, different failure.
	unitRuns = 0
	if _, err := b.engine.RetryJob(context.Background(), p.ID, "test/unit"); err != nil {
		t.Fatal(err)
	}
	b.drain(t, 0)
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	unit, _ := got.Job("test/unit")
	if unit.State != StateFailed || unit.Attempt != 3 {
		t.Fatalf("test/unit = %s attempt %d, want failed attempt 3", unit.State, unit.Attempt)
	}
	if _, err := b.engine.Retry(context.Background(), p.ID); err != nil {
		t.Fatal(err)
	}
	b.drain(t, 0)
	got, _ = b.store.Pipeline(context.Background(), p.ID)
	if got.State() != StateSuccess {
		t.Errorf("pipeline after retry = %s, want success", got.State())
	}
	if builds != 2 {
		t.Errorf("builds = %d, want 2 (the first and the explicit build retry only)", builds)
	}
	if lint, _ := got.Job("test/lint"); lint.Attempt != 2 {
		t.Errorf("test/lint attempt = %d, want 2 (re-run only with the build)", lint.Attempt)
	}
	// attempt 1 failed, 2 (with the build retry) passed, 3 (retried alone) failed, 4 passed.
	want := []string{"pending", "running", "failed", "pending", "running", "success", "pending", "running", "failed", "pending", "running", "success"}
	if d := cmp.Diff(want, b.statuses.posts["gantry/test/unit"]); d != "" {
		t.Errorf("test/unit posts (-want +got):\n%s", d)
	}
	if _, err := b.engine.Retry(context.Background(), p.ID); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("Retry of a successful pipeline = %v, want ErrInvalidTransition", err)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	p := b.push(t, "master")
	// Announce only: the build is queued, nothing ran.
	task, _ := b.queue.pop()
	if err := b.engine.Handle(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	got, err := b.engine.Cancel(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	b.drain(t, 0)
	if got.State() != StateCanceled {
		t.Errorf("pipeline = %s, want canceled", got.State())
	}
	for name, posts := range b.statuses.posts {
		if posts[len(posts)-1] != "canceled" {
			t.Errorf("%s ended %v in GitLab, want canceled", name, posts)
		}
	}
	// The refusal is a typed value with words for the person who asked; "invalid transition"
	// (the state machine's) never reaches them.
	_, err = b.engine.Cancel(context.Background(), p.ID)
	var refusal *Refusal
	if !errors.As(err, &refusal) || !errors.Is(err, ErrRefused) || !errors.Is(err, ErrInvalidTransition) ||
		err.Error() != fmt.Sprintf("pipeline %d is already canceled", p.ID) {
		t.Errorf("second Cancel = %v, want a Refusal: pipeline %d is already canceled", err, p.ID)
	}
	if _, err := b.engine.Retry(context.Background(), p.ID); err != nil {
		t.Errorf("Retry of a canceled pipeline: %v", err)
	}
	b.drain(t, 0)
	if got, _ := b.store.Pipeline(context.Background(), p.ID); got.State() != StateSuccess {
		t.Errorf("canceled then retried pipeline = %s, want success", got.State())
	}
}

// TestSupersede: a newer push to the branch cancels the older pipeline's unfinished build and
// test jobs, saying by what.
func TestSupersede(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	older := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "dev", SHA: "1111111111"})
	task, _ := b.queue.pop() // announce the older one only
	b.engine.Handle(context.Background(), task)
	b.queue.tasks = nil
	b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "dev", SHA: "2222222222"})
	b.drain(t, 0)
	got, _ := b.store.Pipeline(context.Background(), older.ID)
	for _, j := range got.Jobs {
		if j.State != StateCanceled || !strings.Contains(j.Description, "superseded by 22222222") {
			t.Errorf("older %s = %s %q, want canceled, superseded by 22222222", j.Name, j.State, j.Description)
		}
	}
}

func TestTrigger(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	a, err := b.engine.Trigger(context.Background(), "g/app", "master", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if tr := a.Pipeline.Trigger; tr.SHA != "head-of-master" || tr.Kind != TriggerAPI || tr.ProjectID != 7 {
		t.Errorf("Trigger = %+v, want the resolved head of master", tr)
	}
	if _, ok := a.Pipeline.Job(JobRelease); !ok {
		t.Error("an API pipeline for master has no release job")
	}
	if _, err := b.engine.Trigger(context.Background(), "g/none", "master", "", false); !errors.Is(err, ErrUnknownProject) {
		t.Errorf("Trigger(unknown project) = %v, want ErrUnknownProject", err)
	}
}

func TestSchedule(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	first, err := b.engine.Schedule(context.Background(), "g/app", "master")
	if err != nil {
		t.Fatal(err)
	}
	if tr := first.Pipeline.Trigger; tr.Kind != TriggerSchedule || tr.SHA != "head-of-master" {
		t.Errorf("Schedule = %+v, want a schedule pipeline on the head of master", tr)
	}
	if _, ok := first.Pipeline.Job(JobRelease); !ok {
		t.Error("a scheduled pipeline of master has no release job")
	}
	// A second process firing the same schedule gets the same pipeline.
	again, _ := b.engine.Schedule(context.Background(), "g/app", "master")
	if !again.Duplicate || again.Pipeline.ID != first.Pipeline.ID {
		t.Errorf("second Schedule = %+v, want the first pipeline", again)
	}
}

// TestBlockedJobsAreMarked: jobs skipped behind a failed build carry Blocked, which is what a
// retry of the pipeline picks them by (not their description's words), and the retry clears it.
func TestBlockedJobsAreMarked(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	builds := 0
	b.exec.BuildFunc = func(BuildRequest) (BuildResult, error) {
		builds++
		if builds == 1 {
			return BuildResult{}, ErrProjectFault
		}
		return BuildResult{ImageID: "sha256:img"}, nil
	}
	p := b.push(t, "master")
	b.drain(t, 0)
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	for _, j := range got.Jobs[1:] {
		if j.State != StateSkipped || !j.Blocked {
			t.Errorf("job %s after a failed build = %s blocked %v, want skipped and blocked", j.Name, j.State, j.Blocked)
		}
	}
	if _, err := b.engine.Retry(context.Background(), p.ID); err != nil {
		t.Fatal(err)
	}
	b.drain(t, 0)
	got, _ = b.store.Pipeline(context.Background(), p.ID)
	for _, j := range got.Jobs {
		if j.State != StateSuccess || j.Blocked {
			t.Errorf("job %s after the retry = %s blocked %v, want success, not blocked", j.Name, j.State, j.Blocked)
		}
	}
}

// TestRetryLeavesWhatWasNotBlocked: a retry of the pipeline re-runs what failed and what was
// skipped behind it, nothing else. A [skip ci] pipeline has nothing to retry, and a release the
// guard skipped as outdated (at the start task or right before the push) stays skipped: running
// it again would push an older commit over a newer release.
func TestRetryLeavesWhatWasNotBlocked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		sha  string
		// mark is the branch's last release before the push; markInTests, one made while the
		// tests ran.
		mark, markInTests string
		unitFails         bool
		// legacy clears Blocked from the stored jobs after the run, as in records made before
		// Blocked existed, where only the description said a job was skipped behind a failure.
		legacy bool
		// retried are the jobs the retry gives a second attempt; none means it is refused.
		retried []string
	}{
		{name: "[skip ci] pipeline", sha: "5k1p000000"},
		{name: "release outdated at the start", sha: "0123456789", mark: "9999999999"},
		{name: "release outdated right before the push", sha: "0123456789", markInTests: "9999999999"},
		{name: "release outdated at the start, a test failed", sha: "0123456789", mark: "9999999999", unitFails: true, retried: []string{"test/unit"}},
		{name: "release behind a failed test, recorded before Blocked", sha: "0123456789", unitFails: true, legacy: true, retried: []string{"test/unit", JobRelease}},
		{name: "release behind a failed test, recorded with Blocked", sha: "0123456789", unitFails: true, retried: []string{"test/unit", JobRelease}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupEngine(t)
			ctx := context.Background()
			if tt.mark != "" {
				b.store.MarkReleased(ctx, "g/app", "master", tt.mark)
			}
			unitRuns := 0
			b.exec.TestFunc = func(r TestRequest, _ io.Writer) (TestResult, error) {
				if tt.markInTests != "" {
					b.store.MarkReleased(ctx, "g/app", "master", tt.markInTests)
				}
				if r.Test.Name == "unit" {
					unitRuns++
					if tt.unitFails && unitRuns == 1 {
						return TestResult{ExitCode: 1}, nil
					}
				}
				return TestResult{}, nil
			}
			b.exec.ReleaseFunc = func(ReleaseRequest) (ReleaseResult, error) {
				if !slices.Contains(tt.retried, JobRelease) {
					t.Error("Release called for a release the guard skipped")
				}
				return ReleaseResult{}, nil
			}
			p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "master", SHA: tt.sha, CheckSkip: true})
			b.drain(t, 0)
			if tt.legacy {
				b.store.mu.Lock()
				for i := range b.store.pipelines[p.ID].Jobs {
					b.store.pipelines[p.ID].Jobs[i].Blocked = false
				}
				b.store.mu.Unlock()
			}
			before, _ := b.store.Pipeline(ctx, p.ID)
			retried, err := b.engine.Retry(ctx, p.ID)
			if len(tt.retried) == 0 && !errors.Is(err, ErrInvalidTransition) {
				t.Errorf("Retry = %v, want ErrInvalidTransition: nothing failed", err)
			}
			if len(tt.retried) > 0 {
				if err != nil {
					t.Fatalf("Retry: %v", err)
				}
				if j, _ := retried.Job(tt.retried[0]); j.State != StatePending || j.Attempt != 2 {
					t.Errorf("Retry returned %s = %s attempt %d, want pending attempt 2", j.Name, j.State, j.Attempt)
				}
			}
			b.drain(t, 0)
			after, _ := b.store.Pipeline(ctx, p.ID)
			for i, j := range after.Jobs {
				was := before.Jobs[i]
				wantAttempt, wantState := 1, was.State
				if slices.Contains(tt.retried, j.Name) {
					wantAttempt, wantState = 2, StateSuccess
				}
				if j.Attempt != wantAttempt || j.State != wantState || (wantAttempt == 1 && j.Description != was.Description) {
					t.Errorf("%s after the retry = %s attempt %d %q, want %s attempt %d (was %s %q)",
						j.Name, j.State, j.Attempt, j.Description, wantState, wantAttempt, was.State, was.Description)
				}
			}
		})
	}
}

// TestRetryJobOfATestKeepsTheRelease: retrying one test of a pipeline that released re-runs
// that test only: the image did not change, and pushing the same release again is not asked for.
// A retry of the build re-runs everything after it.
func TestRetryJobOfATestKeepsTheRelease(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		job     string
		retried []string
	}{
		{"test/unit", []string{"test/unit"}},
		{JobBuild, []string{JobBuild, "test/unit", "test/lint", JobRelease}},
	} {
		b := setupEngine(t)
		ctx := context.Background()
		p := b.push(t, "master")
		b.drain(t, 0)
		if _, err := b.engine.RetryJob(ctx, p.ID, tt.job); err != nil {
			t.Fatalf("RetryJob(%s): %v", tt.job, err)
		}
		b.drain(t, 0)
		got, _ := b.store.Pipeline(ctx, p.ID)
		for _, j := range got.Jobs {
			want := 1
			if slices.Contains(tt.retried, j.Name) {
				want = 2
			}
			if j.State != StateSuccess || j.Attempt != want {
				t.Errorf("after RetryJob(%s): %s = %s attempt %d, want success attempt %d", tt.job, j.Name, j.State, j.Attempt, want)
			}
		}
	}
}
