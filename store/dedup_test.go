package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
)

// TestCreateDedup races the same event in through several deliveries: one pipeline results, and
// every duplicate names it.
func TestCreateDedup(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	d := orchestrator.Dedup{Delivery: "delivery-1", DeliveryTTL: time.Hour, Content: "g/app|push|master|abc", ContentTTL: time.Minute}
	ids := make([]int64, 10)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			p := samplePipeline()
			existing, err := b.store.CreatePipeline(ctx, p, d)
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
	if existing, _ := b.store.CreatePipeline(ctx, samplePipeline(), other); existing != ids[0] {
		t.Errorf("same content, other delivery: existing = %d, want %d", existing, ids[0])
	}
	b.rdb.Del(ctx, b.store.keyDedup("content", d.Content))
	if existing, _ := b.store.CreatePipeline(ctx, samplePipeline(), d); existing != ids[0] {
		t.Errorf("same delivery after the window: existing = %d, want %d", existing, ids[0])
	}
	fresh := orchestrator.Dedup{Content: "g/app|push|master|def", ContentTTL: time.Minute}
	if existing, _ := b.store.CreatePipeline(ctx, samplePipeline(), fresh); existing != 0 {
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
// DeliveryTTL, the content key ContentTTL — so neither is kept forever nor forgotten early; a
// duplicate, by delivery or by content, names the first pipeline; and a new delivery of known
// content is remembered for DeliveryTTL too, so its own resend is a duplicate after the
// content window.
func TestCreateDedupKeysExpire(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	d := orchestrator.Dedup{Delivery: "first", DeliveryTTL: time.Hour, Content: "g/app|push|master|abc", ContentTTL: time.Minute}
	first := samplePipeline()
	if existing, err := b.store.CreatePipeline(ctx, first, d); err != nil || existing != 0 {
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
	ttlOf("first create", "content", d.Content, d.ContentTTL)

	for _, c := range []struct {
		name string
		d    orchestrator.Dedup
	}{
		{"same delivery, other content", orchestrator.Dedup{Delivery: "first", DeliveryTTL: time.Hour, Content: "other", ContentTTL: time.Minute}},
		{"same content, other delivery", orchestrator.Dedup{Delivery: "second", DeliveryTTL: 2 * time.Hour, Content: d.Content, ContentTTL: time.Minute}},
		{"same content, no delivery", orchestrator.Dedup{Content: d.Content, ContentTTL: time.Minute}},
	} {
		if existing, err := b.store.CreatePipeline(ctx, samplePipeline(), c.d); err != nil || existing != first.ID {
			t.Errorf("%s: CreatePipeline = %d, %v, want the first pipeline %d", c.name, existing, err, first.ID)
		}
	}
	ttlOf("after the duplicates", "delivery", "second", 2*time.Hour)
	if n, _ := b.rdb.Exists(ctx, b.store.keyDedup("content", "other"), b.store.keyDedup("delivery", "")).Result(); n != 0 {
		t.Errorf("a duplicate by delivery remembered its content, or no delivery was remembered as one (%d keys)", n)
	}
	if n, _ := b.rdb.ZCard(ctx, b.store.keyIndex()).Result(); n != 1 {
		t.Errorf("stored pipelines = %d, want 1", n)
	}
}
