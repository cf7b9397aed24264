package store

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

// listFixture stores six pipelines of two projects and returns their ids, oldest first.
func listFixture(t *testing.T, s *Store) []int64 {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	for i, c := range []struct{ project, ref, sha string }{
		{"g/app", "master", "aaaa1111"}, {"g/app", "dev", "bbbb2222"}, {"g/other", "master", "cccc3333"},
		{"g/app", "master", "dddd4444"}, {"G/App", "dev", "eeee5555"}, {"g/other", "dev", "ffff6666"},
	} {
		p := samplePipeline()
		p.Trigger.Project, p.Trigger.Ref, p.Trigger.SHA = c.project, c.ref, c.sha
		create(t, s, p)
		ids = append(ids, p.ID)
		if i%2 == 1 {
			continue
		}
		// Even ones failed their build and skipped the rest.
		for _, j := range p.Jobs {
			j.State = orchestrator.StateSkipped
			if j.Name == orchestrator.JobBuild {
				j.State = orchestrator.StateFailed
			}
			if ok, _, err := s.SwapJob(ctx, p.ID, orchestrator.StateCreated, 1, j, nil); !ok || err != nil {
				t.Fatalf("SwapJob = %v, %v", ok, err)
			}
		}
	}
	return ids
}

func TestListPipelinesFilters(t *testing.T) {
	b := setup(t)
	ids := listFixture(t, b.store)
	pick := func(i ...int) []int64 {
		out := []int64{}
		for _, n := range i {
			out = append(out, ids[n])
		}
		return out
	}
	tests := []struct {
		name string
		f    Filter
		want []int64
	}{
		{"all, newest first", Filter{}, pick(5, 4, 3, 2, 1, 0)},
		{"project ignores case", Filter{Project: "g/APP"}, pick(4, 3, 1, 0)},
		{"project and ref", Filter{Project: "g/app", Ref: "dev"}, pick(4, 1)},
		{"ref", Filter{Ref: "master"}, pick(3, 2, 0)},
		{"sha prefix", Filter{SHA: "DDDD"}, pick(3)},
		{"status", Filter{Status: orchestrator.StateFailed}, pick(4, 2, 0)},
		{"status and project", Filter{Project: "g/other", Status: orchestrator.StateCreated}, pick(5)},
		{"limit", Filter{Limit: 2}, pick(5, 4)},
		{"no match", Filter{Ref: "nope"}, []int64{}},
	}
	for _, tt := range tests {
		got, err := b.store.List(context.Background(), tt.f)
		if err != nil {
			t.Fatalf("List(%+v): %v", tt.f, err)
		}
		gotIDs := []int64{}
		for _, p := range got {
			gotIDs = append(gotIDs, p.ID)
		}
		if d := cmp.Diff(tt.want, gotIDs); d != "" {
			t.Errorf("%s: List(%+v) ids (-want +got):\n%s", tt.name, tt.f, d)
		}
	}
}

// TestListDecodesLikePipeline keeps List's batch decoding in agreement with Pipeline.
func TestListDecodesLikePipeline(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	listFixture(t, b.store)
	got, err := b.store.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got {
		want, err := b.store.Pipeline(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, p); d != "" {
			t.Errorf("List's pipeline %d differs from Pipeline's (-Pipeline +List):\n%s", p.ID, d)
		}
	}
}

func TestListLimits(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	// Index entries whose records are gone are passed over; they cost a scan all the same.
	top := int64(ListScanLimit + 200)
	zs := make([]redis.Z, 0, top)
	for id := int64(1); id <= top; id++ {
		zs = append(zs, redis.Z{Score: float64(id), Member: strconv.FormatInt(id, 10)})
	}
	if err := b.rdb.ZAdd(ctx, b.store.keyIndex(), zs...).Err(); err != nil {
		t.Fatal(err)
	}
	// The one matching record is older than the newest ListScanLimit: not found.
	if err := b.rdb.Set(ctx, b.store.keySeq(), 0, 0).Err(); err != nil {
		t.Fatal(err)
	}
	old := samplePipeline()
	old.Trigger.Ref = "old"
	create(t, b.store, old)
	if old.ID != 1 {
		t.Fatalf("first pipeline id = %d, want 1", old.ID)
	}
	if got, err := b.store.List(ctx, Filter{Ref: "old"}); err != nil || len(got) != 0 {
		t.Errorf("List past the scan bound = %d pipelines, %v; want none", len(got), err)
	}
	// Records inside the bound are found, and the limit is capped at MaxListLimit.
	if err := b.rdb.Set(ctx, b.store.keySeq(), top-MaxListLimit-10, 0).Err(); err != nil {
		t.Fatal(err)
	}
	for range MaxListLimit + 10 {
		create(t, b.store, samplePipeline())
	}
	got, err := b.store.List(ctx, Filter{Limit: 1000})
	if err != nil || len(got) != MaxListLimit || got[0].ID != top {
		t.Errorf("List(limit 1000) = %d pipelines, %v; want %d from %d", len(got), err, MaxListLimit, top)
	}
	if got, _ := b.store.List(ctx, Filter{}); len(got) != DefaultListLimit {
		t.Errorf("List(no limit) = %d pipelines, want %d", len(got), DefaultListLimit)
	}
}

// TestListBatchesDoNotOverlap: the batches List reads follow each other without a gap or an
// overlap, so a pipeline at a batch's edge is listed exactly once.
func TestListBatchesDoNotOverlap(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	// Index entries 1…150 (records gone), then real records for 48…52: ranks 98 to 102 from
	// the newest, across the edge of the first batch of listBatch.
	zs := make([]redis.Z, 0, 150)
	for id := int64(1); id <= 150; id++ {
		zs = append(zs, redis.Z{Score: float64(id), Member: strconv.FormatInt(id, 10)})
	}
	must(t, b.rdb.ZAdd(ctx, b.store.keyIndex(), zs...).Err())
	must(t, b.rdb.Set(ctx, b.store.keySeq(), 47, 0).Err())
	for range 5 {
		create(t, b.store, samplePipeline())
	}
	got, err := b.store.List(ctx, Filter{})
	gotIDs := []int64{}
	for _, p := range got {
		gotIDs = append(gotIDs, p.ID)
	}
	if want := []int64{52, 51, 50, 49, 48}; err != nil || !cmp.Equal(gotIDs, want) {
		t.Errorf("List = %v, %v, want %v", gotIDs, err, want)
	}
}

// TestListReadsOnlyWhatItNeeds: List stops reading batches once it has its limit, and a
// filter that matches nothing reads exactly ListScanLimit pipelines, not a batch more: a
// listing's cost is bounded by what it returns or by the scan bound.
func TestListReadsOnlyWhatItNeeds(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	zs := make([]redis.Z, 0, ListScanLimit+200)
	for id := int64(1); id <= ListScanLimit+200; id++ {
		zs = append(zs, redis.Z{Score: float64(id), Member: strconv.FormatInt(id, 10)})
	}
	must(t, b.rdb.ZAdd(ctx, b.store.keyIndex(), zs...).Err())
	must(t, b.rdb.Set(ctx, b.store.keySeq(), ListScanLimit+200, 0).Err())
	for range 3 {
		create(t, b.store, samplePipeline())
	}
	reads := &countReads{}
	b.rdb.AddHook(reads)
	for _, c := range []struct {
		f     Filter
		found int
		reads int64
	}{
		{Filter{Limit: 2}, 2, 1},
		{Filter{Ref: "nope"}, 0, ListScanLimit / listBatch},
	} {
		reads.n.Store(0)
		got, err := b.store.List(ctx, c.f)
		if err != nil || len(got) != c.found || reads.n.Load() != c.reads {
			t.Errorf("List(%+v) = %d pipelines, %v, in %d batches; want %d in %d", c.f, len(got), err, reads.n.Load(), c.found, c.reads)
		}
	}
}

// countReads counts the ZREVRANGE commands a client sends: List's batches.
type countReads struct{ n atomic.Int64 }

func (c *countReads) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *countReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "zrevrange" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *countReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
