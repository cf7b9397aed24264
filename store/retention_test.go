package store

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/redis/go-redis/v9"
)

// finishedPipeline stores a pipeline whose jobs all ended at ended, with a log per job and an
// outbox entry, and records its end.
func finishedPipeline(t *testing.T, b testBundle, sha string, ended time.Time) *orchestrator.Pipeline {
	t.Helper()
	ctx := context.Background()
	p := samplePipeline()
	p.Trigger.SHA = sha
	create(t, b.store, p)
	for i := range p.Jobs {
		j := p.Jobs[i]
		j.State, j.StartedAt, j.FinishedAt = orchestrator.StateSuccess, ended.Add(-time.Minute), ended
		post := &orchestrator.StatusEntry{Job: j.Name, Attempt: 1, State: j.State}
		if ok, _, err := b.store.SwapJob(ctx, p.ID, orchestrator.StateCreated, 1, j, post); !ok || err != nil {
			t.Fatalf("SwapJob = %v, %v", ok, err)
		}
		p.Jobs[i] = j
		if err := b.store.AppendLog(ctx, p.ID, j.Name, 1, []byte("output of "+j.Name+"\n")); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.store.MarkFinished(ctx, p, ended); err != nil {
		t.Fatal(err)
	}
	return p
}

// keysOf counts the Redis keys of one pipeline (its hash, logs, outbox, locks).
func keysOf(t *testing.T, b testBundle, id int64) int {
	t.Helper()
	var n int
	iter := b.rdb.Scan(context.Background(), 0, b.store.keyPipeline(id)+"*", 100).Iterator()
	for iter.Next(context.Background()) {
		if k := iter.Val(); k == b.store.keyPipeline(id) || len(k) > len(b.store.keyPipeline(id)) && k[len(b.store.keyPipeline(id))] == ':' {
			n++
		}
	}
	return n
}

// TestHousekeepExpires: a pipeline that ended before the retention goes whole — record, logs,
// outbox, index entries; one that ended before the log retention keeps its record without its
// logs; an unfinished one is not touched, however old.
func TestHousekeepExpires(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	now := time.Now()
	old := finishedPipeline(t, b, "old", now.Add(-40*24*time.Hour))
	middle := finishedPipeline(t, b, "middle", now.Add(-10*24*time.Hour))
	fresh := finishedPipeline(t, b, "fresh", now.Add(-time.Hour))
	running := samplePipeline()
	running.Trigger.SHA = "running"
	create(t, b.store, running)
	imaged := finishedPipeline(t, b, "imaged", now.Add(-40*24*time.Hour))
	for _, p := range []*orchestrator.Pipeline{old, middle, fresh} {
		if err := b.store.Discarded(ctx, p.ID); err != nil { // their images are gone
			t.Fatal(err)
		}
	}

	sw, err := b.store.Housekeep(ctx, Retention{Pipelines: 30 * 24 * time.Hour, Logs: 7 * 24 * time.Hour}, now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Swept{Ran: true, Pipelines: 1, Logs: 3}); sw != want {
		t.Errorf("Housekeep = %+v, want %+v", sw, want)
	}
	if n := keysOf(t, b, old.ID); n != 0 {
		t.Errorf("%d keys of the expired pipeline left", n)
	}
	if _, err := b.store.Pipeline(ctx, old.ID); err == nil {
		t.Error("the expired pipeline is still readable")
	}
	for _, key := range []string{b.store.keyIndex(), b.store.keyEnded(), b.store.keyLogged()} {
		if _, err := b.rdb.ZScore(ctx, key, strconv.FormatInt(old.ID, 10)).Result(); err == nil {
			t.Errorf("the expired pipeline is still in %s", key)
		}
	}
	if _, err := b.store.Pipeline(ctx, middle.ID); err != nil {
		t.Errorf("the pipeline past the log retention only: %v", err)
	}
	if text, _ := b.store.Log(ctx, middle.ID, "build", 1); text != "" {
		t.Errorf("its log is still %q", text)
	}
	if text, _ := b.store.Log(ctx, fresh.ID, "build", 1); text == "" {
		t.Error("a fresh pipeline's log was removed")
	}
	if _, err := b.store.Pipeline(ctx, running.ID); err != nil {
		t.Errorf("the unfinished pipeline: %v", err)
	}
	if _, err := b.store.Pipeline(ctx, imaged.ID); err != nil {
		t.Errorf("a pipeline whose image is still kept was removed: %v", err)
	}
}

// TestHousekeepOncePerInterval: many replicas on one tick make one run.
func TestHousekeepOncePerInterval(t *testing.T) {
	b := setup(t)
	var ran atomic.Int32
	var wg sync.WaitGroup
	now := time.Now()
	for range 8 {
		wg.Go(func() {
			sw, err := b.store.Housekeep(context.Background(), Retention{Pipelines: time.Hour}, now, time.Minute)
			if err != nil {
				t.Error(err)
			}
			if sw.Ran {
				ran.Add(1)
			}
		})
	}
	wg.Wait()
	if ran.Load() != 1 {
		t.Errorf("%d runs in one interval, want 1", ran.Load())
	}
}

// TestHousekeepBackfillsOldRecords: a pipeline that finished before ends were recorded is given
// its last job's end, and then expires like the others.
func TestHousekeepBackfillsOldRecords(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	now := time.Now()
	p := finishedPipeline(t, b, "legacy", now.Add(-40*24*time.Hour))
	b.store.Discarded(ctx, p.ID)
	b.rdb.ZRem(ctx, b.store.keyEnded(), p.ID)
	b.rdb.ZRem(ctx, b.store.keyLogged(), p.ID)
	sw, err := b.store.Housekeep(ctx, Retention{Pipelines: 30 * 24 * time.Hour}, now, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if sw.Backfilled != 1 || sw.Pipelines != 1 || keysOf(t, b, p.ID) != 0 {
		t.Errorf("Housekeep = %+v, %d keys left; want it backfilled and expired", sw, keysOf(t, b, p.ID))
	}
}

// TestHousekeepZeroKeepsForever: a zero retention keeps pipelines and logs forever, however
// old; and the run's lock lasts nine tenths of the interval, so the next tick can run again
// while replicas on this tick still find it taken.
func TestHousekeepZeroKeepsForever(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	p := finishedPipeline(t, b, "ancient", time.Now().Add(-400*24*time.Hour))
	must(t, b.store.Discarded(ctx, p.ID))
	sw, err := b.store.Housekeep(ctx, Retention{}, time.Now(), time.Minute)
	if err != nil || sw != (Swept{Ran: true}) {
		t.Errorf("Housekeep(keep forever) = %+v, %v, want a run that removed nothing", sw, err)
	}
	if text, _ := b.store.Log(ctx, p.ID, "build", 1); text == "" {
		t.Error("a log was removed under a zero log retention")
	}
	if ttl := b.rdb.PTTL(ctx, b.store.keyHousekeeping()).Val(); ttl > 54*time.Second || ttl < 50*time.Second {
		t.Errorf("housekeeping lock expires in %v, want 54s (9/10 of the interval)", ttl)
	}
}

// TestHousekeepOddRecords: a finished pipeline whose record is already gone still leaves every
// index, and a push that was left in its branch's set (finished before MarkFinished took it
// out) leaves that set when it expires, so superseding never looks at it again.
func TestHousekeepOddRecords(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	ended := time.Now().Add(-40 * 24 * time.Hour)
	gone := finishedPipeline(t, b, "gone", ended)
	stale := finishedPipeline(t, b, "stale", ended)
	for _, p := range []*orchestrator.Pipeline{gone, stale} {
		must(t, b.store.Discarded(ctx, p.ID))
	}
	b.rdb.Del(ctx, b.store.keyPipeline(gone.ID))
	branch := b.store.keyBranch(stale.Trigger.Project, stale.Trigger.Ref)
	b.rdb.ZAdd(ctx, branch, redis.Z{Score: float64(stale.ID), Member: stale.ID})
	sw, err := b.store.Housekeep(ctx, Retention{Pipelines: 30 * 24 * time.Hour, Logs: 7 * 24 * time.Hour}, time.Now(), time.Minute)
	if want := (Swept{Ran: true, Pipelines: 2, Logs: 2}); err != nil || sw != want {
		t.Errorf("Housekeep = %+v, %v, want %+v", sw, err, want)
	}
	for _, key := range []string{b.store.keyIndex(), b.store.keyEnded(), b.store.keyLogged(), b.store.keyOpen()} {
		if n, _ := b.rdb.ZCard(ctx, key).Result(); n != 0 {
			t.Errorf("%d pipelines left in %s", n, key)
		}
	}
	if n, _ := b.rdb.ZCard(ctx, branch).Result(); n != 0 {
		t.Errorf("the expired push is still in its branch's set")
	}
}

// TestHousekeepBackfillResumes: the backfill of ends goes on from where the last run stopped,
// and a pipeline stored since is backfilled by the next run.
func TestHousekeepBackfillResumes(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	legacy := func(sha string) *orchestrator.Pipeline {
		p := finishedPipeline(t, b, sha, time.Now().Add(-time.Hour))
		b.rdb.ZRem(ctx, b.store.keyEnded(), p.ID)
		b.rdb.ZRem(ctx, b.store.keyLogged(), p.ID)
		return p
	}
	for i, sha := range []string{"first", "second"} {
		p := legacy(sha)
		time.Sleep(5 * time.Millisecond) // the last run's interval is over
		sw, err := b.store.Housekeep(ctx, Retention{}, time.Now(), time.Millisecond)
		if err != nil || sw.Backfilled != 1 {
			t.Errorf("run %d: Housekeep = %+v, %v, want pipeline %d backfilled", i+1, sw, err, p.ID)
		}
		if got, _ := b.rdb.Get(ctx, b.store.keyBackfill()).Int64(); got != p.ID {
			t.Errorf("run %d: backfill mark = %d, want %d, the last pipeline looked at", i+1, got, p.ID)
		}
	}
}
