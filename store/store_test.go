package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

type testBundle struct {
	rdb   *redis.Client
	store *Store
}

func setup(t *testing.T) testBundle {
	t.Helper()
	t.Parallel()
	rdb := testenv.Redis(t)
	s := New(rdb, Options{})
	t.Cleanup(func() { s.Close() })
	return testBundle{rdb: rdb, store: s}
}

func samplePipeline() *orchestrator.Pipeline {
	return &orchestrator.Pipeline{
		Trigger:   orchestrator.Trigger{Project: "g/app", ProjectID: 7, Kind: orchestrator.TriggerPush, Ref: "master", SHA: "abc123"},
		CreatedAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
		Jobs: []orchestrator.Job{
			{Name: "build", Stage: orchestrator.StageBuild, State: orchestrator.StateCreated, Attempt: 1},
			{Name: "test/unit", Stage: orchestrator.StageTest, State: orchestrator.StateCreated, Attempt: 1},
			{Name: "release", Stage: orchestrator.StageRelease, State: orchestrator.StateCreated, Attempt: 1},
		},
	}
}

// create stores a pipeline with no dedup keys in common with any other.
func create(t *testing.T, s *Store, p *orchestrator.Pipeline) {
	t.Helper()
	existing, _, err := s.CreatePipeline(context.Background(), p,
		orchestrator.Dedup{Commit: time.Now().String() + p.Trigger.SHA, CommitTTL: time.Minute})
	if err != nil || existing != 0 {
		t.Fatalf("CreatePipeline = %d, %v, want a new pipeline", existing, err)
	}
}

func TestPipelineRoundTrip(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	p := samplePipeline()
	create(t, b.store, p)
	if p.ID == 0 {
		t.Fatal("CreatePipeline left the id at 0")
	}
	p.Image, p.GitLabPipelineID = "sha256:feed", 99
	if err := b.store.UpdatePipeline(ctx, p); err != nil {
		t.Fatal(err)
	}
	// An update that sets only the digest must not clear the image.
	if err := b.store.UpdatePipeline(ctx, &orchestrator.Pipeline{ID: p.ID, Digest: "sha256:d"}); err != nil {
		t.Fatal(err)
	}
	p.Digest = "sha256:d"
	got, err := b.store.Pipeline(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(p, got); d != "" {
		t.Errorf("Pipeline(%d) mismatch (-want +got):\n%s", p.ID, d)
	}
	if _, err := b.store.Pipeline(ctx, p.ID+100); err == nil {
		t.Error("Pipeline(unknown) = nil error, want ErrNotFound")
	}
}

// TestSwapJobOneWinner has many goroutines race to move the same job; exactly one may.
func TestSwapJobOneWinner(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	p := samplePipeline()
	create(t, b.store, p)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			ok, _, err := b.store.SwapJob(ctx, p.ID, orchestrator.StateCreated, 1, orchestrator.Job{Name: "release", Stage: orchestrator.StageRelease, State: orchestrator.StateSkipped, Attempt: 1}, nil)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("SwapJob winners = %d, want 1", wins.Load())
	}
	got, _ := b.store.Pipeline(ctx, p.ID)
	if j, _ := got.Job("release"); j.State != orchestrator.StateSkipped {
		t.Errorf("release state = %s, want skipped", j.State)
	}
}

// TestReleasedIsACommit: the store keeps the commit a branch released, the last one written;
// which release may follow which is the guard's decision, by ancestry, under the release lock.
func TestReleasedIsACommit(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	for _, sha := range []string{"c2", "c1"} {
		if err := b.store.MarkReleased(ctx, "G/App", "master", sha); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := b.store.Released(ctx, "g/app", "master"); err != nil || got != "c1" {
		t.Errorf("Released(master) = %q, %v, want c1", got, err)
	}
	if got, err := b.store.Released(ctx, "g/app", "dev"); err != nil || got != "" {
		t.Errorf("Released(dev) = %q, %v, want none", got, err)
	}
}

// TestReleasedLegacyPipelineID: records written before releases were commits hold a pipeline
// id; the commit is read from that pipeline while its record is kept, and is unknown after.
func TestReleasedLegacyPipelineID(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	p := samplePipeline()
	if _, _, err := b.store.CreatePipeline(ctx, p, orchestrator.Dedup{Commit: "legacy", CommitTTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	b.rdb.Set(ctx, "gantry:released:g/app:master", p.ID, 0)
	b.rdb.Set(ctx, "gantry:released:g/app:old", 99999, 0)
	if got, err := b.store.Released(ctx, "G/App", "master"); err != nil || got != p.Trigger.SHA {
		t.Errorf("Released(master) = %q, %v, want %s, the commit of pipeline %d", got, err, p.Trigger.SHA, p.ID)
	}
	if got, err := b.store.Released(ctx, "g/app", "old"); err != nil || got != "" {
		t.Errorf("Released(old) = %q, %v, want unknown: pipeline 99999 is gone", got, err)
	}
	if err := b.store.MarkReleased(ctx, "g/app", "master", "c3"); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.store.Released(ctx, "g/app", "master"); got != "c3" {
		t.Errorf("Released(master) after a release = %q, want c3", got)
	}
}

// heldReleaseLock takes the release lock of g/app's master in a store of its own whose lock TTL
// is 300 ms, so renewal and loss show within a second.
func heldReleaseLock(t *testing.T) (s *Store, rdb *redis.Client, held context.Context, unlock func()) {
	t.Helper()
	rdb = testenv.Redis(t)
	s = New(rdb, Options{ReleaseLockTTL: 300 * time.Millisecond})
	t.Cleanup(func() { s.Close() })
	held, unlock, err := s.LockRelease(context.Background(), "g/app", "master")
	if err != nil {
		t.Fatal(err)
	}
	return s, rdb, held, unlock
}

// TestReleaseLockRenewed: a release lock outlives its TTL for as long as it is held, and is
// free again once unlocked.
func TestReleaseLockRenewed(t *testing.T) {
	t.Parallel()
	s, _, held, unlock := heldReleaseLock(t)
	ctx := context.Background()
	time.Sleep(time.Second) // more than three TTLs
	if _, _, err := s.LockRelease(ctx, "g/app", "master"); err != orchestrator.ErrLocked {
		t.Errorf("LockRelease after 3 TTLs held = %v, want ErrLocked: the lock must be renewed", err)
	}
	if held.Err() != nil {
		t.Errorf("held ended while the lock was renewed: %v", context.Cause(held))
	}
	unlock()
	if held.Err() == nil {
		t.Error("held still open after unlock")
	}
	_, unlock2, err := s.LockRelease(ctx, "g/app", "master")
	if err != nil {
		t.Fatalf("LockRelease after unlock = %v", err)
	}
	unlock2()
}

// TestReleaseLockLost: a lock taken over by someone else ends held, so the push does not start.
func TestReleaseLockLost(t *testing.T) {
	t.Parallel()
	_, rdb, held, unlock := heldReleaseLock(t)
	ctx := context.Background()
	defer unlock()
	rdb.Set(ctx, "gantry:release-lock:g/app:master", "another holder", 0)
	select {
	case <-held.Done():
		if !errors.Is(context.Cause(held), orchestrator.ErrLockLost) {
			t.Errorf("held ended with %v, want ErrLockLost", context.Cause(held))
		}
	case <-time.After(2 * time.Second):
		t.Fatal("held still open 2s after the lock was taken over")
	}
	unlock()
	if got := rdb.Get(ctx, "gantry:release-lock:g/app:master").Val(); got != "another holder" {
		t.Errorf("unlock of a lost lock deleted the new holder's lock (now %q)", got)
	}
}

// TestEnqueueOnce queues the same task twice and checks the worker runs it once.
func TestEnqueueOnce(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	var runs atomic.Int32
	release := make(chan struct{})
	w := NewWorker(b.rdb, WorkerOptions{Concurrency: 2, ShutdownGrace: time.Second})
	if err := w.Start(func(ctx context.Context, tk orchestrator.Task) error {
		runs.Add(1)
		<-release
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()
	task := orchestrator.Task{Kind: orchestrator.TaskJob, PipelineID: 1, Job: "test/unit", Attempt: 1}
	for range 3 {
		if err := b.store.Enqueue(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for runs.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.store.Enqueue(ctx, task); err != nil { // while it runs
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	close(release)
	if got := runs.Load(); got != 1 {
		t.Errorf("runs = %d, want 1", got)
	}
}

func TestLogAppends(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	for _, s := range []string{"step 1\n", "step 2\n"} {
		if err := b.store.AppendLog(ctx, 3, "build", 1, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := b.store.Log(ctx, 3, "build", 1); got != "step 1\nstep 2\n" {
		t.Errorf("Log = %q, want both steps", got)
	}
}

// TestSwapJobChecksTheAttempt: a move expected from the right state but another attempt is
// refused (a worker of an attempt given up on finishing the retried one), and a pipeline stored
// before attempts were kept is moved by its state alone, then checked from then on.
func TestSwapJobChecksTheAttempt(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	p := samplePipeline()
	create(t, b.store, p)
	build := orchestrator.Job{Name: "build", Stage: orchestrator.StageBuild, State: orchestrator.StatePending, Attempt: 1}
	if ok, _, err := b.store.SwapJob(ctx, p.ID, orchestrator.StateCreated, 1, build, nil); !ok || err != nil {
		t.Fatalf("created→pending = %v, %v", ok, err)
	}
	build.State = orchestrator.StateRunning
	if ok, _, _ := b.store.SwapJob(ctx, p.ID, orchestrator.StatePending, 2, build, nil); ok {
		t.Error("a move expected from attempt 2 moved attempt 1")
	}
	if ok, _, err := b.store.SwapJob(ctx, p.ID, orchestrator.StatePending, 1, build, nil); !ok || err != nil {
		t.Fatalf("pending→running at attempt 1 = %v, %v", ok, err)
	}
	// Attempt 2 runs now (given up on, retried, started again: each a swap that names it).
	b.rdb.HSet(ctx, b.store.keyPipeline(p.ID), attemptPrefix+"build", 2)
	build.State = orchestrator.StateSuccess
	if ok, _, _ := b.store.SwapJob(ctx, p.ID, orchestrator.StateRunning, 1, build, nil); ok {
		t.Error("the worker of attempt 1 finished attempt 2")
	}
	// A record from before attempts were kept: no attempt field.
	b.rdb.HDel(ctx, b.store.keyPipeline(p.ID), attemptPrefix+"build")
	build.Attempt = 2
	if ok, _, err := b.store.SwapJob(ctx, p.ID, orchestrator.StateRunning, 2, build, nil); !ok || err != nil {
		t.Fatalf("legacy record: %v, %v, want moved by its state", ok, err)
	}
	if got, _ := b.rdb.HGet(ctx, b.store.keyPipeline(p.ID), attemptPrefix+"build").Result(); got != "2" {
		t.Errorf("attempt field after the swap = %q, want 2", got)
	}
}

// TestBranchListsOnlyUnfinished: a push pipeline leaves its branch's list when it finishes, so
// superseding looks only at what still runs; other kinds never touch the list.
func TestBranchListsOnlyUnfinished(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	var ps []*orchestrator.Pipeline
	for i := range 3 {
		p := samplePipeline()
		p.Trigger.Ref, p.Trigger.SHA = "feature", fmt.Sprintf("sha%d", i)
		create(t, b.store, p)
		ps = append(ps, p)
	}
	if err := b.store.MarkFinished(ctx, ps[0], time.Now()); err != nil {
		t.Fatal(err)
	}
	mr := samplePipeline()
	mr.Trigger.Kind, mr.Trigger.Ref = orchestrator.TriggerMergeRequest, "feature"
	create(t, b.store, mr)
	if err := b.store.MarkFinished(ctx, mr, time.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := b.store.BranchPipelines(ctx, "G/App", "feature", ps[2].ID+10)
	if want := []int64{ps[1].ID, ps[2].ID}; err != nil || !cmp.Equal(got, want) {
		t.Errorf("BranchPipelines = %v, %v, want the unfinished %v", got, err, want)
	}
	if n, _ := b.rdb.ZCard(ctx, b.store.keyFinished()).Result(); n != 2 {
		t.Errorf("%d pipelines in the finished set, want 2", n)
	}
}

// TestOpenAndWaitingOutboxes: a pipeline is open from its creation to MarkFinished, and listed
// as having a waiting outbox from a status entry until the outbox is empty: the sets the sweep
// drives on when a step was lost.
func TestOpenAndWaitingOutboxes(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	p := samplePipeline()
	create(t, b.store, p)
	later := time.Now().Add(time.Hour)
	if ids, err := b.store.Open(ctx, later); err != nil || !cmp.Equal(ids, []int64{p.ID}) {
		t.Errorf("Open = %v, %v, want [%d]", ids, err, p.ID)
	}
	if ids, _ := b.store.Open(ctx, time.Now().Add(-time.Hour)); len(ids) != 0 {
		t.Errorf("Open before its creation = %v, want none", ids)
	}
	j := orchestrator.Job{Name: "build", Stage: orchestrator.StageBuild, State: orchestrator.StatePending, Attempt: 1}
	for _, post := range []*orchestrator.StatusEntry{{Job: "build", Attempt: 1, State: orchestrator.StatePending}} {
		if ok, _, err := b.store.SwapJob(ctx, p.ID, orchestrator.StateCreated, 1, j, post); !ok || err != nil {
			t.Fatalf("SwapJob = %v, %v", ok, err)
		}
	}
	if ids, _ := b.store.WaitingOutboxes(ctx, later); !cmp.Equal(ids, []int64{p.ID}) {
		t.Errorf("WaitingOutboxes = %v, want [%d]", ids, p.ID)
	}
	entry, _ := b.store.NextStatus(ctx, p.ID)
	if err := b.store.AckStatus(ctx, p.ID, entry.Seq); err != nil {
		t.Fatal(err)
	}
	if ids, _ := b.store.WaitingOutboxes(ctx, later); len(ids) != 0 {
		t.Errorf("WaitingOutboxes after the last ack = %v, want none", ids)
	}
	if err := b.store.MarkFinished(ctx, p, time.Now()); err != nil {
		t.Fatal(err)
	}
	if ids, _ := b.store.Open(ctx, later); len(ids) != 0 {
		t.Errorf("Open after MarkFinished = %v, want none", ids)
	}
}

// TestIDsNeverStartAgain: a Redis without gantry's id counter — new, or one that lost its data —
// starts ids in a new epoch, above every id the previous one gave, so the links GitLab holds
// never open another pipeline; a counter that exists is continued.
func TestIDsNeverStartAgain(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	first := samplePipeline()
	create(t, b.store, first)
	if min := idEpoch(time.Now().Add(-time.Minute)); first.ID <= min {
		t.Errorf("first id on a new Redis = %d, want above %d", first.ID, min)
	}
	second := samplePipeline()
	second.Trigger.SHA = "second"
	create(t, b.store, second)
	if second.ID != first.ID+1 {
		t.Errorf("second id = %d, want %d", second.ID, first.ID+1)
	}
	// A busy installation: started an hour ago, it made 30,000 pipelines (8 a second) before
	// its Redis lost everything.
	if err := b.rdb.Set(ctx, b.store.keySeq(), idEpoch(time.Now().Add(-time.Hour))+30_000, 0).Err(); err != nil {
		t.Fatal(err)
	}
	last := samplePipeline()
	last.Trigger.SHA = "last"
	create(t, b.store, last)
	if err := b.rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	again := samplePipeline()
	again.Trigger.SHA = "after the loss"
	create(t, b.store, again)
	if again.ID <= last.ID {
		t.Errorf("after the loss the first id is %d, at or below the lost epoch's last %d", again.ID, last.ID)
	}
	t.Logf("ids: first %d, last before the loss %d, first after %d", first.ID, last.ID, again.ID)
}

// TestHeads: a branch's last head is the commit of its newest push or reconcile pipeline (not
// of an API or merge request one), and a head is seen twice only by two sightings of it.
func TestHeads(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	if h, err := b.store.LastHead(ctx, "g/app", "master"); h != "" || err != nil {
		t.Errorf("LastHead of a new branch = %q, %v", h, err)
	}
	for _, tr := range []orchestrator.Trigger{
		{Project: "g/app", Kind: orchestrator.TriggerPush, Ref: "master", SHA: "aaa"},
		{Project: "g/app", Kind: orchestrator.TriggerReconcile, Ref: "master", SHA: "bbb"},
		{Project: "g/app", Kind: orchestrator.TriggerAPI, Ref: "master", SHA: "old"},
		{Project: "g/app", Kind: orchestrator.TriggerMergeRequest, Ref: "master", SHA: "mr"},
	} {
		p := samplePipeline()
		p.Trigger = tr
		create(t, b.store, p)
	}
	if h, _ := b.store.LastHead(ctx, "G/App", "master"); h != "bbb" {
		t.Errorf("LastHead = %q, want bbb", h)
	}
	for i, want := range []bool{false, true, false, true} {
		sha := []string{"x", "x", "y", "y"}[i]
		if again, err := b.store.SeenHead(ctx, "g/app", "master", sha, time.Minute); again != want || err != nil {
			t.Errorf("sighting %d of %s = %v, %v, want %v", i+1, sha, again, err, want)
		}
	}
	if again, _ := b.store.SeenHead(ctx, "g/app", "master", "z", 10*time.Millisecond); again {
		t.Error("a new head counted as seen again")
	}
	time.Sleep(30 * time.Millisecond)
	if again, _ := b.store.SeenHead(ctx, "g/app", "master", "z", time.Minute); again {
		t.Error("a sighting older than its ttl still counted")
	}
}

// TestBranchPipelinesOnlyOlder: the pipelines a push supersedes are the branch's older ones,
// never the push itself nor a newer one, or a push would cancel itself or its successor.
func TestBranchPipelinesOnlyOlder(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	var ids []int64
	for i := range 3 {
		p := samplePipeline()
		p.Trigger.SHA = fmt.Sprintf("sha%d", i)
		create(t, b.store, p)
		ids = append(ids, p.ID)
	}
	for i, want := range [][]int64{{}, ids[:1], ids[:2]} {
		got, err := b.store.BranchPipelines(ctx, "g/app", "master", ids[i])
		if err != nil || !cmp.Equal(got, want) {
			t.Errorf("BranchPipelines before pipeline %d = %v, %v, want the older %v", ids[i], got, err, want)
		}
	}
}

// TestHoldEndsWhenRenewalHangs: a renewal that gets no answer is given up after a third of the
// TTL, so a holder whose Redis stopped answering learns it lost the lock soon after the lock
// could expire, not long after another holder could have taken it.
func TestHoldEndsWhenRenewalHangs(t *testing.T) {
	b := setup(t)
	const ttl = 300 * time.Millisecond
	start := time.Now()
	held, unlock, err := b.store.hold(context.Background(), "gantry:hanging-lock", "token", ttl, func(ctx context.Context) (bool, error) {
		<-ctx.Done() // no answer
		return false, ctx.Err()
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	select {
	case <-held.Done():
		if took := time.Since(start); took > 2*ttl || !errors.Is(context.Cause(held), orchestrator.ErrLockLost) {
			t.Errorf("held ended after %v with %v, want ErrLockLost within %v (the TTL and a renewal's wait)", took, context.Cause(held), 2*ttl)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held still open 5 s after its renewals stopped getting answers")
	}
}

// TestCancellations: a cancellation published by one process reaches every listener on the
// same database as the pipeline's id, and none on another database (pub/sub channels are
// shared by the whole server); a message that is not an id is passed over; the channel closes
// when its context ends.
func TestCancellations(t *testing.T) {
	b := setup(t)
	other := New(testenv.Redis(t), Options{})
	t.Cleanup(func() { other.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mine, theirs := b.store.Cancellations(ctx), other.Cancellations(ctx)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		n := b.rdb.PubSubNumSub(ctx, b.store.channelCancel(), other.channelCancel()).Val()
		if n[b.store.channelCancel()] == 1 && n[other.channelCancel()] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscribers after 5 s: %v", n)
		}
	}
	must(t, b.rdb.Publish(ctx, b.store.channelCancel(), "not an id").Err())
	must(t, b.store.PublishCancel(ctx, 42))
	select {
	case id := <-mine:
		if id != 42 {
			t.Errorf("cancellation of %d received, want 42", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no cancellation within 5 s")
	}
	select {
	case id := <-theirs:
		t.Errorf("a store on another database received the cancellation of %d", id)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	for range mine { // closes once ctx has ended
	}
}

// TestFinishedBefore: the pipelines whose images the sweep may remove are those finished by
// the given time, until Discarded says the image is gone.
func TestFinishedBefore(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	p := samplePipeline()
	create(t, b.store, p)
	at := time.Now().Add(-time.Hour)
	must(t, b.store.MarkFinished(ctx, p, at))
	if ids, err := b.store.FinishedBefore(ctx, at.Add(-time.Millisecond)); err != nil || len(ids) != 0 {
		t.Errorf("FinishedBefore(before its end) = %v, %v, want none", ids, err)
	}
	if ids, err := b.store.FinishedBefore(ctx, at); err != nil || !cmp.Equal(ids, []int64{p.ID}) {
		t.Errorf("FinishedBefore(its end) = %v, %v, want [%d]", ids, err, p.ID)
	}
	must(t, b.store.Discarded(ctx, p.ID))
	if ids, _ := b.store.FinishedBefore(ctx, time.Now()); len(ids) != 0 {
		t.Errorf("FinishedBefore after Discarded = %v, want none", ids)
	}
}

// TestWaitNew: every stored pipeline is handed to a waiter once, oldest first.
func TestWaitNew(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	var want []int64
	for _, sha := range []string{"one", "two"} {
		p := samplePipeline()
		p.Trigger.SHA = sha
		create(t, b.store, p)
		want = append(want, p.ID)
	}
	for _, id := range want {
		if got, err := b.store.WaitNew(ctx); err != nil || got != id {
			t.Errorf("WaitNew = %d, %v, want %d", got, err, id)
		}
	}
}
