package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestKnownProjectID: the engine knows no id before it asked GitLab, knows GitLab's (not the
// payload's) once a pipeline started, answers for any spelling of the path, and never for a
// project that is not configured.
func TestKnownProjectID(t *testing.T) {
	t.Parallel()
	b, src := setupBinding(t, noMergeRequest)
	if id, ok := b.engine.KnownProjectID("g/app"); ok {
		t.Errorf("KnownProjectID before any resolution = %d, true, want false", id)
	}
	b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 8, Kind: TriggerPush, Ref: "dev", SHA: "b0b0b0b0b0"})
	b.drain(t, 0)
	if id, ok := b.engine.KnownProjectID("G/App"); id != 7 || !ok {
		t.Errorf("KnownProjectID(G/App) after a start = %d, %v, want 7, true", id, ok)
	}
	if id, ok := b.engine.KnownProjectID("g/other"); ok {
		t.Errorf("KnownProjectID(g/other) = %d, true, want false", id)
	}
	// Answering never asks GitLab.
	before := len(src.readsOf("project"))
	for range 10 {
		b.engine.KnownProjectID("g/app")
	}
	if n := len(src.readsOf("project")); n != before {
		t.Errorf("KnownProjectID asked GitLab %d times", n-before)
	}
}

// TestKnownProjectIDFromTheAPI: a pipeline the API triggers resolves the project through GitLab
// and fills the cache with GitLab's id.
func TestKnownProjectIDFromTheAPI(t *testing.T) {
	t.Parallel()
	b, _ := setupBinding(t, noMergeRequest)
	a, err := b.engine.Trigger(context.Background(), "g/app", "master", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if tr := a.Pipeline.Trigger; tr.ProjectID != 7 || tr.HookProjectID != 7 {
		t.Errorf("API trigger = %+v, want GitLab's id 7", tr)
	}
	if id, ok := b.engine.KnownProjectID("g/app"); id != 7 || !ok {
		t.Errorf("KnownProjectID after an API trigger = %d, %v, want 7, true", id, ok)
	}
}

// TestResolveProjects fills the cache for every configured project at once, and reports a
// project GitLab does not answer for (left for its first pipeline to resolve).
func TestResolveProjects(t *testing.T) {
	t.Parallel()
	b, src := setupBinding(t, noMergeRequest)
	if err := b.engine.ResolveProjects(context.Background()); err != nil {
		t.Fatal(err)
	}
	if id, ok := b.engine.KnownProjectID("g/app"); id != 7 || !ok {
		t.Errorf("KnownProjectID after ResolveProjects = %d, %v, want 7, true", id, ok)
	}
	b.engine.projects["g/gone"] = Project{Path: "g/gone"}
	b.engine.projectIDs = newProjectIDs(time.Minute, b.engine.now)
	if err := b.engine.ResolveProjects(context.Background()); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "g/gone") {
		t.Errorf("ResolveProjects with a project GitLab does not have = %v, want its ErrNotFound", err)
	}
	if id, _ := b.engine.KnownProjectID("g/app"); id != 7 || len(src.readsOf("project g/app")) != 2 {
		t.Errorf("KnownProjectID(g/app) = %d after %v, want 7, resolved again", id, src.readsOf("project"))
	}
}

// TestBindingRefusesAnotherHookProject: a merge request hook whose hook project (its target) is
// not the configured project's id is refused, whatever its source says.
func TestBindingRefusesAnotherHookProject(t *testing.T) {
	t.Parallel()
	b, src := setupBinding(t, func(int64, int64) (MergeRequestHead, error) {
		return MergeRequestHead{SourceProjectID: 7, SHA: "abcabcabc0", SourceBranch: "feature"}, nil
	})
	p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, HookProjectID: 8, Kind: TriggerMergeRequest,
		Ref: "feature", SHA: "abcabcabc0", MergeRequestIID: 3})
	b.drain(t, 0)
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	if got.State() != StateCanceled || len(src.readsOf("mr")) != 0 || len(src.readsOf("archive")) != 0 || len(b.statuses.targets) != 0 {
		t.Errorf("pipeline = %s, reads %v, statuses %v: want canceled before the merge request is read, nothing posted",
			got.State(), src.reads, b.statuses.targets)
	}
}

// TestProjectIDsTTL: an answer is used for the TTL, then GitLab is asked again; the last answer
// stays known meanwhile, and a new id replaces it, with a warning.
func TestProjectIDsTTL(t *testing.T) {
	t.Parallel()
	b, src := setupBinding(t, noMergeRequest)
	now := time.Unix(1e9, 0)
	b.engine.projectIDs = newProjectIDs(time.Minute, func() time.Time { return now })
	id := int64(7)
	src.ProjectFunc = func(string) (int64, string, error) { return id, "", nil }
	proj, _ := b.engine.Project("g/app")
	resolve := func() int64 {
		t.Helper()
		r, err := b.engine.resolveProject(context.Background(), proj)
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	resolve()
	now = now.Add(59 * time.Second)
	if got := resolve(); got != 7 || len(src.readsOf("project")) != 1 {
		t.Errorf("within the TTL: id %d after %d calls, want 7 after 1", got, len(src.readsOf("project")))
	}
	id = 9 // the project was re-created under the same path
	now = now.Add(time.Second)
	if known, _ := b.engine.KnownProjectID("g/app"); known != 7 {
		t.Errorf("KnownProjectID past the TTL = %d, want the last answer 7", known)
	}
	if got := resolve(); got != 9 || len(src.readsOf("project")) != 2 {
		t.Errorf("past the TTL: id %d after %d calls, want 9 after 2", got, len(src.readsOf("project")))
	}
	if known, _ := b.engine.KnownProjectID("g/app"); known != 9 {
		t.Errorf("KnownProjectID after the new answer = %d, want 9", known)
	}
	// A project re-created under its path is worth an operator's attention, once.
	if n := b.logs.FilterMessage("project id changed in GitLab").Len(); n != 1 {
		t.Errorf("project id change warned %d times, want once", n)
	}
}

// TestProjectIDsConcurrent: readers and resolvers at once (run with -race) always see one of
// GitLab's answers, whole.
func TestProjectIDsConcurrent(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	c := newProjectIDs(time.Nanosecond, func() time.Time { return time.Unix(0, clock.Add(1)) })
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 500 {
				id := int64(w*1000 + i)
				c.put("g/app", id, fmt.Sprintf("u%d", id))
				if r, ok := c.known("G/APP"); !ok || r.WebURL != fmt.Sprintf("u%d", r.ID) {
					t.Errorf("known = %+v, %v, want an answer whole", r, ok)
					return
				}
				c.fresh("g/app")
			}
		})
	}
	wg.Wait()
}

// TestProjectIDsDefaultTTL: unless configured, GitLab's answer for a project's id is used for
// 10 minutes before GitLab is asked again.
func TestProjectIDsDefaultTTL(t *testing.T) {
	t.Parallel()
	b, src := setupBinding(t, noMergeRequest)
	src.ProjectFunc = func(string) (int64, string, error) { return 7, "", nil }
	now := time.Unix(1e9, 0)
	e, err := NewEngine(EngineOptions{Store: b.store, Queue: b.queue, Statuses: b.statuses, Source: src,
		Projects: slices.Collect(maps.Values(b.engine.projects)), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	proj, _ := e.Project("g/app")
	for _, tt := range []struct {
		after time.Duration
		reads int
	}{{0, 1}, {10*time.Minute - time.Second, 1}, {time.Second, 2}} {
		now = now.Add(tt.after)
		if _, err := e.resolveProject(context.Background(), proj); err != nil {
			t.Fatal(err)
		}
		if n := len(src.readsOf("project")); n != tt.reads {
			t.Errorf("%v later: GitLab asked %d times, want %d", tt.after, n, tt.reads)
		}
	}
}
