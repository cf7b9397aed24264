package orchestrator

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestReconcileStartsWhatNoWebhookAnnounced: master's head in GitLab has no pipeline (its push
// webhook was lost). The first run only notes it (a webhook may be on its way); the second
// starts a reconcile pipeline that runs and releases as the push would have; the third finds
// the head has its pipeline and starts nothing.
func TestReconcileStartsWhatNoWebhookAnnounced(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	ctx := context.Background()
	for run, want := range []int{0, 1, 0} {
		n, err := b.engine.Reconcile(ctx, time.Minute)
		if err != nil || n != want {
			t.Fatalf("run %d: Reconcile = %d, %v, want %d", run+1, n, err, want)
		}
		b.drain(t, 0)
	}
	b.store.mu.Lock()
	var got *Pipeline
	for _, p := range b.store.pipelines {
		got = clone(p)
	}
	pipelines := len(b.store.pipelines)
	b.store.mu.Unlock()
	if pipelines != 1 || got.Trigger.Kind != TriggerReconcile || got.Trigger.Ref != "master" || got.Trigger.SHA != "head-of-master" {
		t.Fatalf("%d pipelines, last %+v; want one reconcile of master's head", pipelines, got.Trigger)
	}
	if got.State() != StateSuccess {
		t.Errorf("reconcile pipeline = %s, want success", got.State())
	}
	if r, _ := b.store.Released(ctx, "g/app", "master"); r != "head-of-master" {
		t.Errorf("Released = %q, want the reconciled head: it releases as the push would have", r)
	}
}

// TestReconcileLeavesAnnouncedHeads: a branch whose head has a push pipeline is left alone, and
// a head that changes between two runs is not taken for a lost one.
func TestReconcileLeavesAnnouncedHeads(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	ctx := context.Background()
	b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "master", SHA: "head-of-master"})
	b.drain(t, 0)
	for range 3 {
		if n, err := b.engine.Reconcile(ctx, time.Minute); err != nil || n != 0 {
			t.Fatalf("Reconcile = %d, %v, want 0", n, err)
		}
	}
	if again, _ := b.store.SeenHead(ctx, "g/app", "dev", "a", time.Minute); again {
		t.Error("a first sighting counted as the second")
	}
	if again, _ := b.store.SeenHead(ctx, "g/app", "dev", "b", time.Minute); again {
		t.Error("another head counted as a second sighting")
	}
}

// TestReconcileHonorsSkipCI: a lost push whose commit says [skip ci] gets a pipeline that posts
// nothing and runs nothing, as the push would have.
func TestReconcileHonorsSkipCI(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	ctx := context.Background()
	b.engine.source = skipSource{}
	for range 2 {
		if _, err := b.engine.Reconcile(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
		b.drain(t, 0)
	}
	b.store.mu.Lock()
	defer b.store.mu.Unlock()
	for _, p := range b.store.pipelines {
		if p.State() != StateSkipped {
			t.Errorf("pipeline %d = %s, want skipped", p.ID, p.State())
		}
	}
	if len(b.store.pipelines) != 1 || len(b.statuses.targets) != 0 {
		t.Errorf("%d pipelines, statuses %v; want one, nothing posted", len(b.store.pipelines), b.statuses.targets)
	}
}

// skipSource is fakeSource whose every commit asks to skip CI.
type skipSource struct{ fakeSource }

func (skipSource) CommitMessage(context.Context, int64, string) (string, error) {
	return "docs only [skip ci]", nil
}

// seenArgs is a memStore that records what SeenHead is asked.
type seenArgs struct {
	*memStore
	asked []string // "<branch> <ttl>"
}

func (s *seenArgs) SeenHead(ctx context.Context, project, branch, sha string, ttl time.Duration) (bool, error) {
	s.asked = append(s.asked, fmt.Sprintf("%s %s", branch, ttl))
	return s.memStore.SeenHead(ctx, project, branch, sha, ttl)
}

// TestReconcileLooksAtTheDefaultBranch: the default branch is reconciled with the release
// branches even when it does not release, and a sighting is kept for three runs' interval, so
// the next run still finds it.
func TestReconcileLooksAtTheDefaultBranch(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	ctx := context.Background()
	proj, _ := b.engine.Project("g/app")
	proj.Release.Branches = []string{"release"}
	b.engine.projects["g/app"] = proj
	s := &seenArgs{memStore: b.store}
	b.engine.store = s
	for run, want := range []int{0, 2} {
		if n, err := b.engine.Reconcile(ctx, time.Minute); err != nil || n != want {
			t.Fatalf("run %d: Reconcile = %d, %v, want %d", run+1, n, err, want)
		}
	}
	want := []string{"release 3m0s", "master 3m0s", "release 3m0s", "master 3m0s"}
	if !slices.Equal(s.asked, want) {
		t.Errorf("SeenHead asked %v, want %v", s.asked, want)
	}
}
