package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/redis/go-redis/v9"
)

// TestCreateDedup races the same event in through several deliveries: one pipeline results, and
// every duplicate names it.
func TestCreateDedup(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	d := orchestrator.Dedup{Delivery: "delivery-1", DeliveryTTL: time.Hour, Commit: "g/app|push|master|abc", CommitTTL: time.Minute}
	ids := make([]int64, 10)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			p := samplePipeline()
			existing, _, err := b.store.CreatePipeline(ctx, p, d)
			if err != nil {
				t.Error(err)
			}
			ids[i] = max(existing, p.ID)
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || id == 0 {
			t.Fatalf("pipelines = %v, want one id for all", ids)
		}
	}
	if n, _ := b.rdb.ZCard(ctx, b.store.keyIndex()).Result(); n != 1 {
		t.Errorf("stored pipelines = %d, want 1", n)
	}
	// A resend of another delivery of the same content, and the same delivery after the content
	// window, both name the first pipeline.
	other := d
	other.Delivery = "delivery-2"
	if existing, _, _ := b.store.CreatePipeline(ctx, samplePipeline(), other); existing != ids[0] {
		t.Errorf("same content, other delivery: existing = %d, want %d", existing, ids[0])
	}
	b.rdb.Del(ctx, b.store.keyDedup("commit", d.Commit))
	if existing, _, _ := b.store.CreatePipeline(ctx, samplePipeline(), d); existing != ids[0] {
		t.Errorf("same delivery after the window: existing = %d, want %d", existing, ids[0])
	}
	fresh := orchestrator.Dedup{Commit: "g/app|push|master|def", CommitTTL: time.Minute}
	if existing, _, _ := b.store.CreatePipeline(ctx, samplePipeline(), fresh); existing != 0 {
		t.Errorf("new content: existing = %d, want a new pipeline", existing)
	}
}

func TestUnstarted(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	p := samplePipeline()
	create(t, b.store, p)
	ids, err := b.store.Unstarted(ctx, time.Now().Add(time.Second))
	if err != nil || len(ids) != 1 || ids[0] != p.ID {
		t.Fatalf("Unstarted = %v, %v, want [%d]", ids, err, p.ID)
	}
	if ids, _ := b.store.Unstarted(ctx, time.Now().Add(-time.Minute)); len(ids) != 0 {
		t.Errorf("Unstarted(a minute ago) = %v, want none", ids)
	}
	b.store.Started(ctx, p.ID)
	if ids, _ := b.store.Unstarted(ctx, time.Now().Add(time.Second)); len(ids) != 0 {
		t.Errorf("Unstarted after Started = %v, want none", ids)
	}
}

// TestOutboxInOrder: entries come out in the order of their transitions and leave only when
// acknowledged; a stale ack removes nothing.
func TestOutboxInOrder(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	p := samplePipeline()
	create(t, b.store, p)
	steps := []orchestrator.State{orchestrator.StatePending, orchestrator.StateRunning, orchestrator.StateSuccess}
	from := orchestrator.StateCreated
	for _, st := range steps {
		ok, seq, err := b.store.SwapJob(ctx, p.ID, from, 1, orchestrator.Job{Name: "build", State: st, Attempt: 1},
			&orchestrator.StatusEntry{Job: "build", Attempt: 1, State: st})
		if err != nil || !ok || seq == 0 {
			t.Fatalf("SwapJob(%s) = %v, %d, %v", st, ok, seq, err)
		}
		from = st
	}
	if err := b.store.AckStatus(ctx, p.ID, 99); err != nil {
		t.Fatal(err)
	}
	for _, st := range steps {
		e, err := b.store.NextStatus(ctx, p.ID)
		if err != nil || e == nil || e.State != st {
			t.Fatalf("NextStatus = %+v, %v, want %s", e, err, st)
		}
		must(t, b.store.AckStatus(ctx, p.ID, e.Seq))
	}
	if e, _ := b.store.NextStatus(ctx, p.ID); e != nil {
		t.Errorf("NextStatus after all acks = %+v, want nil", e)
	}
}

func TestStatusLock(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	unlock, err := b.store.LockStatuses(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.LockStatuses(ctx, 5); err != orchestrator.ErrLocked {
		t.Errorf("second LockStatuses = %v, want ErrLocked", err)
	}
	unlock()
	again, err := b.store.LockStatuses(ctx, 5)
	if err != nil {
		t.Errorf("LockStatuses after unlock = %v", err)
	} else {
		again()
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCreateDedupKeysExpire: both dedup keys carry their own TTL — the delivery key
// DeliveryTTL, the content key CommitTTL — so neither is kept forever nor forgotten early; a
// duplicate, by delivery or by content, names the first pipeline; and a new delivery of known
// content is remembered for DeliveryTTL too, so its own resend is a duplicate after the
// content window.
func TestCreateDedupKeysExpire(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	d := orchestrator.Dedup{Delivery: "first", DeliveryTTL: time.Hour, Commit: "g/app|push|master|abc", CommitTTL: time.Minute}
	first := samplePipeline()
	if existing, _, err := b.store.CreatePipeline(ctx, first, d); err != nil || existing != 0 {
		t.Fatalf("first create = %d, %v, want a new pipeline", existing, err)
	}
	// ttlOf checks a dedup key names the first pipeline and expires within (ttl-5s, ttl].
	ttlOf := func(what, kind, value string, ttl time.Duration) {
		t.Helper()
		key := b.store.keyDedup(kind, value)
		if got, err := b.rdb.Get(ctx, key).Int64(); err != nil || got != first.ID {
			t.Errorf("%s: %s key %q = %d, %v, want %d", what, kind, value, got, err, first.ID)
		}
		if got := b.rdb.PTTL(ctx, key).Val(); got > ttl || got < ttl-5*time.Second {
			t.Errorf("%s: %s key %q expires in %v, want %v", what, kind, value, got, ttl)
		}
	}
	ttlOf("first create", "delivery", d.Delivery, d.DeliveryTTL)
	ttlOf("first create", "commit", d.Commit, d.CommitTTL)

	for _, c := range []struct {
		name string
		d    orchestrator.Dedup
	}{
		{"same delivery, other content", orchestrator.Dedup{Delivery: "first", DeliveryTTL: time.Hour, Commit: "other", CommitTTL: time.Minute}},
		{"same content, other delivery", orchestrator.Dedup{Delivery: "second", DeliveryTTL: 2 * time.Hour, Commit: d.Commit, CommitTTL: time.Minute}},
		{"same content, no delivery", orchestrator.Dedup{Commit: d.Commit, CommitTTL: time.Minute}},
	} {
		if existing, _, err := b.store.CreatePipeline(ctx, samplePipeline(), c.d); err != nil || existing != first.ID {
			t.Errorf("%s: CreatePipeline = %d, %v, want the first pipeline %d", c.name, existing, err, first.ID)
		}
	}
	ttlOf("after the duplicates", "delivery", "second", 2*time.Hour)
	if n, _ := b.rdb.Exists(ctx, b.store.keyDedup("commit", "other"), b.store.keyDedup("delivery", "")).Result(); n != 0 {
		t.Errorf("a duplicate by delivery remembered its content, or no delivery was remembered as one (%d keys)", n)
	}
	if n, _ := b.rdb.ZCard(ctx, b.store.keyIndex()).Result(); n != 1 {
		t.Errorf("stored pipelines = %d, want 1", n)
	}
}

// TestCommitPipeline: the commit's pipeline answers for the commit and takes the merge request
// of a later event (the first one attached stays); it stops answering when forced, when one of
// its jobs ended canceled, and when it is gone — each time the new pipeline becomes the
// commit's. (A new pipeline that releases: TestCommitPipelineAddsRelease.)
func TestCommitPipeline(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	d := orchestrator.Dedup{Commit: "g/app|feature|abc", CommitTTL: time.Minute}
	// created stores a pipeline with jobs (build, test/unit, and release when releases) and
	// returns what CreatePipeline answered: the new id, or the existing one.
	created := func(d orchestrator.Dedup) (id int64, isNew bool) {
		t.Helper()
		p := samplePipeline()
		if !d.Releases {
			p.Jobs = p.Jobs[:2]
		}
		existing, _, err := b.store.CreatePipeline(ctx, p, d)
		must(t, err)
		if existing != 0 {
			return existing, false
		}
		return p.ID, true
	}
	first, _ := created(d)
	for i, iid := range []int64{5, 6, 0} {
		mr := d
		mr.MergeRequestIID = iid
		if id, isNew := created(mr); isNew || id != first {
			t.Fatalf("event %d for the commit = %d (new %t), want pipeline %d", i, id, isNew, first)
		}
	}
	if p, err := b.store.Pipeline(ctx, first); err != nil || p.MergeRequestIID() != 5 {
		t.Errorf("merge request of pipeline %d = %v, %v, want the first attached, 5", first, p, err)
	}

	steps := []struct {
		name string
		do   func(last int64)
		d    orchestrator.Dedup
	}{
		{"forced", func(int64) {}, orchestrator.Dedup{Commit: d.Commit, CommitTTL: time.Minute, Force: true}},
		{"a job canceled", func(last int64) {
			must(t, b.rdb.HSet(ctx, b.store.keyPipeline(last), statePrefix+"test/unit", string(orchestrator.StateCanceled)).Err())
		}, d},
		{"gone", func(last int64) { must(t, b.rdb.Del(ctx, b.store.keyPipeline(last)).Err()) }, d},
	}
	last := first
	for _, s := range steps {
		s.do(last)
		id, isNew := created(s.d)
		if !isNew {
			t.Fatalf("%s: answered by pipeline %d, want a new pipeline", s.name, id)
		}
		if again, isNew := created(d); isNew || again != id {
			t.Fatalf("%s: the next event = %d (new %t), want the new pipeline %d", s.name, again, isNew, id)
		}
		last = id
	}
	// A pipeline that ran (success, failed or skipped) keeps answering.
	must(t, b.rdb.HSet(ctx, b.store.keyPipeline(last), statePrefix+"build", string(orchestrator.StateFailed)).Err())
	if id, isNew := created(d); isNew || id != last {
		t.Errorf("after a failure: %d (new %t), want pipeline %d", id, isNew, last)
	}
}

// TestCommitPipelineAddsRelease: a merge request's pipeline (no release) answers for the push of
// its commit on a release branch by taking the push's release job, once however many pushes race;
// unless the push is forced, the pipeline has a canceled job, waited for approval, or finished and
// lost its image; one that has a release already is a plain duplicate.
func TestCommitPipelineAddsRelease(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		// before changes the merge request's pipeline (id) before the pushes.
		before func(id int64)
		force  bool
		added  bool // the release is added; else, with new, a pipeline of its own
		new    bool
	}{
		{name: "running", before: func(int64) {}, added: true},
		{name: "finished, image kept", before: func(id int64) {
			must(t, b.store.MarkFinished(ctx, &orchestrator.Pipeline{ID: id, Trigger: orchestrator.Trigger{Kind: orchestrator.TriggerMergeRequest}}, time.Now()))
		}, added: true},
		{name: "finished, image gone", before: func(id int64) {
			must(t, b.store.MarkFinished(ctx, &orchestrator.Pipeline{ID: id}, time.Now()))
			must(t, b.store.Discarded(ctx, id))
		}, new: true},
		{name: "forced", before: func(int64) {}, force: true, new: true},
		{name: "canceled", before: func(id int64) {
			must(t, b.rdb.HSet(ctx, b.store.keyPipeline(id), statePrefix+"test/unit", string(orchestrator.StateCanceled)).Err())
		}, new: true},
		{name: "gated", before: func(id int64) {
			if gated, err := b.store.Gate(ctx, id, orchestrator.Approval{ExpiresAt: time.Now().Add(time.Hour)}); err != nil || !gated {
				t.Fatalf("Gate = %t, %v, want gated", gated, err)
			}
		}, new: true},
		{name: "has a release", before: func(id int64) {
			must(t, b.rdb.HSet(ctx, b.store.keyPipeline(id), jobPrefix+"release", "{}").Err())
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			commit := "g/app|master|" + c.name
			mr := samplePipeline()
			mr.Trigger.Kind, mr.Trigger.MergeRequestIID, mr.Jobs = orchestrator.TriggerMergeRequest, 4, mr.Jobs[:2]
			if existing, _, err := b.store.CreatePipeline(ctx, mr, orchestrator.Dedup{Commit: commit, CommitTTL: time.Minute}); err != nil || existing != 0 {
				t.Fatalf("merge request's pipeline = %d, %v", existing, err)
			}
			// Started, and taken by a process.
			b.rdb.ZRem(ctx, b.store.keyUnstarted(), mr.ID)
			b.rdb.LRem(ctx, b.store.keyNew(), 0, mr.ID)
			c.before(mr.ID)
			// GitLab's retries of the push, at once.
			type answer struct {
				existing, id int64
				added        bool
			}
			answers := make([]answer, 8)
			var wg sync.WaitGroup
			for i := range answers {
				wg.Go(func() {
					p := samplePipeline()
					p.Trigger.SHA = commit
					existing, added, err := b.store.CreatePipeline(ctx, p, orchestrator.Dedup{Commit: commit, CommitTTL: time.Minute, Releases: true, Force: c.force})
					if err != nil {
						t.Error(err)
					}
					answers[i] = answer{existing, p.ID, added}
				})
			}
			wg.Wait()
			added, named := 0, map[int64]int{}
			for _, a := range answers {
				if a.added {
					added++
				}
				named[max(a.existing, a.id)]++
			}
			switch {
			case c.force && len(named) != len(answers):
				t.Errorf("forced pushes made pipelines %v, want one each", named)
			case c.force:
			case c.new && (named[mr.ID] != 0 || len(named) != 1 || added != 0):
				t.Errorf("pushes named %v (%d added), want one new pipeline for all", named, added)
			case !c.new && named[mr.ID] != len(answers):
				t.Errorf("pushes named %v, want all the merge request's %d", named, mr.ID)
			case c.added != (added == 1) || added > 1:
				t.Errorf("the release was added %d times, want %t once", added, c.added)
			}
			if c.added {
				checkAdded(t, b, mr.ID, commit)
			}
		})
	}
}

// checkAdded checks the merge request's pipeline id after a push (of sha) added its release: the
// job as planned, the push as its release trigger, the merge request kept, and the pipeline
// open, unstarted, not finished, new for WaitNew, on the branch's index, its head the push's.
func checkAdded(t *testing.T, b testBundle, id int64, sha string) {
	t.Helper()
	ctx := context.Background()
	p, err := b.store.Pipeline(ctx, id)
	must(t, err)
	want := orchestrator.Job{Name: "release", Stage: orchestrator.StageRelease, State: orchestrator.StateCreated, Attempt: 1}
	if j, ok := p.Job("release"); !ok || *j != want || len(p.Jobs) != 3 {
		t.Errorf("jobs = %+v, want build, test/unit and %+v", p.Jobs, want)
	}
	if rt := p.ReleaseTrigger; rt == nil || rt.Kind != orchestrator.TriggerPush || rt.SHA != sha || p.Trigger.Kind != orchestrator.TriggerMergeRequest || p.MergeRequestIID() != 4 {
		t.Errorf("trigger %+v, release trigger %+v, want the merge request's and the push's", p.Trigger, p.ReleaseTrigger)
	}
	member := func(key string) bool { return b.rdb.ZScore(ctx, key, fmt.Sprint(id)).Err() == nil }
	if !member(b.store.keyOpen()) || !member(b.store.keyUnstarted()) || member(b.store.keyFinished()) || !member(b.store.keyBranch("g/app", "master")) {
		t.Errorf("open %t unstarted %t finished %t on the branch %t, want open, unstarted, not finished, on the branch",
			member(b.store.keyOpen()), member(b.store.keyUnstarted()), member(b.store.keyFinished()), member(b.store.keyBranch("g/app", "master")))
	}
	if head, _ := b.store.LastHead(ctx, "g/app", "master"); head != sha {
		t.Errorf("branch head = %q, want the push's %q", head, sha)
	}
	if _, err := b.rdb.LPos(ctx, b.store.keyNew(), fmt.Sprint(id), redis.LPosArgs{}).Result(); err != nil {
		t.Errorf("the pipeline is not on the list for WaitNew: %v", err)
	}
	// The merge request's start task, having read the pipeline before the push, finds it must
	// wait for approval: it no longer may, the push asked to release the commit.
	if gated, err := b.store.Gate(ctx, id, orchestrator.Approval{ExpiresAt: time.Now().Add(time.Hour)}); err != nil || gated || member(b.store.keyWaiting()) {
		t.Errorf("Gate after the push = %t, %v (waiting %t), want nothing gated", gated, err, member(b.store.keyWaiting()))
	}
	if q, _ := b.store.Pipeline(ctx, id); q.Approval != nil {
		t.Errorf("approval = %+v after the push, want none", q.Approval)
	}
	if err := b.store.MarkFinished(ctx, p, time.Now()); err != nil || member(b.store.keyBranch("g/app", "master")) {
		t.Errorf("MarkFinished = %v; on the branch after it: %t, want off", err, member(b.store.keyBranch("g/app", "master")))
	}
}
