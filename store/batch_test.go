package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
)

// TestCreateBatched: webhooks arriving together share round trips, and each still gets its own
// pipeline with its own id, all stored.
func TestCreateBatched(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	const n = 300
	ids := make([]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p := samplePipeline()
			p.Trigger.SHA = fmt.Sprintf("%040d", i)
			existing, _, err := b.store.CreatePipeline(ctx, p, orchestrator.Dedup{Commit: p.Trigger.SHA, CommitTTL: time.Minute})
			if err != nil || existing != 0 {
				t.Errorf("create %d = %d, %v, want a new pipeline", i, existing, err)
			}
			ids[i] = p.ID
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i, id := range ids {
		if id == 0 || seen[id] {
			t.Fatalf("create %d got id %d: ids must be set and distinct", i, id)
		}
		seen[id] = true
		p, err := b.store.Pipeline(ctx, id)
		if err != nil || p.Trigger.SHA != fmt.Sprintf("%040d", i) {
			t.Fatalf("pipeline %d = %+v, %v, want the trigger of create %d", id, p, err, i)
		}
	}
	if sent := b.store.creates.batches.Load(); sent >= n {
		t.Errorf("%d creates went out in %d round trips, want them batched", n, sent)
	}
}

// TestCreateAfterScriptFlush: Redis lost its scripts (a restart, SCRIPT FLUSH) while webhooks
// keep coming; every one of them is still stored.
func TestCreateAfterScriptFlush(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	create(t, b.store, samplePipeline())
	if err := b.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			p := samplePipeline()
			existing, _, err := b.store.CreatePipeline(ctx, p, orchestrator.Dedup{Commit: fmt.Sprint("flushed", i), CommitTTL: time.Minute})
			if err != nil || existing != 0 || p.ID == 0 {
				t.Errorf("create after SCRIPT FLUSH = %d (id %d), %v, want a new pipeline", existing, p.ID, err)
			}
		})
	}
	wg.Wait()
	if n, _ := b.rdb.ZCard(ctx, b.store.keyIndex()).Result(); n != 21 {
		t.Errorf("stored pipelines = %d, want 21", n)
	}
}

// TestCreateCancelledOrClosed: a request that gave up before its script was sent, or came after
// Close, writes nothing and says why.
func TestCreateCancelledOrClosed(t *testing.T) {
	b := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := b.store.CreatePipeline(ctx, samplePipeline(), orchestrator.Dedup{Commit: "c", CommitTTL: time.Minute}); !errors.Is(err, context.Canceled) {
		t.Errorf("create with a cancelled context = %v, want context.Canceled", err)
	}
	b.store.Close()
	if _, _, err := b.store.CreatePipeline(context.Background(), samplePipeline(), orchestrator.Dedup{Commit: "d", CommitTTL: time.Minute}); !errors.Is(err, errClosed) {
		t.Errorf("create after Close = %v, want %v", err, errClosed)
	}
	if n, _ := b.rdb.ZCard(context.Background(), b.store.keyIndex()).Result(); n != 0 {
		t.Errorf("stored pipelines = %d, want none", n)
	}
}

// TestCreateBatchBounded: a burst larger than maxCreateBatch goes out in more than one round
// trip: a batch holds at most maxCreateBatch scripts, so one burst never holds Redis up for
// long.
func TestCreateBatchBounded(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	c := b.store.creates
	c.startOnce.Do(func() {}) // no sender yet: the burst queues up
	const n = maxCreateBatch + 1
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p := samplePipeline()
			if existing, _, err := b.store.CreatePipeline(ctx, p, orchestrator.Dedup{Commit: fmt.Sprint("burst", i), CommitTTL: time.Minute}); err != nil || existing != 0 {
				t.Errorf("create %d = %d, %v, want a new pipeline", i, existing, err)
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); handingOver() < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d creates waiting to be handed over after 10 s", handingOver(), n)
		}
	}
	c.senders.Go(c.send)
	wg.Wait()
	if got := c.batches.Load(); got != 2 {
		t.Errorf("%d creates went out in %d round trips, want 2", n, got)
	}
}

// handingOver counts TestCreateBatchBounded's goroutines waiting in createBatcher.run to hand
// their call to a sender.
func handingOver() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "[select") && strings.Contains(g, "(*createBatcher).run(") && strings.Contains(g, "TestCreateBatchBounded") {
			n++
		}
	}
	return n
}
