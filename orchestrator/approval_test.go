package orchestrator

import (
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// approvalBundle is an engine whose GitLab has g/app as project 7 and fork 50, with a clock the
// test moves, and the merge request it answers.
type approvalBundle struct {
	engineBundle
	src *scriptedSource

	mu  sync.Mutex
	now time.Time
	// mr is what GitLab answers for any merge request of project 7.
	mr MergeRequestHead
}

func (b *approvalBundle) clock() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.now
}

func (b *approvalBundle) advance(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.now = b.now.Add(d)
}

// setupApproval configures g/app with an approval mode (and expiry, untrusted limits) set by
// edit.
func setupApproval(t *testing.T, edit func(*Project)) *approvalBundle {
	t.Helper()
	base := setupEngine(t)
	b := &approvalBundle{engineBundle: base, now: time.Unix(1e9, 0),
		mr: MergeRequestHead{SourceProjectID: 50, SHA: "f0f0f0f0f0", SourceBranch: "feature", TargetBranch: "master", AuthorID: 2, Author: "stranger"}}
	b.src = &scriptedSource{
		ProjectFunc: func(path string) (int64, string, error) {
			if strings.EqualFold(path, "g/app") {
				return 7, "https://gitlab.example.com/g/app", nil
			}
			return 0, "", ErrNotFound
		},
		MergeRequestFunc: func(projectID, iid int64) (MergeRequestHead, error) {
			if projectID != 7 {
				return MergeRequestHead{}, ErrNotFound
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.mr, nil
		},
	}
	projects := slices.Collect(maps.Values(base.engine.projects))
	for i := range projects {
		if edit != nil {
			edit(&projects[i])
		}
	}
	e, err := NewEngine(EngineOptions{
		Store: b.store, Queue: b.queue, Executor: b.exec, Source: b.src, Statuses: b.statuses,
		Projects: projects, PublicURL: "https://gantry.example.com", Now: b.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.engine = e
	return b
}

// mergeRequest delivers the merge request hook GitLab sends for b.mr.
func (b *approvalBundle) mergeRequest(t *testing.T) *Pipeline {
	t.Helper()
	b.mu.Lock()
	mr := b.mr
	b.mu.Unlock()
	p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: mr.SourceProjectID, HookProjectID: 7, Kind: TriggerMergeRequest,
		Ref: mr.SourceBranch, SHA: mr.SHA, Fork: mr.SourceProjectID != 7, MergeRequestIID: 4})
	b.drain(t, 0)
	return b.stored(t, p.ID)
}

func (b *approvalBundle) stored(t *testing.T, id int64) *Pipeline {
	t.Helper()
	p, err := b.store.Pipeline(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wantWaiting checks that nothing of the pipeline's commit was fetched or run, and that every
// planned status is pending on the source project with the approval text.
func (b *approvalBundle) wantWaiting(t *testing.T, p *Pipeline) {
	t.Helper()
	if p.State() != StateWaitingForApproval || !p.Approval.Waiting() {
		t.Fatalf("pipeline = %s approval %+v, want waiting_for_approval", p.State(), p.Approval)
	}
	if r := b.src.readsOf("archive"); len(r) != 0 {
		t.Errorf("read %v before approval", r)
	}
	if p.Image != "" {
		t.Errorf("image %s built before approval", p.Image)
	}
	for _, j := range p.Jobs {
		name := StatusName("gantry", j.Name)
		if j.State != StatePending || !slices.Equal(b.statuses.posts[name], []string{"pending"}) {
			t.Errorf("job %s = %s, posted %v, want pending once", j.Name, j.State, b.statuses.posts[name])
		}
		if d := b.statuses.descs[name]; !strings.Contains(d, "waiting for approval") || !strings.Contains(d, "gantry pipelines approve") {
			t.Errorf("status %s says %q, want the wait and how to approve", name, d)
		}
	}
	for _, target := range b.statuses.targets {
		if target != "50@"+p.Trigger.SHA {
			t.Errorf("status posted on %s, want the fork 50", target)
		}
	}
}

// TestForkMergeRequestWaitsThenRunsOnApproval: the default gate holds a fork's merge request
// with nothing fetched; approval records who and when, and the pipeline runs to the end on the
// fork, without a release.
func TestForkMergeRequestWaitsThenRunsOnApproval(t *testing.T) {
	t.Parallel()
	b := setupApproval(t, nil)
	p := b.mergeRequest(t)
	b.wantWaiting(t, p)
	if p.Approval.Reason != "merge request from a fork" || p.Approval.Approvers != Approvers ||
		!p.Approval.ExpiresAt.Equal(b.clock().Add(DefaultApprovalExpiry)) {
		t.Errorf("approval = %+v, want a fork's, expiring after the default", p.Approval)
	}
	if _, ok := p.Job(JobRelease); ok {
		t.Error("a fork's pipeline has a release job")
	}

	b.advance(time.Minute)
	got, err := b.engine.Approve(context.Background(), p.ID, Review{By: "maint", Via: "API token sha256:00", SHA: "f0f0f0"})
	if err != nil {
		t.Fatal(err)
	}
	want := &Verdict{Decision: DecisionApproved, By: "maint", Via: "API token sha256:00", At: b.clock()}
	if d := cmp.Diff(want, got.Approval.Verdict); d != "" {
		t.Errorf("verdict (-want +got):\n%s", d)
	}
	b.drain(t, 0)
	p = b.stored(t, p.ID)
	if p.State() != StateSuccess {
		t.Errorf("approved pipeline = %s, want success", p.State())
	}
	if d := cmp.Diff([]string{"archive 50@f0f0f0f0f0"}, b.src.readsOf("archive")); d != "" {
		t.Errorf("reads (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"pending", "running", "success"}, b.statuses.posts["gantry/build"]); d != "" {
		t.Errorf("build statuses (-want +got):\n%s", d)
	}
	if due, _ := b.store.Waiting(context.Background(), b.clock().Add(365*24*time.Hour)); len(due) != 0 {
		t.Errorf("still listed as waiting: %v", due)
	}
	if _, err := b.engine.Approve(context.Background(), p.ID, Review{By: "again"}); !errors.Is(err, ErrInvalidTransition) || !strings.Contains(err.Error(), "already approved by maint") {
		t.Errorf("a second approval = %v, want refused naming the first", err)
	}
}

// TestApprovalPinsTheCommit: a reviewer who names the commit they looked at cannot approve
// another, and a new commit on the merge request makes a new pipeline that waits again.
func TestApprovalPinsTheCommit(t *testing.T) {
	t.Parallel()
	b := setupApproval(t, nil)
	first := b.mergeRequest(t)
	if _, err := b.engine.Approve(context.Background(), first.ID, Review{SHA: "0bad"}); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("approval naming another commit = %v, want ErrInvalidTransition", err)
	}
	if _, err := b.engine.Approve(context.Background(), first.ID, Review{}); err != nil {
		t.Fatal(err)
	}
	b.drain(t, 0)
	b.mu.Lock()
	b.mr.SHA = "e1e1e1e1e1"
	b.mu.Unlock()
	second := b.mergeRequest(t)
	if second.ID == first.ID || !second.Approval.Waiting() || second.State() != StateWaitingForApproval {
		t.Errorf("new commit: pipeline %d %s, want a new pipeline waiting", second.ID, second.State())
	}
	if r := b.src.readsOf("archive 50@e1e1e1e1e1"); len(r) != 0 {
		t.Errorf("the new commit was fetched before approval: %v", r)
	}
}

// TestDeclineCancelsEverything: a declined pipeline ends with every status canceled, saying
// who declined; nothing was fetched, and neither an approval nor a retry can run it now.
func TestDeclineCancelsEverything(t *testing.T) {
	t.Parallel()
	b := setupApproval(t, nil)
	p := b.mergeRequest(t)
	got, err := b.engine.Decline(context.Background(), p.ID, Review{By: "maint"})
	if err != nil {
		t.Fatal(err)
	}
	b.drain(t, 0)
	if got.State() != StateCanceled {
		t.Errorf("declined pipeline = %s, want canceled", got.State())
	}
	for _, j := range got.Jobs {
		name := StatusName("gantry", j.Name)
		if d := cmp.Diff([]string{"pending", "canceled"}, b.statuses.posts[name]); d != "" || b.statuses.descs[name] != "declined by maint" {
			t.Errorf("status %s: %v %q, want pending then canceled, declined by maint", name, b.statuses.posts[name], b.statuses.descs[name])
		}
	}
	if _, err := b.engine.Approve(context.Background(), p.ID, Review{}); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("approval after decline = %v, want ErrInvalidTransition", err)
	}
	if _, err := b.engine.Retry(context.Background(), p.ID); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("retry after decline = %v, want ErrInvalidTransition", err)
	}
	if _, err := b.engine.RetryJob(context.Background(), p.ID, JobBuild); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("job retry after decline = %v, want ErrInvalidTransition", err)
	}
	b.drain(t, 0)
	if r := b.src.readsOf("archive"); len(r) != 0 {
		t.Errorf("read %v after decline", r)
	}
	if _, ok := b.store.finished[p.ID]; !ok {
		t.Error("declined pipeline not marked finished")
	}
}

// TestCanceledWhileWaitingNeverRuns: a waiting pipeline canceled through the API cannot be
// retried into running unapproved code.
func TestCanceledWhileWaitingNeverRuns(t *testing.T) {
	t.Parallel()
	b := setupApproval(t, nil)
	p := b.mergeRequest(t)
	if _, err := b.engine.Cancel(context.Background(), p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.engine.Retry(context.Background(), p.ID); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("retry = %v, want ErrInvalidTransition", err)
	}
	if _, err := b.engine.Approve(context.Background(), p.ID, Review{}); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("approval of a canceled pipeline = %v, want ErrInvalidTransition", err)
	}
	b.drain(t, 0)
	if r := b.src.readsOf("archive"); len(r) != 0 {
		t.Errorf("read %v", r)
	}
}

// TestJobTaskOfAWaitingPipelineRunsNothing: a job task that reaches a worker while its
// pipeline waits (queued by hand, or by a bug) runs nothing.
func TestJobTaskOfAWaitingPipelineRunsNothing(t *testing.T) {
	t.Parallel()
	b := setupApproval(t, nil)
	p := b.mergeRequest(t)
	if err := b.engine.Handle(context.Background(), Task{Kind: TaskJob, PipelineID: p.ID, Job: JobBuild, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	b.drain(t, 0)
	if r := b.src.readsOf("archive"); len(r) != 0 {
		t.Errorf("read %v", r)
	}
	if got := b.stored(t, p.ID); got.State() != StateWaitingForApproval {
		t.Errorf("pipeline = %s, want still waiting", got.State())
	}
}

// TestApprovalExpires: nobody decides before the expiry; the sweep cancels the pipeline (every
// one that expired, in one sweep) and says so, and a late approval is refused.
func TestApprovalExpires(t *testing.T) {
	t.Parallel()
	b := setupApproval(t, func(p *Project) { p.ApprovalExpiry = time.Hour })
	p := b.mergeRequest(t)
	b.mu.Lock()
	b.mr.SHA = "f1f1f1f1f1" // a second merge request commit, waiting as long
	b.mu.Unlock()
	second := b.mergeRequest(t)
	b.advance(59 * time.Minute)
	if err := b.engine.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := b.stored(t, p.ID); got.State() != StateWaitingForApproval {
		t.Fatalf("before the expiry: %s, want waiting", got.State())
	}
	b.advance(2 * time.Minute)
	if err := b.engine.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.drain(t, 0)
	got := b.stored(t, p.ID)
	if got.State() != StateCanceled || got.Approval.Verdict == nil || got.Approval.Verdict.Decision != DecisionExpired {
		t.Errorf("after the expiry: %s verdict %+v, want canceled, expired", got.State(), got.Approval.Verdict)
	}
	if got := b.stored(t, second.ID); got.State() != StateCanceled {
		t.Errorf("the second waiting pipeline after the expiry: %s, want canceled in the same sweep", got.State())
	}
	if d := b.statuses.descs["gantry/build"]; !strings.Contains(d, "nobody approved") {
		t.Errorf("build status says %q, want that nobody approved it", d)
	}
	if _, err := b.engine.Approve(context.Background(), p.ID, Review{}); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("late approval = %v, want ErrInvalidTransition", err)
	}
}

// TestDecisionCarriedOutBySweep: a process recorded an approval and died before queueing the
// build; the sweep queues it.
func TestDecisionCarriedOutBySweep(t *testing.T) {
	t.Parallel()
	b := setupApproval(t, nil)
	p := b.mergeRequest(t)
	if ok, err := b.store.Decide(context.Background(), p.ID, Verdict{Decision: DecisionApproved, By: "maint", At: b.clock()}); !ok || err != nil {
		t.Fatalf("Decide = %v, %v", ok, err)
	}
	if err := b.engine.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.drain(t, 0)
	if got := b.stored(t, p.ID); got.State() != StateSuccess {
		t.Errorf("pipeline = %s, want success", got.State())
	}
}

// TestApprovalModes: which merge requests wait under each mode, and that pushes never do.
func TestApprovalModes(t *testing.T) {
	t.Parallel()
	fork := MergeRequestHead{SourceProjectID: 50, SHA: "f0f0f0f0f0", SourceBranch: "feature", AuthorID: 1, Author: "dev"}
	memberMR := MergeRequestHead{SourceProjectID: 7, SHA: "a0a0a0a0a0", SourceBranch: "feature", AuthorID: 1, Author: "dev"}
	strangerMR := MergeRequestHead{SourceProjectID: 7, SHA: "b0b0b0b0b0", SourceBranch: "feature", AuthorID: 2, Author: "stranger"}
	for _, tc := range []struct {
		mode ApprovalMode
		mr   MergeRequestHead
		want string // the reason it waits, "" when it runs
	}{
		{ApprovalNone, fork, ""},
		{"", fork, "merge request from a fork"},
		{ApprovalForks, fork, "merge request from a fork"},
		{ApprovalForks, strangerMR, ""},
		{ApprovalNonMembers, fork, "merge request from a fork"},
		{ApprovalNonMembers, memberMR, ""},
		{ApprovalNonMembers, strangerMR, "author @stranger is not a Developer of the project"},
		{ApprovalAll, memberMR, "every merge request waits for approval"},
	} {
		t.Run(string(tc.mode)+"/"+tc.mr.Author+"/"+tc.mr.SHA, func(t *testing.T) {
			b := setupApproval(t, func(p *Project) { p.Approval = tc.mode })
			b.mr = tc.mr
			p := b.mergeRequest(t)
			switch {
			case tc.want == "" && (p.Approval != nil || p.State() != StateSuccess):
				t.Errorf("pipeline = %s approval %+v, want it run without approval", p.State(), p.Approval)
			case tc.want != "" && (p.Approval == nil || p.Approval.Reason != tc.want || p.State() != StateWaitingForApproval):
				t.Errorf("pipeline = %s approval %+v, want waiting because %q", p.State(), p.Approval, tc.want)
			}
		})
	}
	t.Run("push", func(t *testing.T) {
		b := setupApproval(t, func(p *Project) { p.Approval = ApprovalAll })
		p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "master", SHA: "c0c0c0c0c0"})
		b.drain(t, 0)
		if got := b.stored(t, p.ID); got.Approval != nil || got.State() != StateSuccess {
			t.Errorf("push = %s approval %+v, want run at once", got.State(), got.Approval)
		}
	})
}

// TestApprovedForkGetsUntrustedLimits: an approved fork's build runs with the project's limits
// for untrusted code, and neither build nor tests receive configured values not let through;
// a push of the project's own gets everything configured.
func TestApprovedForkGetsUntrustedLimits(t *testing.T) {
	t.Parallel()
	configured := BuildSpec{Network: "bridge", Memory: 4 << 30, CPUs: 2, Args: map[string]string{"PIP_TOKEN": "secret", "PY": "3.12"}}
	configuredEnv := map[string]string{"DB_PASSWORD": "secret", "PY": "3.12"}
	b := setupApproval(t, func(p *Project) {
		p.Build = configured
		p.Tests = []TestSpec{{Name: "unit", Env: configuredEnv}}
		p.Untrusted = UntrustedSpec{Network: "none", Memory: 1 << 30, CPUs: 0.5, Pass: []string{"PY"}}
	})
	var build BuildRequest
	var test TestRequest
	b.exec.BuildFunc = func(r BuildRequest) (BuildResult, error) { build = r; return BuildResult{ImageID: "sha256:img"}, nil }
	b.exec.TestFunc = func(r TestRequest, _ io.Writer) (TestResult, error) { test = r; return TestResult{}, nil }
	p := b.mergeRequest(t)
	if _, err := b.engine.Approve(context.Background(), p.ID, Review{}); err != nil {
		t.Fatal(err)
	}
	b.drain(t, 0)
	want := BuildSpec{Network: "none", Memory: 1 << 30, CPUs: 0.5, Args: map[string]string{"PY": "3.12"}}
	if d := cmp.Diff(want, build.Project.Build); d != "" {
		t.Errorf("untrusted build (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]string{"PY": "3.12"}, test.Test.Env); d != "" {
		t.Errorf("untrusted test env (-want +got):\n%s", d)
	}
	b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "feature", SHA: "0123456789"})
	b.drain(t, 0)
	if d := cmp.Diff(configured, build.Project.Build); d != "" {
		t.Errorf("the project's own build (-want +got):\n%s", d)
	}
	if d := cmp.Diff(configuredEnv, test.Test.Env); d != "" {
		t.Errorf("the project's own test env (-want +got):\n%s", d)
	}
}

// TestForkFlagMustMatchGitLab: a payload that names the fork as its source but says it is no
// fork (so it would be released and pushed as the project's own) is refused.
func TestForkFlagMustMatchGitLab(t *testing.T) {
	t.Parallel()
	b := setupApproval(t, func(p *Project) { p.Approval = ApprovalNone })
	p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 50, HookProjectID: 7, Kind: TriggerMergeRequest,
		Ref: "feature", SHA: "f0f0f0f0f0", Fork: false, MergeRequestIID: 4})
	b.drain(t, 0)
	got := b.stored(t, p.ID)
	if got.State() != StateCanceled || !strings.Contains(got.Jobs[0].Description, "fork") || len(b.src.readsOf("archive")) != 0 {
		t.Errorf("pipeline = %s %q, reads %v: want refused about the fork, nothing read", got.State(), got.Jobs[0].Description, b.src.readsOf("archive"))
	}
}

// TestDeclineSaysByWhom: a declined pipeline's jobs say who declined and how they were let in,
// as much of it as is known, and nothing more.
func TestDeclineSaysByWhom(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		review Review
		want   string
	}{
		{Review{}, "declined"},
		{Review{By: "maint"}, "declined by maint"},
		{Review{Via: "API token sha256:1a2b"}, "declined by (API token sha256:1a2b)"},
		{Review{By: "maint", Via: "API token sha256:1a2b"}, "declined by maint (API token sha256:1a2b)"},
	} {
		b := setupApproval(t, nil)
		p := b.mergeRequest(t)
		got, err := b.engine.Decline(context.Background(), p.ID, tt.review)
		if err != nil {
			t.Fatal(err)
		}
		if got.Jobs[0].Description != tt.want {
			t.Errorf("declined with %+v: %q, want %q", tt.review, got.Jobs[0].Description, tt.want)
		}
	}
}
