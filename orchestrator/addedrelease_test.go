package orchestrator

import (
	"context"
	"io"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// releaseBranchMR is a GitLab whose merge requests come from the release branch master itself,
// at addedSHA unless head says another commit: their pipelines do not release, and the push of
// master at that commit does.
type releaseBranchMR struct {
	fakeSource
	head string
}

const addedSHA = "0123456789"

func (s releaseBranchMR) MergeRequest(context.Context, int64, int64) (MergeRequestHead, error) {
	return MergeRequestHead{SourceProjectID: 7, SHA: cmpOr(s.head, addedSHA), SourceBranch: "master", TargetBranch: "production"}, nil
}

var (
	mrOfMaster   = Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerMergeRequest, Ref: "master", SHA: addedSHA, MergeRequestIID: 3, DeliveryID: "mr"}
	pushOfMaster = Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "master", SHA: addedSHA, DeliveryID: "push"}
)

// addedReleaseBundle is an engine whose merge requests come from master, counting builds.
func addedReleaseBundle(t *testing.T) (engineBundle, *atomic.Int32) {
	t.Helper()
	b := setupEngineWith(t, releaseBranchMR{})
	var builds atomic.Int32
	b.exec.BuildFunc = func(BuildRequest) (BuildResult, error) {
		builds.Add(1)
		return BuildResult{ImageID: "sha256:img"}, nil
	}
	return b, &builds
}

func (b engineBundle) accept(t *testing.T, tr Trigger) Accepted {
	t.Helper()
	a, err := b.engine.Accept(context.Background(), tr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (b engineBundle) pipeline(t *testing.T, id int64) *Pipeline {
	t.Helper()
	p, err := b.store.Pipeline(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAddedReleaseRunsOnceInTheMergeRequestsPipeline: the merge request's hook of a commit of the
// release branch, then the push of it, before or after the pipeline finished: one pipeline,
// built once, released once, the build's status never back to pending, and the guard judging the
// push. A second push (GitLab's retry) is a plain duplicate.
func TestAddedReleaseRunsOnceInTheMergeRequestsPipeline(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		// during says the push arrives while test/unit runs; else after the pipeline ended.
		during bool
	}{{"after the pipeline finished", false}, {"while a test runs", true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b, builds := addedReleaseBundle(t)
			var added atomic.Bool
			if c.during {
				b.exec.TestFunc = func(r TestRequest, _ io.Writer) (TestResult, error) {
					if r.Test.Name == "unit" {
						added.Store(b.accept(t, pushOfMaster).ReleaseAdded)
					}
					return TestResult{}, nil
				}
			}
			mr := b.accept(t, mrOfMaster)
			b.drain(t, 0)
			if p := b.pipeline(t, mr.Pipeline.ID); !c.during {
				if _, ok := p.Job(JobRelease); ok || p.State() != StateSuccess {
					t.Fatalf("merge request pipeline = %s with jobs %+v, want success without a release", p.State(), p.Jobs)
				}
				a := b.accept(t, pushOfMaster)
				if !a.Duplicate || a.Pipeline.ID != mr.Pipeline.ID {
					t.Fatalf("push = %+v, want the merge request's pipeline %d", a, mr.Pipeline.ID)
				}
				added.Store(a.ReleaseAdded)
				b.drain(t, 0)
			}
			if !added.Load() {
				t.Error("the push did not say it added the release")
			}
			if again := b.accept(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "master", SHA: addedSHA, DeliveryID: "retry"}); again.Pipeline.ID != mr.Pipeline.ID || again.ReleaseAdded {
				t.Errorf("second push = %+v, want a plain duplicate of %d", again, mr.Pipeline.ID)
			}
			b.drain(t, 0)
			p := b.pipeline(t, mr.Pipeline.ID)
			if p.State() != StateSuccess || p.Digest != "sha256:dig" || len(b.store.pipelines) != 1 || builds.Load() != 1 {
				t.Errorf("pipeline %s digest %q, %d pipelines, %d builds; want success, released, one of each", p.State(), p.Digest, len(b.store.pipelines), builds.Load())
			}
			if p.Trigger.Kind != TriggerMergeRequest || p.ReleaseTrigger == nil || p.ReleaseTrigger.Kind != TriggerPush || p.MergeRequestIID() != 3 {
				t.Errorf("trigger %+v, release trigger %+v, want the merge request's, the push's, merge request 3", p.Trigger, p.ReleaseTrigger)
			}
			want := map[string][]string{
				"gantry/build": {"pending", "running", "success"}, "gantry/test/unit": {"pending", "running", "success"},
				"gantry/test/lint": {"pending", "running", "success"}, "gantry/release": {"pending", "running", "success"},
			}
			if d := cmp.Diff(want, b.statuses.posts); d != "" {
				t.Errorf("statuses (-want +got):\n%s", d)
			}
			if r, _ := b.store.Released(context.Background(), "g/app", "master"); r != addedSHA {
				t.Errorf("Released = %q, want %s", r, addedSHA)
			}
			if !b.store.ended[p.ID] || b.store.unstarted[p.ID] {
				t.Errorf("ended %v unstarted %v, want the pipeline recorded finished and started", b.store.ended[p.ID], b.store.unstarted[p.ID])
			}
		})
	}
}

// TestAddedReleaseThatDoesNotRun: what becomes of a release a push adds to a pipeline that
// cannot release it. Nothing is posted for it, so GitLab's view of the commit does not change.
func TestAddedReleaseThatDoesNotRun(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		setup  func(b engineBundle)
		push   Trigger
		desc   string
		state  State
		retry  bool // a retry of the pipeline, its test passing now, releases
		status []string
	}{
		{name: "a test failed", setup: func(b engineBundle) {
			b.exec.TestFunc = func(r TestRequest, _ io.Writer) (TestResult, error) {
				return TestResult{ExitCode: map[string]int{"unit": 1}[r.Test.Name]}, nil
			}
		}, push: pushOfMaster, desc: "not run: test/unit failed", state: StateFailed, retry: true},
		{name: "a newer commit was released", setup: func(b engineBundle) {
			b.store.MarkReleased(context.Background(), "g/app", "master", "9999999999")
		}, push: pushOfMaster, desc: "outdated: master already released 99999999", state: StateSuccess},
		{name: "the push names another project", push: Trigger{Project: "g/app", ProjectID: 7, HookProjectID: 99, Kind: TriggerPush, Ref: "master", SHA: addedSHA},
			desc: "refused: the hook names project id 99", state: StateSuccess},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b, builds := addedReleaseBundle(t)
			if c.setup != nil {
				c.setup(b)
			}
			mr := b.accept(t, mrOfMaster)
			b.drain(t, 0)
			if a := b.accept(t, c.push); !a.ReleaseAdded || a.Pipeline.ID != mr.Pipeline.ID {
				t.Fatalf("push = %+v, want the release added to %d", a, mr.Pipeline.ID)
			}
			b.drain(t, 0)
			p := b.pipeline(t, mr.Pipeline.ID)
			j, _ := p.Job(JobRelease)
			if j.State != StateSkipped || !strings.HasPrefix(j.Description, c.desc) || p.State() != c.state {
				t.Errorf("release %s %q, pipeline %s; want skipped %q…, pipeline %s", j.State, j.Description, p.State(), c.desc, c.state)
			}
			if got := b.statuses.posts["gantry/release"]; got != nil {
				t.Errorf("release statuses = %v, want none posted", got)
			}
			if !b.store.ended[p.ID] {
				t.Error("the pipeline is not recorded finished again")
			}
			if !c.retry {
				return
			}
			b.exec.TestFunc = func(TestRequest, io.Writer) (TestResult, error) { return TestResult{}, nil }
			if _, err := b.engine.Retry(context.Background(), p.ID); err != nil {
				t.Fatal(err)
			}
			b.drain(t, 0)
			if p := b.pipeline(t, mr.Pipeline.ID); p.State() != StateSuccess || p.Digest != "sha256:dig" || builds.Load() != 1 {
				t.Errorf("retried pipeline %s digest %q after %d builds, want released from the one build", p.State(), p.Digest, builds.Load())
			}
		})
	}
}

// TestAddedReleaseWithoutItsStartTask: the process that added the release dies before the start
// task runs; the sweep's unstarted pipelines carry it on.
func TestAddedReleaseWithoutItsStartTask(t *testing.T) {
	t.Parallel()
	b, _ := addedReleaseBundle(t)
	mr := b.accept(t, mrOfMaster)
	b.drain(t, 0)
	b.accept(t, pushOfMaster)
	if task, _ := b.queue.pop(); task.Kind != TaskStart || task.PipelineID != mr.Pipeline.ID {
		t.Fatalf("queued %+v, want the start of %d", task, mr.Pipeline.ID)
	}
	if err := b.engine.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.drain(t, 0)
	if p := b.pipeline(t, mr.Pipeline.ID); p.State() != StateSuccess || p.Digest != "sha256:dig" {
		t.Errorf("pipeline %s digest %q, want released by the sweep's start task", p.State(), p.Digest)
	}
}

// TestAddedReleaseNotToCanceledOrGated: a canceled pipeline, or one that waited for approval,
// gets no release added: the push is a pipeline of its own.
func TestAddedReleaseNotToCanceledOrGated(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		setup func(b engineBundle, id int64)
	}{
		{"canceled", func(b engineBundle, id int64) {
			if _, err := b.engine.Cancel(context.Background(), id); err != nil {
				t.Fatal(err)
			}
		}},
		{"gated", func(b engineBundle, id int64) {
			b.store.mu.Lock()
			b.store.pipelines[id].Approval = &Approval{}
			b.store.mu.Unlock()
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b, _ := addedReleaseBundle(t)
			mr := b.accept(t, mrOfMaster)
			c.setup(b, mr.Pipeline.ID)
			b.drain(t, 0)
			if a := b.accept(t, pushOfMaster); a.Duplicate || a.ReleaseAdded {
				t.Errorf("push = %+v, want a pipeline of its own", a)
			}
		})
	}
}

// TestAddedReleaseBeforeTheMergeRequestStarts: in a project where every merge request waits for
// approval, the push of the release branch arrives before the merge request's pipeline started:
// the pipeline is the push's to release, so it does not wait, builds as trusted code, and
// releases. Had the wait been recorded first, the push would have had a pipeline of its own
// (TestAddedReleaseNotToCanceledOrGated).
func TestAddedReleaseBeforeTheMergeRequestStarts(t *testing.T) {
	t.Parallel()
	b, builds := addedReleaseBundle(t)
	proj := b.engine.projects["g/app"]
	proj.Approval = ApprovalAll
	b.engine.projects["g/app"] = proj
	mr := b.accept(t, mrOfMaster)
	if a := b.accept(t, pushOfMaster); !a.ReleaseAdded || a.Pipeline.ID != mr.Pipeline.ID {
		t.Fatalf("push = %+v, want the release added to %d", a, mr.Pipeline.ID)
	}
	b.drain(t, 0)
	p := b.pipeline(t, mr.Pipeline.ID)
	if p.Approval != nil || p.Untrusted() || p.State() != StateSuccess || p.Digest != "sha256:dig" || builds.Load() != 1 {
		t.Errorf("pipeline %s, approval %+v, digest %q, %d builds; want released without a wait, built once", p.State(), p.Approval, p.Digest, builds.Load())
	}
}

// movedRelease is the description of a release added to a merge request's pipeline that never
// built the commit, by whether the push came before the pipeline's start: then the release says
// why; after it, the skipped build has said that already.
var movedRelease = map[bool]*regexp.Regexp{
	true: regexp.MustCompile(`^merge request !\d+ is 11234567 of project \d+ in GitLab: pipeline \d+ builds it; ` +
		`not run here: pipeline \d+ runs the push of master$`),
	false: regexp.MustCompile(`^not run here: pipeline \d+ runs the push of master$`),
}

// TestAddedReleaseWhenTheMergeRequestMoved: GitLab's head of the merge request is a newer commit
// when its pipeline starts, so that pipeline never builds the hook's commit; the push of that
// commit, whether it came before the start or after, still gets it built and released, by a
// pipeline of its own, once; the merge request's pipeline posts nothing.
func TestAddedReleaseWhenTheMergeRequestMoved(t *testing.T) {
	t.Parallel()
	for _, before := range []bool{true, false} {
		t.Run(map[bool]string{true: "push before the start", false: "push after it"}[before], func(t *testing.T) {
			t.Parallel()
			b := setupEngineWith(t, releaseBranchMR{head: "1123456789"})
			mr := b.accept(t, mrOfMaster)
			if before {
				b.accept(t, pushOfMaster)
			}
			b.drain(t, 0)
			if !before {
				b.accept(t, pushOfMaster)
				b.drain(t, 0)
			}
			p := b.pipeline(t, mr.Pipeline.ID)
			j, _ := p.Job(JobRelease)
			if j.State != StateSkipped || !movedRelease[before].MatchString(j.Description) {
				t.Errorf("merge request pipeline's release = %s %q, want skipped naming the push's pipeline, as %s", j.State, j.Description, movedRelease[before])
			}
			var pushes []*Pipeline
			for id := range b.store.pipelines {
				if q := b.pipeline(t, id); q.Trigger.Kind == TriggerPush {
					pushes = append(pushes, q)
				}
			}
			if len(pushes) != 1 || pushes[0].Trigger.SHA != addedSHA || pushes[0].Digest != "sha256:dig" {
				t.Fatalf("push pipelines = %+v, want one that released %s", pushes, addedSHA)
			}
			if got := b.statuses.posts["gantry/release"]; !cmp.Equal(got, []string{"pending", "running", "success"}) {
				t.Errorf("release statuses = %v, want the push pipeline's only", got)
			}
		})
	}
}
