package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// errInjected is the error a faulty store or queue returns.
var errInjected = errors.New("injected fault")

// faults fails the n-th store or queue call it counts (1-based) and counts them all. With after,
// the failing call is carried out first, as when Redis did the write and its answer was lost.
type faults struct {
	mu     sync.Mutex
	calls  int
	failAt int
	after  bool
}

// next counts a call and says whether it fails, and whether it is carried out.
func (f *faults) next() (fail, carryOut bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls != f.failAt {
		return false, true
	}
	return true, f.after
}

// faultyStore is the engine's store with faults injected into each step that writes or reads
// between two states.
type faultyStore struct {
	Store
	f *faults
}

func (s faultyStore) SwapJob(ctx context.Context, id int64, from State, attempt int, j Job, post *StatusEntry) (bool, int64, error) {
	fail, do := s.f.next()
	if !do {
		return false, 0, errInjected
	}
	ok, seq, err := s.Store.SwapJob(ctx, id, from, attempt, j, post)
	if fail {
		return false, 0, errInjected
	}
	return ok, seq, err
}

func (s faultyStore) Started(ctx context.Context, id int64) error {
	return s.write(func() error { return s.Store.Started(ctx, id) })
}

func (s faultyStore) MarkFinished(ctx context.Context, p *Pipeline, at time.Time) error {
	return s.write(func() error { return s.Store.MarkFinished(ctx, p, at) })
}

func (s faultyStore) UpdatePipeline(ctx context.Context, p *Pipeline) error {
	return s.write(func() error { return s.Store.UpdatePipeline(ctx, p) })
}

func (s faultyStore) AckStatus(ctx context.Context, id, seq int64) error {
	return s.write(func() error { return s.Store.AckStatus(ctx, id, seq) })
}

func (s faultyStore) Pipeline(ctx context.Context, id int64) (*Pipeline, error) {
	if fail, _ := s.f.next(); fail {
		return nil, errInjected
	}
	return s.Store.Pipeline(ctx, id)
}

func (s faultyStore) write(do func() error) error {
	fail, carryOut := s.f.next()
	if carryOut {
		if err := do(); err != nil {
			return err
		}
	}
	if fail {
		return errInjected
	}
	return nil
}

// faultyQueue is the engine's queue with the same faults.
type faultyQueue struct {
	Queue
	f *faults
}

func (q faultyQueue) Enqueue(ctx context.Context, t Task) error {
	fail, carryOut := q.f.next()
	if carryOut {
		if err := q.Queue.Enqueue(ctx, t); err != nil {
			return err
		}
	}
	if fail {
		return errInjected
	}
	return nil
}

// runWithFault pushes a release pipeline with the fault f and runs it as workers and the sweep
// would: tasks retried twice by the queue, then the sweep every two minutes, a few times.
func runWithFault(t *testing.T, f *faults) (engineBundle, *Pipeline) {
	t.Helper()
	b := setupEngine(t)
	clock := time.Unix(1e9, 0)
	b.engine.now = func() time.Time { return clock }
	b.engine.store = faultyStore{Store: b.store, f: f}
	b.engine.queue = faultyQueue{Queue: b.queue, f: f}
	a, err := b.engine.Accept(context.Background(), Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "master", SHA: "0123456789"})
	if err != nil {
		// The fault hit the intake: the webhook answers 503 and GitLab's resend starts over.
		return b, nil
	}
	b.drain(t, 2)
	for range 4 {
		clock = clock.Add(2 * time.Minute)
		b.engine.Sweep(context.Background()) // a failed sweep is tried again at the next tick
		b.drain(t, 2)
	}
	return b, a.Pipeline
}

// TestNothingStuckAfterAnyFault injects one store or queue error at each step of a pipeline's
// life, before and after the write it fails: every time, the pipeline still ends and every
// commit status GitLab last got is terminal.
func TestNothingStuckAfterAnyFault(t *testing.T) {
	t.Parallel()
	clean := &faults{}
	runWithFault(t, clean)
	steps := clean.calls
	if steps < 30 {
		t.Fatalf("a clean run made %d store and queue calls; the test is not counting them", steps)
	}
	for k := 1; k <= steps; k++ {
		for _, after := range []bool{false, true} {
			t.Run(fmt.Sprintf("call %d after %v", k, after), func(t *testing.T) {
				t.Parallel()
				b, p := runWithFault(t, &faults{failAt: k, after: after})
				if p == nil {
					return
				}
				got, err := b.store.Pipeline(context.Background(), p.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !got.State().Terminal() {
					t.Fatalf("pipeline = %s, jobs %+v: stuck", got.State(), got.Jobs)
				}
				for _, j := range got.Jobs {
					posts := b.statuses.posts[StatusName("gantry", j.Name)]
					if len(posts) == 0 || !State(posts[len(posts)-1]).Terminal() {
						t.Errorf("job %s is %s, GitLab last got %v", j.Name, j.State, posts)
					}
				}
			})
		}
	}
}
