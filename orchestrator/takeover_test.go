package orchestrator

import (
	"context"
	"io"
	"slices"
	"testing"
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
