package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// blockingStore is a memStore whose WaitNew blocks until its context ends, and says when it
// has returned.
type blockingStore struct {
	*memStore
	waiting, returned atomic.Bool
}

func (s *blockingStore) WaitNew(ctx context.Context) (int64, error) {
	s.waiting.Store(true)
	<-ctx.Done()
	time.Sleep(20 * time.Millisecond) // a slow return, which Stop must wait for
	s.returned.Store(true)
	return 0, ctx.Err()
}

// TestServiceStopWaitsForItsLoops: Stop returns only once both loops have returned, and the
// service cannot be started twice.
func TestServiceStopWaitsForItsLoops(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	st := &blockingStore{memStore: b.store}
	b.engine.store = st
	s := NewService(b.engine)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start = %v, want ErrStarted", err)
	}
	for deadline := time.Now().Add(5 * time.Second); !st.waiting.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("TakeNew never waited for new pipelines")
		}
	}
	s.Stop()
	if !st.returned.Load() {
		t.Error("Stop returned before TakeNew did")
	}
	b.store.mu.Lock()
	listeners := len(b.store.subs)
	b.store.mu.Unlock()
	if listeners != 0 {
		t.Errorf("%d cancellation listeners left after Stop, want 0", listeners)
	}
	s.Stop() // a second Stop is harmless
}

// TestListenForCancelsStopsOnlyFinishedJobs: a cancellation announced by any process stops this
// process's running jobs that are over in the store, and leaves a release that is still
// running (a push is never interrupted) and a job about to start.
func TestListenForCancelsStopsOnlyFinishedJobs(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	p := b.push(t, "master")
	b.store.mu.Lock()
	stored := b.store.pipelines[p.ID]
	for i := range stored.Jobs {
		switch stored.Jobs[i].Name {
		case JobBuild:
			stored.Jobs[i].State = StateSuccess
		case "test/unit":
			stored.Jobs[i].State = StateCanceled
		case "test/lint":
			stored.Jobs[i].State = StatePending
		case JobRelease:
			stored.Jobs[i].State = StateRunning
		}
	}
	b.store.mu.Unlock()
	stopped := map[string]*atomic.Bool{}
	for _, name := range []string{"test/unit", "test/lint", JobRelease} {
		stopped[name] = &atomic.Bool{}
		b.engine.running.add(p.ID, name, func() { stopped[name].Store(true) })
	}
	s := NewService(b.engine)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for deadline := time.Now().Add(5 * time.Second); !stopped["test/unit"].Load(); time.Sleep(5 * time.Millisecond) {
		if err := b.store.PublishCancel(context.Background(), p.ID); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the canceled test was never stopped")
		}
	}
	s.Stop() // the listener has handled every announcement made so far
	if stopped[JobRelease].Load() || stopped["test/lint"].Load() {
		t.Errorf("stopped the running release %v, the pending test %v; want neither", stopped[JobRelease].Load(), stopped["test/lint"].Load())
	}
}

// jobWaits is an executor whose job named job (a test or the release) waits for finish once
// started, or stops when its context ends.
type jobWaits struct {
	*fakeExecutor
	job             string
	started, finish chan struct{}
	stopped         atomic.Bool
}

func (x *jobWaits) wait(ctx context.Context) error {
	close(x.started)
	select {
	case <-x.finish:
		return nil
	case <-ctx.Done():
		x.stopped.Store(true)
		return ctx.Err()
	}
}

func (x *jobWaits) Test(ctx context.Context, r TestRequest, log io.Writer) (TestResult, error) {
	if TestJobPrefix+r.Test.Name == x.job {
		if err := x.wait(ctx); err != nil {
			return TestResult{}, err
		}
	}
	return x.fakeExecutor.Test(ctx, r, log)
}

func (x *jobWaits) Release(ctx context.Context, r ReleaseRequest, log io.Writer) (ReleaseResult, error) {
	if x.job == JobRelease {
		if err := x.wait(ctx); err != nil {
			return ReleaseResult{}, err
		}
	}
	return x.fakeExecutor.Release(ctx, r, log)
}

// TestCancelStopsRunningJobsButTheRelease: a pipeline canceled while a job runs, with the
// cancellation listener running: a running test is stopped and ends canceled, its log saying
// so; a running release is let finish and ends success, as pushed, since stopping a push halfway
// would leave the registry's tags split between two images.
func TestCancelStopsRunningJobsButTheRelease(t *testing.T) {
	t.Parallel()
	tests := []struct {
		job     string
		stopped bool
		want    State // the job's state once it returned
	}{
		{"test/unit", true, StateCanceled},
		{JobRelease, false, StateSuccess},
	}
	for _, tt := range tests {
		t.Run(tt.job, func(t *testing.T) {
			t.Parallel()
			b := setupEngine(t)
			ctx := context.Background()
			x := &jobWaits{fakeExecutor: b.exec, job: tt.job, started: make(chan struct{}), finish: make(chan struct{})}
			b.engine.exec = x
			p := b.push(t, "master")
			var held Task
			for {
				task, ok := b.queue.pop()
				if !ok {
					break
				}
				if task.Kind == TaskJob && task.Job == tt.job {
					held = task
					continue
				}
				if err := b.engine.Handle(ctx, task); err != nil {
					t.Fatal(err)
				}
			}
			if held.Job == "" {
				t.Fatalf("%s was never queued", tt.job)
			}
			s := NewService(b.engine)
			if err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
				b.store.mu.Lock()
				listening := len(b.store.subs) > 0
				b.store.mu.Unlock()
				if listening {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the cancellation listener never started")
				}
			}
			done := make(chan error, 1)
			go func() { done <- b.engine.Handle(ctx, held) }()
			select {
			case <-x.started:
			case <-time.After(5 * time.Second):
				t.Fatalf("%s never started", tt.job)
			}
			got, err := b.engine.Cancel(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if j, _ := got.Job(JobRelease); tt.job == JobRelease && j.State != StateRunning {
				t.Errorf("release after Cancel = %s, want still running", j.State)
			}
			s.Stop() // the listener has handled the cancellation
			// and cancelled the job's context; the executor sees that on its own goroutine.
			for deadline := time.Now().Add(5 * time.Second); tt.stopped && !x.stopped.Load() && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			if x.stopped.Load() != tt.stopped {
				t.Errorf("%s stopped = %v, want %v", tt.job, x.stopped.Load(), tt.stopped)
			}
			close(x.finish)
			if err := <-done; err != nil {
				t.Fatalf("Handle(%s) = %v, want nil", tt.job, err)
			}
			b.drain(t, 0)
			final, _ := b.store.Pipeline(ctx, p.ID)
			if j, _ := final.Job(tt.job); j.State != tt.want {
				t.Errorf("%s = %s, want %s", tt.job, j.State, tt.want)
			}
			if posts := b.statuses.posts[StatusName("gantry", tt.job)]; posts[len(posts)-1] != string(tt.want) {
				t.Errorf("%s statuses = %v, want %s last", tt.job, posts, tt.want)
			}
			log := b.store.logs[fmt.Sprintf("%d/%s/1", p.ID, tt.job)]
			if canceled := strings.HasSuffix(log, "\ncanceled\n"); canceled != tt.stopped {
				t.Errorf("%s log = %q, want it to end with canceled: %v", tt.job, log, tt.stopped)
			}
			if tt.job == JobRelease && final.Digest != "sha256:dig" {
				t.Errorf("digest = %q, want the pushed one", final.Digest)
			}
		})
	}
}

// TestRunningJobsUnregister: a job that ends leaves the other running jobs of its pipeline
// registered, so a cancellation still finds them; once the last has ended nothing is left.
func TestRunningJobsUnregister(t *testing.T) {
	t.Parallel()
	var r runningJobs
	doneUnit := r.add(1, "test/unit", func() {})
	doneLint := r.add(1, "test/lint", func() {})
	doneUnit()
	if got := r.of(1); len(got) != 1 || got["test/lint"] == nil {
		t.Errorf("running jobs of pipeline 1 after test/unit ended = %v, want test/lint", got)
	}
	doneLint()
	if len(r.jobs) != 0 {
		t.Errorf("running jobs after both ended = %v, want none", r.jobs)
	}
}

// newPipelines is a memStore whose WaitNew hands over the ids sent on ids, or fails with err.
type newPipelines struct {
	*memStore
	ids   chan int64
	err   error
	calls atomic.Int32
}

func (s *newPipelines) WaitNew(ctx context.Context) (int64, error) {
	s.calls.Add(1)
	if s.err != nil {
		return 0, s.err
	}
	select {
	case id := <-s.ids:
		return id, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(5 * time.Millisecond):
		return 0, nil
	}
}

// TestTakeNew: TakeNew announces a pipeline a webhook stored right away, without a queue hop;
// when the store fails, it pauses a second before asking again rather than spinning, and it
// returns once its context ends.
func TestTakeNew(t *testing.T) {
	t.Parallel()
	t.Run("new pipeline", func(t *testing.T) {
		t.Parallel()
		b := setupEngine(t)
		p := b.push(t, "feature")
		b.queue.tasks = nil // the start is TakeNew's to make
		s := &newPipelines{memStore: b.store, ids: make(chan int64, 1)}
		b.engine.store = s
		s.ids <- p.ID
		ctx, cancel := context.WithCancel(context.Background())
		returned := make(chan struct{})
		go func() { b.engine.TakeNew(ctx); close(returned) }()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			got, _ := b.store.Pipeline(context.Background(), p.ID)
			if got.Jobs[0].State == StatePending {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("TakeNew never announced the new pipeline")
			}
		}
		cancel()
		<-returned
		b.queue.mu.Lock()
		defer b.queue.mu.Unlock()
		for _, task := range b.queue.tasks {
			if task.Kind == TaskStart {
				t.Errorf("TakeNew queued %+v, want the pipeline started without the queue", task)
			}
		}
	})
	t.Run("store down", func(t *testing.T) {
		t.Parallel()
		b := setupEngine(t)
		s := &newPipelines{memStore: b.store, err: errors.New("redis down")}
		b.engine.store = s
		ctx, cancel := context.WithCancel(context.Background())
		returned := make(chan struct{})
		go func() { b.engine.TakeNew(ctx); close(returned) }()
		time.Sleep(200 * time.Millisecond)
		cancel()
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatal("TakeNew did not return when its context ended")
		}
		if n := s.calls.Load(); n != 1 {
			t.Errorf("WaitNew called %d times in 200 ms of a failing store, want once, then a pause", n)
		}
	})
}
