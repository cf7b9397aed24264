package store

import (
	"context"
	"strconv"
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
