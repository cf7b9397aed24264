package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gantry-ci/gantry/orchestrator"
)

// TestPlanTests: the test jobs planned from a pipeline file are stored once, between the build
// and the release, with the file; a second planner (another worker, a task run twice) changes
// nothing; a commit without a file is told apart from an empty file.
func TestPlanTests(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	newPipeline := func(commit string) *orchestrator.Pipeline {
		p := &orchestrator.Pipeline{
			Trigger:   orchestrator.Trigger{Project: "g/app", ProjectID: 7, Kind: orchestrator.TriggerPush, Ref: "master", SHA: commit},
			CreatedAt: time.Now(),
			Jobs: []orchestrator.Job{
				{Name: "build", Stage: orchestrator.StageBuild, State: orchestrator.StateCreated, Attempt: 1},
				{Name: "release", Stage: orchestrator.StageRelease, State: orchestrator.StateCreated, Attempt: 1},
			},
		}
		if _, _, err := b.store.CreatePipeline(ctx, p, orchestrator.Dedup{Commit: commit, CommitTTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newPipeline("with-file")
	tests := []orchestrator.Job{
		{Name: "test/fast", Stage: orchestrator.StageTest, State: orchestrator.StateCreated, Attempt: 1},
		{Name: "test/lint", Stage: orchestrator.StageTest, State: orchestrator.StateCreated, Attempt: 1},
	}
	order := []string{"build", "test/fast", "test/lint", "release"}
	file := []byte("tests: [...]\n")
	if ok, err := b.store.PlanTests(ctx, p.ID, file, tests, order); !ok || err != nil {
		t.Fatalf("PlanTests = %v, %v; want planned", ok, err)
	}
	if ok, err := b.store.PlanTests(ctx, p.ID, []byte("other"), tests[:1], []string{"build", "test/fast", "release"}); ok || err != nil {
		t.Fatalf("second PlanTests = %v, %v; want false: planned already", ok, err)
	}
	got, err := b.store.Pipeline(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range got.Jobs {
		names = append(names, j.Name)
	}
	if d := cmp.Diff(order, names); d != "" || !got.TestsPlanned || string(got.RepoFile) != string(file) {
		t.Errorf("jobs (-want +got):\n%s\nplanned %v, file %q", d, got.TestsPlanned, got.RepoFile)
	}
	// The swap that announces a planned job finds its state and attempt.
	j := got.Jobs[1]
	j.State = orchestrator.StatePending
	if ok, _, err := b.store.SwapJob(ctx, p.ID, orchestrator.StateCreated, 1, j, nil); !ok || err != nil {
		t.Errorf("SwapJob of a planned test = %v, %v", ok, err)
	}

	for _, f := range []struct {
		name string
		file []byte
	}{{"no file", nil}, {"empty file", []byte{}}} {
		p := newPipeline(f.name)
		if _, err := b.store.PlanTests(ctx, p.ID, f.file, nil, []string{"build", "release"}); err != nil {
			t.Fatal(err)
		}
		got, err := b.store.Pipeline(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.TestsPlanned || (got.RepoFile == nil) != (f.file == nil) || len(got.Jobs) != 2 {
			t.Errorf("%s: planned %v, file %q, jobs %+v", f.name, got.TestsPlanned, got.RepoFile, got.Jobs)
		}
	}
	if _, err := b.store.PlanTests(ctx, 999999999, nil, nil, nil); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("PlanTests of no pipeline = %v, want ErrNotFound", err)
	}
}

// TestPlanTestsKeepsAnAddedRelease: a push that adds the release to a merge request's pipeline
// (CreatePipeline) while a worker plans that pipeline's tests from the state it read before
// keeps its release: the planner's order lacks it, and the stored jobs still end with it.
func TestPlanTestsKeepsAnAddedRelease(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	commit := "g/app|master|release added while planning"
	build := orchestrator.Job{Name: "build", Stage: orchestrator.StageBuild, State: orchestrator.StateCreated, Attempt: 1}
	mr := &orchestrator.Pipeline{
		Trigger:   orchestrator.Trigger{Project: "g/app", ProjectID: 7, Kind: orchestrator.TriggerMergeRequest, MergeRequestIID: 4, Ref: "master", SHA: commit},
		CreatedAt: time.Now(),
		Jobs:      []orchestrator.Job{build},
	}
	if _, _, err := b.store.CreatePipeline(ctx, mr, orchestrator.Dedup{Commit: commit, CommitTTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	push := &orchestrator.Pipeline{
		Trigger:   orchestrator.Trigger{Project: "g/app", ProjectID: 7, Kind: orchestrator.TriggerPush, Ref: "master", SHA: commit},
		CreatedAt: time.Now(),
		Jobs:      []orchestrator.Job{build, {Name: "release", Stage: orchestrator.StageRelease, State: orchestrator.StateCreated, Attempt: 1}},
	}
	if existing, added, err := b.store.CreatePipeline(ctx, push, orchestrator.Dedup{Commit: commit, CommitTTL: time.Minute, Releases: true}); existing != mr.ID || !added || err != nil {
		t.Fatalf("push = %d, added %t, %v; want the release added to %d", existing, added, err, mr.ID)
	}
	tests := []orchestrator.Job{{Name: "test/unit", Stage: orchestrator.StageTest, State: orchestrator.StateCreated, Attempt: 1}}
	if ok, err := b.store.PlanTests(ctx, mr.ID, nil, tests, []string{"build", "test/unit"}); !ok || err != nil {
		t.Fatalf("PlanTests = %v, %v; want planned", ok, err)
	}
	got, err := b.store.Pipeline(ctx, mr.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range got.Jobs {
		names = append(names, j.Name)
	}
	if d := cmp.Diff([]string{"build", "test/unit", "release"}, names); d != "" {
		t.Errorf("jobs (-want +got):\n%s", d)
	}
}
