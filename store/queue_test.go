package store

import (
	"context"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
)

// TestTaskID: the queue refuses a second copy of a task by its id, so each kind of task is
// named by exactly what makes it the same task, and a takeover of a job is another task than
// the lost one, which the queue still counts as running. The names are kept in Redis across
// versions, so they must not change.
func TestTaskID(t *testing.T) {
	for _, c := range []struct {
		task orchestrator.Task
		want string
	}{
		{orchestrator.Task{Kind: orchestrator.TaskStart, PipelineID: 3, Job: "build", Attempt: 1}, "p3:start"},
		{orchestrator.Task{Kind: orchestrator.TaskStatuses, PipelineID: 3, Seq: 7}, "p3:statuses:7"},
		{orchestrator.Task{Kind: orchestrator.TaskJob, PipelineID: 3, Job: "test/unit", Attempt: 2}, "p3:test/unit:2"},
		{orchestrator.Task{Kind: orchestrator.TaskJob, PipelineID: 3, Job: "test/unit", Attempt: 2, TakeoverOf: "tok"}, "p3:test/unit:2:takeover:tok"},
	} {
		if got := taskID(c.task); got != c.want {
			t.Errorf("taskID(%+v) = %q, want %q", c.task, got, c.want)
		}
	}
}

// TestEnqueueRetries: a job is retried as often as the store's Retries say, while a statuses
// task gets statusRetries, enough to outlast a GitLab outage of about a day.
func TestEnqueueRetries(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	three := 3
	s := New(b.rdb, Options{Retries: &three})
	t.Cleanup(func() { s.Close() })
	for _, c := range []struct {
		s    *Store
		task orchestrator.Task
		want int
	}{
		{b.store, orchestrator.Task{Kind: orchestrator.TaskJob, PipelineID: 1, Job: "build", Attempt: 1}, 2},
		{s, orchestrator.Task{Kind: orchestrator.TaskJob, PipelineID: 2, Job: "build", Attempt: 1}, 3},
		{s, orchestrator.Task{Kind: orchestrator.TaskStatuses, PipelineID: 2, Seq: 1}, statusRetries},
	} {
		if err := c.s.Enqueue(ctx, c.task); err != nil {
			t.Fatal(err)
		}
		info, err := c.s.inspector.GetTaskInfo(queueName, taskID(c.task))
		if err != nil || info.MaxRetry != c.want || info.Timeout != taskTimeout {
			t.Errorf("queued %+v: %+v, %v; want %d retries, timeout %v", c.task, info, err, c.want, taskTimeout)
		}
	}
}

// TestWorkerPollsOften: an idle worker picks a new task up within milliseconds, not after
// asynq's default poll of a second, which would dominate how fast a push starts.
func TestWorkerPollsOften(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	ran := make(chan struct{}, 1)
	w := NewWorker(b.rdb, WorkerOptions{Concurrency: 1, ShutdownGrace: time.Second})
	if err := w.Start(func(context.Context, orchestrator.Task) error {
		ran <- struct{}{}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()
	var slowest time.Duration
	for i := range 3 {
		time.Sleep(200 * time.Millisecond) // idle: the worker found the queue empty and waits
		start := time.Now()
		if err := b.store.Enqueue(ctx, orchestrator.Task{Kind: orchestrator.TaskStart, PipelineID: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ran:
		case <-time.After(10 * time.Second):
			t.Fatal("no task ran within 10 s")
		}
		slowest = max(slowest, time.Since(start))
	}
	if slowest > 500*time.Millisecond {
		t.Errorf("an idle worker took %v to pick a task up, want well under a second", slowest)
	}
}

// TestAbandonedAndForget: a task the queue gave up on is listed, as the task it was, until the
// engine forgets it; a payload that is not a task is passed over; a queue never used lists
// nothing, and forgetting a task twice is no error.
func TestAbandonedAndForget(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	if got, err := b.store.Abandoned(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Abandoned on a new Redis = %v, %v, want none", got, err)
	}
	task := orchestrator.Task{Kind: orchestrator.TaskJob, PipelineID: 4, Job: "build", Attempt: 2}
	if err := b.store.Enqueue(ctx, task); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.queue.EnqueueContext(ctx, asynq.NewTask(taskType, []byte("not a task")), asynq.Queue(queueName), asynq.TaskID("junk")); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{taskID(task), "junk"} {
		if err := b.store.inspector.ArchiveTask(queueName, id); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.store.Abandoned(ctx)
	if d := cmp.Diff([]orchestrator.Task{task}, got); err != nil || d != "" {
		t.Errorf("Abandoned = %v (-want +got):\n%s", err, d)
	}
	for range 2 {
		if err := b.store.Forget(ctx, task); err != nil {
			t.Errorf("Forget = %v", err)
		}
	}
	if got, err := b.store.Abandoned(ctx); err != nil || len(got) != 0 {
		t.Errorf("Abandoned after Forget = %v, %v, want none", got, err)
	}
}
