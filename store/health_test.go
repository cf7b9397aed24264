package store

import (
	"context"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/redis/go-redis/v9"
)

// TestQueueHealth: what the alerts read — an empty queue with no worker, then waiting tasks
// whose oldest ages, then a live worker; a Redis that cannot be reached is an error.
func TestQueueHealth(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	if h, err := b.store.QueueHealth(ctx); err != nil || h != (QueueHealth{}) {
		t.Fatalf("QueueHealth of a new Redis = %+v, %v, want all zero", h, err)
	}
	for i := range 2 {
		if err := b.store.Enqueue(ctx, orchestrator.Task{Kind: orchestrator.TaskStart, PipelineID: int64(100 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // asynq reads a task's age in whole seconds
	h, err := b.store.QueueHealth(ctx)
	if err != nil || h.Pending != 2 || h.Active != 0 || h.Workers != 0 || h.Latency < time.Second {
		t.Errorf("QueueHealth with two waiting tasks = %+v, %v, want 2 pending aged a second, no worker", h, err)
	}

	held := make(chan struct{})
	w := NewWorker(b.rdb, WorkerOptions{Concurrency: 1, ShutdownGrace: time.Second})
	if err := w.Start(func(ctx context.Context, _ orchestrator.Task) error {
		select {
		case <-held:
		case <-ctx.Done():
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()
	defer close(held)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		h, err = b.store.QueueHealth(ctx)
		if err == nil && h.Workers == 1 && h.Active == 1 && h.Pending == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("QueueHealth with a worker on one task = %+v, %v, want 1 worker, 1 active, 1 pending", h, err)
		}
	}

	// Nothing listens on port 1; one try, so the error comes at once.
	down := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1}), Options{})
	defer down.Close()
	if _, err := down.QueueHealth(ctx); err == nil {
		t.Error("QueueHealth without Redis = nil error")
	}
}
