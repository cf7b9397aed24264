package orchestrator

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// runningBuild is a pushed pipeline whose build a worker started (attempt 1, running) and lost.
func runningBuild(t *testing.T, b engineBundle) *Pipeline {
	t.Helper()
	p := b.push(t, "feature")
	b.queue.tasks = nil
	if err := b.engine.Handle(context.Background(), Task{Kind: TaskStart, PipelineID: p.ID}); err != nil {
		t.Fatal(err)
	}
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	if _, err := b.engine.transition(context.Background(), got, JobBuild, EventRun, func(*Job) {}); err != nil {
		t.Fatal(err)
	}
	b.queue.tasks = nil // the lost worker's task: the queue counts it as running
	return got
}

// TestTakeOverQueuesTheLostJob: a lease that ran out is handed on as a task of its own, which
// resumes the job (removing what the lost attempt left) and runs the pipeline to the end; a
// lease of a job that has ended meanwhile is only forgotten.
func TestTakeOverQueuesTheLostJob(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	p := runningBuild(t, b)
	lost := Lease{ID: "l1", Holder: "dead", Task: Task{Kind: TaskJob, PipelineID: p.ID, Job: JobBuild, Attempt: 1}}
	over := Lease{ID: "l2", Holder: "gone", Task: Task{Kind: TaskJob, PipelineID: p.ID, Job: JobBuild, Attempt: 0}}
	b.store.expired = []Lease{lost, over}
	if err := b.engine.TakeOver(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := Task{Kind: TaskJob, PipelineID: p.ID, Job: JobBuild, Attempt: 1, TakeoverOf: "dead"}
	if !slices.Equal(b.queue.tasks, []Task{want}) {
		t.Errorf("queued %+v, want only the takeover %+v", b.queue.tasks, want)
	}
	if len(b.store.expired) != 0 {
		t.Errorf("leases left after TakeOver: %v", b.store.expired)
	}
	b.drain(t, 0)
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	if got.State() != StateSuccess {
		t.Errorf("pipeline = %s, want success after the takeover", got.State())
	}
	if !slices.Contains(b.exec.cleaned, "1 build") {
		t.Errorf("cleaned up %v, want the lost build's leftovers removed first", b.exec.cleaned)
	}
}

// TestSecondCopyOfATaskRunsNothing: while a live worker holds a job attempt's lease, another copy
// of its task (the queue handing it back, or a takeover racing the worker) runs nothing.
func TestSecondCopyOfATaskRunsNothing(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	p := runningBuild(t, b)
	_, release, err := b.store.HoldJob(context.Background(), p.ID, JobBuild, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	builds := 0
	b.exec.BuildFunc = func(BuildRequest) (BuildResult, error) { builds++; return BuildResult{ImageID: "sha256:x"}, nil }
	b.exec.TestFunc = func(TestRequest, io.Writer) (TestResult, error) { return TestResult{}, nil }
	if err := b.engine.Handle(context.Background(), Task{Kind: TaskJob, PipelineID: p.ID, Job: JobBuild, Attempt: 1, TakeoverOf: "x"}); err != nil {
		t.Fatal(err)
	}
	if builds != 0 || len(b.exec.cleaned) != 0 {
		t.Errorf("a second copy built %d times, cleaned %v, want nothing done", builds, b.exec.cleaned)
	}
}

// TestSweepLeavesAbandonedTasksOfWhatMovedOn: the queue gave up on a task, but its job has moved
// on since: an abandoned task of an older attempt (the job was retried and its new attempt runs),
// of a job that has ended, of a job the pipeline does not have, or that is no job's task, must
// change nothing; the sweep only forgets it. Failing the current attempt for a lost worker of an
// old one would end a job that is running well. A lost build of another pipeline, abandoned in
// the same sweep, is failed all the same.
func TestSweepLeavesAbandonedTasksOfWhatMovedOn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// state and attempt are the build's in the store when the sweep runs.
		state   State
		attempt int
		task    Task // PipelineID is filled in
	}{
		{"an older attempt", StateRunning, 2, Task{Kind: TaskJob, Job: JobBuild, Attempt: 1}},
		{"a job that has ended", StateSuccess, 1, Task{Kind: TaskJob, Job: JobBuild, Attempt: 1}},
		{"a job the pipeline does not have", StateRunning, 1, Task{Kind: TaskJob, Job: "test/gone", Attempt: 1}},
		{"a start task", StateRunning, 1, Task{Kind: TaskStart}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupEngine(t)
			ctx := context.Background()
			p := runningBuild(t, b)
			b.store.mu.Lock()
			build, _ := b.store.pipelines[p.ID].Job(JobBuild)
			build.State, build.Attempt = tt.state, tt.attempt
			posts := len(b.store.outbox[p.ID])
			b.store.mu.Unlock()
			before, _ := b.store.Pipeline(ctx, p.ID)
			other := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "dev", SHA: "dev0000000"})
			if err := b.engine.Handle(ctx, Task{Kind: TaskStart, PipelineID: other.ID}); err != nil {
				t.Fatal(err)
			}
			stored, _ := b.store.Pipeline(ctx, other.ID)
			if _, err := b.engine.transition(ctx, stored, JobBuild, EventRun, func(*Job) {}); err != nil {
				t.Fatal(err)
			}
			task := tt.task
			task.PipelineID, task.LastError = p.ID, "asynq: task lease expired"
			lost := Task{Kind: TaskJob, PipelineID: other.ID, Job: JobBuild, Attempt: 1, LastError: "asynq: task lease expired"}
			b.store.abandoned = []Task{task, lost}
			if err := b.engine.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if got, _ := b.store.Pipeline(ctx, other.ID); got.Jobs[0].State != StateFailed {
				t.Errorf("the other pipeline's lost build = %s, want failed", got.Jobs[0].State)
			}
			after, _ := b.store.Pipeline(ctx, p.ID)
			if d := cmp.Diff(before.Jobs, after.Jobs); d != "" {
				t.Errorf("jobs changed by the sweep (-before +after):\n%s", d)
			}
			if len(b.store.abandoned) != 0 {
				t.Errorf("abandoned task not forgotten: %+v", b.store.abandoned)
			}
			b.store.mu.Lock()
			defer b.store.mu.Unlock()
			if n := len(b.store.outbox[p.ID]); n != posts {
				t.Errorf("%d statuses waiting to be posted after the sweep, want the %d from before", n, posts)
			}
		})
	}
}

// losingLeases is a memStore whose job leases the test can lose, as when renewing one fails.
type losingLeases struct {
	*memStore
	mu   sync.Mutex
	lose map[string]context.CancelCauseFunc // by job name
}

func (s *losingLeases) HoldJob(ctx context.Context, id int64, job string, attempt int) (context.Context, func(), error) {
	held, release, err := s.memStore.HoldJob(ctx, id, job, attempt)
	if err != nil {
		return held, release, err
	}
	held, lose := context.WithCancelCause(held)
	s.mu.Lock()
	s.lose[job] = lose
	s.mu.Unlock()
	return held, func() { lose(nil); release() }, nil
}

func (s *losingLeases) loseLease(job string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lose[job](ErrLockLost)
}

// TestLostLeaseStopsAJobButNotThePush: a worker that loses a job's lease while the job runs
// stops the job, since another worker takes it over, and records nothing: the job stays running
// for the takeover. A release is not stopped (a push is never cut halfway; the release lock keeps
// a second one out).
func TestLostLeaseStopsAJobButNotThePush(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		job     string
		stopped bool
	}{
		{"test/unit", true},
		{JobRelease, false},
	} {
		t.Run(tt.job, func(t *testing.T) {
			t.Parallel()
			b := setupEngine(t)
			ctx := context.Background()
			s := &losingLeases{memStore: b.store, lose: map[string]context.CancelCauseFunc{}}
			b.engine.store = s
			var stopped *bool
			lost := func(ctx context.Context) {
				s.loseLease(tt.job)
				st := ctx.Err() != nil
				stopped = &st
			}
			x := &leaseExecutor{fakeExecutor: b.exec, job: tt.job, lost: lost}
			b.engine.exec = x
			p := b.push(t, "master")
			b.drain(t, 0)
			if stopped == nil {
				t.Fatalf("%s never ran", tt.job)
			}
			if *stopped != tt.stopped {
				t.Errorf("%s stopped by the lost lease = %v, want %v", tt.job, *stopped, tt.stopped)
			}
			got, _ := b.store.Pipeline(ctx, p.ID)
			if j, _ := got.Job(tt.job); j.State != StateRunning {
				t.Errorf("%s = %s, want still running, for the takeover", tt.job, j.State)
			}
			if log := b.store.logs[fmt.Sprintf("%d/%s/1", p.ID, tt.job)]; strings.Contains(log, "canceled") {
				t.Errorf("%s log = %q, want no cancellation told", tt.job, log)
			}
		})
	}
}

// leaseExecutor calls lost with the job's context while job runs.
type leaseExecutor struct {
	*fakeExecutor
	job  string
	lost func(context.Context)
}

func (x *leaseExecutor) Test(ctx context.Context, r TestRequest, log io.Writer) (TestResult, error) {
	if TestJobPrefix+r.Test.Name == x.job {
		x.lost(ctx)
	}
	return x.fakeExecutor.Test(ctx, r, log)
}

func (x *leaseExecutor) Release(ctx context.Context, r ReleaseRequest, log io.Writer) (ReleaseResult, error) {
	if x.job == JobRelease {
		x.lost(ctx)
	}
	return x.fakeExecutor.Release(ctx, r, log)
}
