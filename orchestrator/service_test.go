package orchestrator

import (
	"context"
	"errors"
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
	if stopped[JobRelease].Load() || stopped["test/lint"].Load() {
		t.Errorf("stopped the running release %v, the pending test %v; want neither", stopped[JobRelease].Load(), stopped["test/lint"].Load())
	}
}
