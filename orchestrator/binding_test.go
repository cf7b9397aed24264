package orchestrator

import (
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// setupBinding is setupEngine with a Source whose GitLab says g/app is project 7 and whose
// merge request answers the test sets.
func setupBinding(t *testing.T, mr func(projectID, iid int64) (MergeRequestHead, error)) (engineBundle, *scriptedSource) {
	t.Helper()
	b := setupEngine(t)
	src := &scriptedSource{
		ProjectFunc: func(path string) (int64, string, error) {
			if strings.EqualFold(path, "g/app") {
				return 7, "https://gitlab.example.com/g/app", nil
			}
			return 0, "", ErrNotFound
		},
		MergeRequestFunc: mr,
	}
	e, err := NewEngine(EngineOptions{
		Store: b.store, Queue: b.queue, Executor: b.exec, Source: src, Statuses: b.statuses,
		Projects:  slices.Collect(maps.Values(b.engine.projects)),
		PublicURL: "https://gantry.example.com", Now: b.engine.now, Logger: b.logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.engine = e
	return b, src
}

func noMergeRequest(int64, int64) (MergeRequestHead, error) { return MergeRequestHead{}, ErrNotFound }

// TestBindingRefusesAnotherProjectsID: a push that names the configured path (whose secret it
// holds) with another project's id is refused when the pipeline starts: nothing is read from
// either project, nothing is posted anywhere, and the record says why.
func TestBindingRefusesAnotherProjectsID(t *testing.T) {
	t.Parallel()
	b, src := setupBinding(t, noMergeRequest)
	p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 8, Kind: TriggerPush, Ref: "master", SHA: "b0b0b0b0b0", CheckSkip: true})
	b.drain(t, 0)
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	if got.State() != StateCanceled {
		t.Errorf("pipeline = %s, want canceled", got.State())
	}
	for _, j := range got.Jobs {
		if !strings.Contains(j.Description, "refused") || !strings.Contains(j.Description, "8") {
			t.Errorf("job %s = %s %q, want a refusal naming project id 8", j.Name, j.State, j.Description)
		}
	}
	if r := append(src.readsOf("archive"), src.readsOf("message")...); len(r) != 0 {
		t.Errorf("read %v, want nothing read", r)
	}
	if len(b.statuses.targets) != 0 {
		t.Errorf("statuses posted on %v, want none", b.statuses.targets)
	}
	if r, _ := b.store.Released(context.Background(), "g/app", "master"); r != "" {
		t.Errorf("Released = %q, want nothing", r)
	}
	b.store.mu.Lock()
	defer b.store.mu.Unlock()
	if !b.store.ended[p.ID] {
		t.Error("the refused pipeline was not recorded finished")
	}
}

// TestBindingPushUsesGitLabsID: an accepted push reads its source and posts its statuses on the
// id GitLab gives the configured path.
func TestBindingPushUsesGitLabsID(t *testing.T) {
	t.Parallel()
	b, src := setupBinding(t, noMergeRequest)
	b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "master", SHA: "a1a1a1a1a1", CheckSkip: true})
	b.drain(t, 0)
	if d := cmp.Diff([]string{"message 7@a1a1a1a1a1", "archive 7@a1a1a1a1a1"}, append(src.readsOf("message"), src.readsOf("archive")...)); d != "" {
		t.Errorf("reads (-want +got):\n%s", d)
	}
	for _, target := range b.statuses.targets {
		if target != "7@a1a1a1a1a1" {
			t.Errorf("status posted on %s, want 7@a1a1a1a1a1", target)
		}
	}
	if len(b.statuses.targets) != 12 {
		t.Errorf("%d statuses posted, want 12", len(b.statuses.targets))
	}
}

// TestBindingForkMergeRequestFromGitLab: a merge request whose payload names one fork, branch
// and commit, while GitLab's merge request comes from another: gantry builds GitLab's head
// from GitLab's source project and posts there, and never touches what the payload named.
func TestBindingForkMergeRequestFromGitLab(t *testing.T) {
	t.Parallel()
	b, src := setupBinding(t, func(projectID, iid int64) (MergeRequestHead, error) {
		if projectID != 7 || iid != 4 {
			return MergeRequestHead{}, ErrNotFound
		}
		return MergeRequestHead{SourceProjectID: 50, SHA: "c0ffee0000", SourceBranch: "feature", TargetBranch: "master"}, nil
	})
	first := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 99, Kind: TriggerMergeRequest, Ref: "evil",
		SHA: "badbadbad0", Fork: true, MergeRequestIID: 4, ProjectURL: "https://evil.example.com/x"})
	b.drain(t, 0)
	b.approveWaiting(t)
	if d := cmp.Diff([]string{"archive 50@c0ffee0000"}, src.readsOf("archive")); d != "" {
		t.Errorf("archives read (-want +got):\n%s", d)
	}
	if len(b.statuses.targets) == 0 {
		t.Error("no statuses posted")
	}
	for _, target := range b.statuses.targets {
		if target != "50@c0ffee0000" {
			t.Errorf("status posted on %s, want 50@c0ffee0000", target)
		}
	}
	if got, _ := b.store.Pipeline(context.Background(), first.ID); !got.State().Terminal() {
		t.Errorf("the payload's pipeline is %s, want it ended", got.State())
	}
	built := b.pipelineBuilding(t, "c0ffee0000")
	if built.State() != StateSuccess || !built.Trigger.Fork || built.Trigger.ProjectID != 50 || built.Trigger.Ref != "feature" {
		t.Errorf("pipeline of GitLab's head = %s %+v, want success, fork 50, ref feature", built.State(), built.Trigger)
	}
	// The payload's commit message was another commit's: GitLab's head's is read for [skip ci];
	// and the payload's project URL is not the fork's.
	if d := cmp.Diff([]string{"message 50@c0ffee0000"}, src.readsOf("message")); d != "" {
		t.Errorf("commit messages read (-want +got):\n%s", d)
	}
	if built.Trigger.ProjectURL != "" {
		t.Errorf("fork pipeline's project URL = %q, want none rather than the payload's", built.Trigger.ProjectURL)
	}
	if _, ok := built.Job(JobRelease); ok {
		t.Error("a merge request pipeline has a release job")
	}
}

// TestBindingSameProjectPayloadOfAFork: a payload that says source == target for a merge
// request GitLab has from a fork is built as a fork: statuses and source on the fork.
func TestBindingSameProjectPayloadOfAFork(t *testing.T) {
	t.Parallel()
	b, src := setupBinding(t, func(projectID, iid int64) (MergeRequestHead, error) {
		return MergeRequestHead{SourceProjectID: 50, SHA: "5a5a5a5a5a", SourceBranch: "feature", TargetBranch: "master"}, nil
	})
	b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerMergeRequest, Ref: "feature", SHA: "5a5a5a5a5a", MergeRequestIID: 4})
	b.drain(t, 0)
	b.approveWaiting(t)
	if d := cmp.Diff([]string{"archive 50@5a5a5a5a5a"}, src.readsOf("archive")); d != "" {
		t.Errorf("archives read (-want +got):\n%s", d)
	}
	for _, target := range b.statuses.targets {
		if target != "50@5a5a5a5a5a" {
			t.Errorf("status posted on %s, want 50@5a5a5a5a5a", target)
		}
	}
	if built := b.pipelineBuilding(t, "5a5a5a5a5a"); !built.Trigger.Fork || built.State() != StateSuccess {
		t.Errorf("pipeline = %s fork %v, want success as a fork", built.State(), built.Trigger.Fork)
	}
	// The payload named the commit GitLab has: its message, carried by the payload, stands.
	if r := src.readsOf("message"); len(r) != 0 {
		t.Errorf("commit messages read %v, want none", r)
	}
}

// TestBindingUnknownMergeRequest: a merge request GitLab does not have in the configured
// project is refused, nothing read or posted.
func TestBindingUnknownMergeRequest(t *testing.T) {
	t.Parallel()
	b, src := setupBinding(t, noMergeRequest)
	p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerMergeRequest, Ref: "feature", SHA: "abcabcabc0", MergeRequestIID: 12})
	b.drain(t, 0)
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	if got.State() != StateCanceled || len(src.readsOf("archive")) != 0 || len(b.statuses.targets) != 0 {
		t.Errorf("pipeline = %s, archives %v, statuses %v: want canceled, nothing read or posted",
			got.State(), src.readsOf("archive"), b.statuses.targets)
	}
}

// TestCancelBeforeStartPostsNothing: a pipeline canceled before its start task ran was never
// shown in GitLab, and its project was never checked: canceling it posts nothing.
func TestCancelBeforeStartPostsNothing(t *testing.T) {
	t.Parallel()
	b, _ := setupBinding(t, noMergeRequest)
	p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 8, Kind: TriggerPush, Ref: "dev", SHA: "b0b0b0b0b0"})
	b.queue.tasks = nil // the start task has not run
	if _, err := b.engine.Cancel(context.Background(), p.ID); err != nil {
		t.Fatal(err)
	}
	b.drain(t, 0)
	if len(b.statuses.targets) != 0 {
		t.Errorf("statuses posted on %v, want none", b.statuses.targets)
	}
}

// approveWaiting approves every pipeline that waits for approval, as a maintainer would, and
// runs what that queues.
func (b engineBundle) approveWaiting(t *testing.T) {
	t.Helper()
	ids, err := b.store.Waiting(context.Background(), time.Unix(1<<40, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := b.engine.Approve(context.Background(), id, Review{By: "maintainer"}); err != nil {
			t.Fatal(err)
		}
	}
	b.drain(t, 0)
}

// pipelineBuilding returns the stored pipeline of a commit that has an image.
func (b engineBundle) pipelineBuilding(t *testing.T, sha string) *Pipeline {
	t.Helper()
	b.store.mu.Lock()
	defer b.store.mu.Unlock()
	for _, p := range b.store.pipelines {
		if p.Trigger.SHA == sha && p.Image != "" {
			return clone(p)
		}
	}
	t.Fatalf("no pipeline built %s", sha)
	return nil
}

// TestRetryOfARefusedMergeRequest: retrying a merge request pipeline that was refused — its
// source project never checked — is refused too, nothing read or posted on the project the
// payload named.
func TestRetryOfARefusedMergeRequest(t *testing.T) {
	t.Parallel()
	b, src := setupBinding(t, func(projectID, iid int64) (MergeRequestHead, error) {
		return MergeRequestHead{SourceProjectID: 50, SHA: "c0ffee0000", SourceBranch: "feature"}, nil
	})
	p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 99, HookProjectID: 8, Kind: TriggerMergeRequest,
		Ref: "feature", SHA: "badbadbad0", Fork: true, MergeRequestIID: 4})
	b.drain(t, 0)
	if _, err := b.engine.Retry(context.Background(), p.ID); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("Retry of a refused pipeline = %v, want ErrInvalidTransition", err)
	}
	if _, err := b.engine.RetryJob(context.Background(), p.ID, JobBuild); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("RetryJob of a refused pipeline = %v, want ErrInvalidTransition", err)
	}
	b.drain(t, 0)
	if len(src.readsOf("archive")) != 0 || len(b.statuses.targets) != 0 {
		t.Errorf("archives %v, statuses %v, want nothing read or posted", src.readsOf("archive"), b.statuses.targets)
	}
}

// TestRetryOfAMergeRequestGitLabMoved: an old merge request pipeline is retried at its own commit
// even though the merge request's head moved on since, as long as it still comes from the
// project the pipeline posts on; once GitLab says it comes from another project, it is not.
func TestRetryOfAMergeRequestGitLabMoved(t *testing.T) {
	t.Parallel()
	head, source := "c0ffee0000", int64(50)
	b, _ := setupBinding(t, func(projectID, iid int64) (MergeRequestHead, error) {
		return MergeRequestHead{SourceProjectID: source, SHA: head, SourceBranch: "feature"}, nil
	})
	b.exec.TestFunc = func(TestRequest, io.Writer) (TestResult, error) { return TestResult{ExitCode: 1}, nil }
	p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 50, HookProjectID: 7, Kind: TriggerMergeRequest,
		Ref: "feature", SHA: head, Fork: true, MergeRequestIID: 4})
	b.drain(t, 0)
	b.approveWaiting(t)
	head = "d00d000000"
	if _, err := b.engine.Retry(context.Background(), p.ID); err != nil {
		t.Errorf("Retry of a failed merge request pipeline: %v", err)
	}
	b.drain(t, 0)
	source = 51
	if _, err := b.engine.Retry(context.Background(), p.ID); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("Retry of a merge request pipeline whose merge request comes from another project now = %v, want ErrInvalidTransition", err)
	}
}

// TestRefusalFinishedAfterACrash: a worker died halfway through refusing a pipeline (one job
// canceled, the others still planned); the start task run again cancels the rest the same way
// and announces nothing.
func TestRefusalFinishedAfterACrash(t *testing.T) {
	t.Parallel()
	b, src := setupBinding(t, noMergeRequest)
	p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "master", SHA: "a1a1a1a1a1"})
	b.store.mu.Lock()
	b.store.pipelines[p.ID].Jobs[0].State, b.store.pipelines[p.ID].Jobs[0].Description = StateCanceled, "refused: a reason"
	b.store.mu.Unlock()
	b.drain(t, 0)
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	for _, j := range got.Jobs {
		if j.State != StateCanceled || j.Description != "refused: a reason" {
			t.Errorf("job %s = %s %q, want canceled with the refusal's reason", j.Name, j.State, j.Description)
		}
	}
	if len(src.readsOf("archive")) != 0 || len(b.statuses.targets) != 0 {
		t.Errorf("archives %v, statuses %v, want nothing read or posted", src.readsOf("archive"), b.statuses.targets)
	}
}

// TestAnnounceFinishedAfterACrash: a worker died halfway through announcing a pipeline (its
// first job announced, the others still planned, none canceled); the start task run again
// announces the rest and the pipeline runs, nothing canceled.
func TestAnnounceFinishedAfterACrash(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "master", SHA: "a2a2a2a2a2"})
	b.store.mu.Lock()
	b.store.pipelines[p.ID].Jobs[0].State = StatePending
	b.store.mu.Unlock()
	b.drain(t, 0)
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	if got.State() != StateSuccess {
		t.Errorf("pipeline = %s %+v, want success: a half-announced pipeline is announced, not canceled", got.State(), got.Jobs)
	}
}

// TestMergeRequestIIDAttached: a pipeline runs for its trigger's merge request, else for the
// one attached to it since.
func TestMergeRequestIIDAttached(t *testing.T) {
	t.Parallel()
	p := &Pipeline{Trigger: Trigger{MergeRequestIID: 4}, AttachedMergeRequestIID: 9}
	if got := p.MergeRequestIID(); got != 4 {
		t.Errorf("MergeRequestIID with a trigger's = %d, want 4", got)
	}
	p.Trigger.MergeRequestIID = 0
	if got := p.MergeRequestIID(); got != 9 {
		t.Errorf("MergeRequestIID attached = %d, want 9", got)
	}
}
