package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

type engineBundle struct {
	engine   *Engine
	store    *memStore
	queue    *memQueue
	exec     *fakeExecutor
	statuses *recordedStatuses
	metrics  *recordedMetrics
	// logger records what the engine logs, in logs.
	logger *zap.Logger
	logs   *observer.ObservedLogs
}

func setupEngine(t *testing.T) engineBundle {
	t.Helper()
	return setupEngineWith(t, fakeSource{})
}

// setupEngineWith is setupEngine with src for GitLab's repositories and merge requests.
func setupEngineWith(t *testing.T, src Source) engineBundle {
	t.Helper()
	q := &memQueue{}
	b := engineBundle{
		store: &memStore{pipelines: map[int64]*Pipeline{}, released: map[string]string{}, logs: map[string]string{},
			dedup: map[string]int64{}, outbox: map[int64][]StatusEntry{}, locked: map[int64]bool{}, unstarted: map[int64]bool{}, finished: map[int64]time.Time{}, queue: q},
		queue: q,
		exec: &fakeExecutor{
			BuildFunc: func(BuildRequest) (BuildResult, error) { return BuildResult{ImageID: "sha256:img"}, nil },
			TestFunc: func(_ TestRequest, log io.Writer) (TestResult, error) {
				io.WriteString(log, "2 passed in 0.10s\n")
				return TestResult{}, nil
			},
			ReleaseFunc: func(ReleaseRequest) (ReleaseResult, error) {
				return ReleaseResult{Digest: "sha256:dig", Pushed: []string{"r:latest"}}, nil
			},
		},
		statuses: &recordedStatuses{posts: map[string][]string{}, descs: map[string]string{}},
		metrics:  &recordedMetrics{},
	}
	core, logs := observer.New(zap.InfoLevel)
	b.logger, b.logs = zap.New(core), logs
	e, err := NewEngine(EngineOptions{
		Store: b.store, Queue: q, Executor: b.exec, Source: src, Statuses: b.statuses,
		Projects:  []Project{{Path: "g/app", Image: "r/app", Supersede: true, Tests: []TestSpec{{Name: "unit"}, {Name: "lint"}}, Release: ReleasePolicy{Branches: []string{"master"}, Tags: []string{"latest"}}}},
		PublicURL: "https://gantry.example.com", Now: func() time.Time { return time.Unix(1e9, 0) },
		Metrics: b.metrics, Logger: b.logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.engine = e
	return b
}

// drain runs queued tasks until none are left, as workers would, retrying failed ones up to
// maxRetry times the way the queue does.
func (b engineBundle) drain(t *testing.T, maxRetry int) {
	t.Helper()
	tries := map[Task]int{}
	for n := 0; n < 100; n++ {
		task, ok := b.queue.pop()
		if !ok {
			return
		}
		task.Retried, task.MaxRetry = tries[task], maxRetry
		if task.Kind == TaskStatuses {
			task.MaxRetry = 10
		}
		if err := b.engine.Handle(context.Background(), task); err != nil {
			if tries[task] < task.MaxRetry {
				tries[task]++
				b.queue.Enqueue(context.Background(), task)
			}
		}
	}
	t.Fatal("tasks never ran out")
}

func (b engineBundle) push(t *testing.T, ref string) *Pipeline {
	t.Helper()
	return b.pushTrigger(t, Trigger{Project: "G/App", ProjectID: 7, Kind: TriggerPush, Ref: ref, SHA: "0123456789"})
}

func (b engineBundle) pushTrigger(t *testing.T, tr Trigger) *Pipeline {
	t.Helper()
	a, err := b.engine.Accept(context.Background(), tr)
	if err != nil {
		t.Fatal(err)
	}
	return a.Pipeline
}

func TestEngineHappyPath(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	p := b.push(t, "master")
	b.drain(t, 0)
	counted := map[string]int{"created push": 1, "ended build success none": 1, "ended test success none": 2,
		"ended release success none": 1, "timed": 4, "status posted": 12}
	if d := cmp.Diff(counted, b.metrics.counts()); d != "" {
		t.Errorf("metrics counted (-want +got):\n%s", d)
	}
	want := map[string][]string{
		"gantry/build": {"pending", "running", "success"}, "gantry/test/unit": {"pending", "running", "success"},
		"gantry/test/lint": {"pending", "running", "success"}, "gantry/release": {"pending", "running", "success"},
	}
	if d := cmp.Diff(want, b.statuses.posts); d != "" {
		t.Errorf("statuses (-want +got):\n%s", d)
	}
	if got := b.statuses.descs["gantry/test/unit"]; got != "2 passed in 0.10s" {
		t.Errorf("test/unit description = %q, want pytest's summary", got)
	}
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	if got.State() != StateSuccess || got.Digest != "sha256:dig" || got.GitLabPipelineID != 501 {
		t.Errorf("pipeline = %s digest %s gitlab id %d, want success, the digest and 501", got.State(), got.Digest, got.GitLabPipelineID)
	}
	if r, _ := b.store.Released(context.Background(), "g/app", "master"); r != p.Trigger.SHA {
		t.Errorf("Released = %q, want %s", r, p.Trigger.SHA)
	}
	// Nothing went wrong, so nothing calls for an operator's attention.
	for _, entry := range b.logs.Filter(func(e observer.LoggedEntry) bool { return e.Level >= zap.WarnLevel }).All() {
		t.Errorf("logged %s %q %v, want no warning on a pipeline without a fault", entry.Level, entry.Message, entry.ContextMap())
	}
}

// TestEngineGuardRightBeforePush is the guard's second point: a newer pipeline of the branch
// released while this one was testing, so this one must not push.
func TestEngineGuardRightBeforePush(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	b.exec.TestFunc = func(TestRequest, io.Writer) (TestResult, error) {
		b.store.MarkReleased(context.Background(), "g/app", "master", "9999999999")
		return TestResult{}, nil
	}
	b.push(t, "master")
	b.exec.ReleaseFunc = func(ReleaseRequest) (ReleaseResult, error) {
		t.Error("Release called for an outdated pipeline")
		return ReleaseResult{}, nil
	}
	b.drain(t, 0)
	if got := b.statuses.posts["gantry/release"]; !cmp.Equal(got, []string{"pending", "skipped"}) {
		t.Errorf("release statuses = %v, want pending, skipped", got)
	}
	if d := b.statuses.descs["gantry/release"]; !strings.HasPrefix(d, "outdated") {
		t.Errorf("release description = %q, want outdated…", d)
	}
}

func TestEngineFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		build     error
		test      TestResult
		testErr   error
		retries   int
		wantUnit  []string
		wantClass ErrorClass
		wantDesc  string
		// wantLog are lines test/unit's log holds (their start); it ends with the job's description.
		wantLog    []string
		buildCalls int
	}{
		{name: "test exits 1", test: TestResult{ExitCode: 1}, wantUnit: []string{"pending", "running", "failed"}, wantClass: ClassProject, wantDesc: "exit 1: 2 passed in 0.10s", buildCalls: 1},
		{name: "test out of memory, retried then failed", test: TestResult{ExitCode: 137, OOMKilled: true}, retries: 2, wantUnit: []string{"pending", "running", "failed"}, wantClass: ClassInfrastructure, wantDesc: "infrastructure: out of memory", buildCalls: 1,
			wantLog: []string{"infrastructure error (attempt 1 of 3, will retry): out of memory", "infrastructure error (attempt 2 of 3, will retry): out of memory"}},
		{name: "engine gone once, then back", testErr: errors.New("engine unreachable"), retries: 2, wantUnit: []string{"pending", "running", "success"}, buildCalls: 1,
			wantLog: []string{"infrastructure error (attempt 1 of 3, will retry): engine unreachable"}},
		{name: "build step fails", build: fmt.Errorf("RUN false: %w", ErrProjectFault), wantUnit: []string{"pending", "skipped"}, buildCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setupEngine(t)
			builds, testCalls := 0, 0
			b.exec.BuildFunc = func(BuildRequest) (BuildResult, error) { builds++; return BuildResult{ImageID: "sha256:img"}, tt.build }
			b.exec.TestFunc = func(r TestRequest, log io.Writer) (TestResult, error) {
				io.WriteString(log, "2 passed in 0.10s\n")
				if r.Test.Name != "unit" {
					return TestResult{}, nil
				}
				testCalls++
				if tt.testErr != nil && testCalls == 1 {
					return TestResult{}, tt.testErr
				}
				return tt.test, nil
			}
			p := b.push(t, "feature")
			b.drain(t, tt.retries)
			if got := b.statuses.posts["gantry/test/unit"]; !cmp.Equal(got, tt.wantUnit) {
				t.Errorf("test/unit statuses = %v, want %v", got, tt.wantUnit)
			}
			got, _ := b.store.Pipeline(context.Background(), p.ID)
			j, _ := got.Job("test/unit")
			if j.ErrorClass != tt.wantClass || !strings.HasPrefix(j.Description, tt.wantDesc) {
				t.Errorf("test/unit = class %q %q, want class %q %q…", j.ErrorClass, j.Description, tt.wantClass, tt.wantDesc)
			}
			if log := b.store.logs[fmt.Sprintf("%d/test/unit/1", p.ID)]; j.State != StateSkipped {
				for _, line := range tt.wantLog {
					if !strings.Contains(log, "\n"+line) {
						t.Errorf("test/unit log = %q, want the line %q", log, line)
					}
				}
				if !strings.HasSuffix(log, "\n"+j.Description+"\n") {
					t.Errorf("test/unit log = %q, want it to end with the description %q", log, j.Description)
				}
			}
			if builds != tt.buildCalls {
				t.Errorf("builds = %d, want %d", builds, tt.buildCalls)
			}
			if !got.State().Terminal() {
				t.Errorf("pipeline ended %s, want a terminal state", got.State())
			}
		})
	}
}

// TestEngineDuplicates: one pipeline per commit. The same delivery, another delivery of the
// push, the merge request hook for the same commit (its merge request attached) and an API
// trigger all name the push's pipeline; a fork's commit on a branch of the same name and SHA,
// and a forced trigger, are pipelines of their own.
func TestEngineDuplicates(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	tr := Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "dev", SHA: "abc", DeliveryID: "d1"}
	first := b.pushTrigger(t, tr)
	for _, again := range []Trigger{
		tr, // the same delivery
		{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "dev", SHA: "abc", DeliveryID: "d2"},
		{Project: "G/App", ProjectID: 7, Kind: TriggerMergeRequest, Ref: "dev", SHA: "abc", DeliveryID: "d3", MergeRequestIID: 4},
		{Project: "g/app", ProjectID: 7, Kind: TriggerAPI, Ref: "dev", SHA: "abc"},
	} {
		a, err := b.engine.Accept(context.Background(), again)
		if err != nil || !a.Duplicate || a.Pipeline.ID != first.ID {
			t.Errorf("Accept(%+v) = %+v, %v, want duplicate of %d", again, a, err, first.ID)
		}
	}
	if d := b.store.dedups[3]; d.MergeRequestIID != 4 || d.Commit != b.store.dedups[0].Commit {
		t.Errorf("the merge request hook's dedup = %+v, want the push's commit and merge request 4 to attach", d)
	}
	for _, other := range []Trigger{
		{Project: "g/app", ProjectID: 50, Fork: true, Kind: TriggerMergeRequest, Ref: "dev", SHA: "abc", MergeRequestIID: 5},
		{Project: "g/app", ProjectID: 7, Kind: TriggerAPI, Ref: "dev", SHA: "abc", Force: true},
		{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "other", SHA: "abc"},
	} {
		if a, err := b.engine.Accept(context.Background(), other); err != nil || a.Duplicate {
			t.Errorf("Accept(%+v) = %+v, %v, want a pipeline of its own", other, a, err)
		}
	}
}

// TestEngineDedupWindows: how long the store keeps a trigger's dedup keys, by default and as
// set; a trigger without a delivery id has no delivery key; a schedule's ticks are deduplicated
// among themselves for the dedup window; a push of a release branch asks for a pipeline that
// releases.
func TestEngineDedupWindows(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	set, err := NewEngine(EngineOptions{Store: b.store, Queue: b.queue, Statuses: b.statuses,
		Projects: slices.Collect(maps.Values(b.engine.projects)), CommitWindow: 2 * time.Hour, DedupWindow: time.Minute, DeliveryWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b.engine.Accept(ctx, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "dev", SHA: "abc", DeliveryID: "d1"})
	set.Accept(ctx, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "dev", SHA: "def", DeliveryID: "d2"})
	set.Accept(ctx, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "master", SHA: "0a0"})
	set.Accept(ctx, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerSchedule, Ref: "dev", SHA: "def"})
	b.engine.Accept(ctx, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerSchedule, Ref: "dev", SHA: "abc"})
	want := []Dedup{
		{Delivery: "d1", DeliveryTTL: 7 * 24 * time.Hour, Commit: "g/app|dev|abc", CommitTTL: 30 * 24 * time.Hour},
		{Delivery: "d2", DeliveryTTL: time.Hour, Commit: "g/app|dev|def", CommitTTL: 2 * time.Hour},
		{Commit: "g/app|master|0a0", CommitTTL: 2 * time.Hour, Releases: true},
		{Commit: "g/app|dev|def|schedule", CommitTTL: time.Minute},
		{Commit: "g/app|dev|abc|schedule", CommitTTL: 10 * time.Minute},
	}
	if !slices.Equal(b.store.dedups, want) {
		t.Errorf("dedup keys = %+v, want %+v", b.store.dedups, want)
	}
}

// TestEngineSkipFromCommitMessage: the webhook could not see the head commit, so the engine
// reads it; a [skip ci] there skips every job and posts nothing.
func TestEngineSkipFromCommitMessage(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "master", SHA: "5k1p000", CheckSkip: true})
	b.drain(t, 0)
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	if got.State() != StateSkipped || len(b.statuses.posts) != 0 {
		t.Errorf("pipeline = %s with posts %v, want skipped and nothing posted", got.State(), b.statuses.posts)
	}
}

// TestEngineStatusesSurviveGitLabOutage: posts fail for a while; the pipeline does not wait for
// them, and every status still reaches GitLab, in order, ending terminal.
func TestEngineStatusesSurviveGitLabOutage(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	failures := 5
	real := b.statuses
	flaky := &flakyStatuses{next: real, fail: &failures}
	b.engine.statuses = flaky
	p := b.push(t, "feature")
	b.drain(t, 0)
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	if got.State() != StateSuccess {
		t.Fatalf("pipeline = %s, want success", got.State())
	}
	for _, name := range []string{"gantry/build", "gantry/test/unit", "gantry/test/lint"} {
		if want := []string{"pending", "running", "success"}; !cmp.Equal(real.posts[name], want) {
			t.Errorf("%s posts = %v, want %v", name, real.posts[name], want)
		}
	}
	if n := b.metrics.count("status deferred"); n != 5 {
		t.Errorf("deferred status posts counted %v, want the 5 failures", n)
	}
}

type flakyStatuses struct {
	next Statuses
	fail *int
}

func (f *flakyStatuses) Post(ctx context.Context, u StatusUpdate) (int64, error) {
	if *f.fail > 0 {
		*f.fail--
		return 0, errors.New("502 Bad Gateway")
	}
	return f.next.Post(ctx, u)
}

// TestSweepEndsAbandonedJobs: the queue gave up on a job whose last worker died; the sweep
// fails it for the infrastructure so the pipeline ends and GitLab sees terminal statuses.
func TestSweepEndsAbandonedJobs(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	p := b.push(t, "feature")
	task, _ := b.queue.pop()
	b.engine.Handle(context.Background(), task) // announce
	var build Task
	for _, q := range b.queue.tasks {
		if q.Kind == TaskJob {
			build = q
		}
	}
	b.queue.tasks = nil
	// The worker took the build and died: the job is running, its task archived.
	stored, _ := b.store.Pipeline(context.Background(), p.ID)
	b.engine.transition(context.Background(), stored, "build", EventRun, func(*Job) {})
	build.LastError = "asynq: task lease expired"
	b.store.abandoned = []Task{build}
	if err := b.engine.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.drain(t, 0)
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	j, _ := got.Job("build")
	if j.State != StateFailed || j.ErrorClass != ClassInfrastructure || !strings.Contains(j.Description, "worker lost") {
		t.Errorf("build = %s %s %q, want failed infrastructure, worker lost", j.State, j.ErrorClass, j.Description)
	}
	if !got.State().Terminal() {
		t.Errorf("pipeline = %s, want finished: %+v", got.State(), got.Jobs)
	}
	for name, posts := range b.statuses.posts {
		if st := State(posts[len(posts)-1]); !st.Terminal() {
			t.Errorf("%s ended %s in GitLab", name, st)
		}
	}
}

// TestSweepDiscardsOldImages: a finished pipeline's image stays for the retention, 24 hours by
// default (retries need it), and is removed after it, every such pipeline's in one sweep.
func TestSweepDiscardsOldImages(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	now := time.Unix(1e9, 0)
	b.engine.now = func() time.Time { return now }
	b.exec.BuildFunc = func(r BuildRequest) (BuildResult, error) {
		return BuildResult{ImageID: fmt.Sprintf("sha256:img%d", r.PipelineID)}, nil
	}
	b.push(t, "feature")
	b.push(t, "dev")
	b.drain(t, 0)
	b.engine.Sweep(context.Background())
	if len(b.exec.discarded) != 0 {
		t.Fatalf("image discarded right after the pipeline: %v", b.exec.discarded)
	}
	now = now.Add(23 * time.Hour)
	b.engine.Sweep(context.Background())
	if len(b.exec.discarded) != 0 {
		t.Fatalf("image discarded within the retention: %v", b.exec.discarded)
	}
	now = now.Add(2 * time.Hour)
	b.engine.Sweep(context.Background())
	slices.Sort(b.exec.discarded)
	if !cmp.Equal(b.exec.discarded, []string{"sha256:img1", "sha256:img2"}) {
		t.Errorf("discarded = %v, want both pipelines' images once the retention passed", b.exec.discarded)
	}
	b.engine.Sweep(context.Background())
	if len(b.exec.discarded) != 2 {
		t.Errorf("discarded twice: %v", b.exec.discarded)
	}
}

// TestStaleAttemptCannotFinishTheRetry: a worker of attempt 1, given up on while it still ran,
// ends after the job was retried and attempt 2 is running: its result is not stored, and nothing
// is posted for it.
func TestStaleAttemptCannotFinishTheRetry(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	p := b.push(t, "feature")
	b.drain(t, 0)
	stale, _ := b.store.Pipeline(context.Background(), p.ID)
	b.store.mu.Lock()
	for i := range b.store.pipelines[p.ID].Jobs {
		if j := &b.store.pipelines[p.ID].Jobs[i]; j.Name == "test/unit" {
			j.State, j.Attempt = StateRunning, 2
		}
	}
	b.store.mu.Unlock()
	j, _ := stale.Job("test/unit")
	j.State = StateRunning // what attempt 1's worker last saw
	posted := len(b.statuses.posts["gantry/test/unit"])
	moved, err := b.engine.transition(context.Background(), stale, "test/unit", EventFail, func(j *Job) { j.Description = "stale" })
	if err != nil || moved {
		t.Fatalf("stale attempt's transition = %v, %v, want not moved", moved, err)
	}
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	if j, _ := got.Job("test/unit"); j.State != StateRunning || j.Attempt != 2 {
		t.Errorf("test/unit = %s attempt %d, want attempt 2 still running", j.State, j.Attempt)
	}
	b.drain(t, 0)
	if n := len(b.statuses.posts["gantry/test/unit"]); n != posted {
		t.Errorf("%d statuses posted for the stale attempt", n-posted)
	}
}

// loadCounting is a memStore that counts the pipelines loaded.
type loadCounting struct {
	*memStore
	mu     sync.Mutex
	loaded map[int64]int
}

func (s *loadCounting) Pipeline(ctx context.Context, id int64) (*Pipeline, error) {
	s.mu.Lock()
	s.loaded[id]++
	s.mu.Unlock()
	return s.memStore.Pipeline(ctx, id)
}

// TestSupersedeCostsWhatStillRuns: after 30 finished pushes to a branch, the next push's start
// loads none of them; one still running is superseded; a finished one still listed (recorded
// before finishing took pipelines off the list) is taken off at the time it ended.
func TestSupersedeCostsWhatStillRuns(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	for i := range 30 {
		b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "feature", SHA: fmt.Sprintf("old%07d", i)})
		b.drain(t, 0)
	}
	legacy := int64(3)
	b.store.mu.Lock()
	delete(b.store.ended, legacy)
	b.store.mu.Unlock()
	running := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "feature", SHA: "running000"})
	b.queue.tasks = nil // its start task is queued; it has not run

	counting := &loadCounting{memStore: b.store, loaded: map[int64]int{}}
	b.engine.store = counting
	newest := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "feature", SHA: "newest0000"})
	b.drain(t, 0)
	for id, n := range counting.loaded {
		if id < running.ID && id != legacy {
			t.Errorf("pipeline %d, finished, loaded %d times by the newest push", id, n)
		}
	}
	if got, _ := b.store.Pipeline(context.Background(), running.ID); got.State() != StateCanceled {
		t.Errorf("the older unfinished pipeline = %s, want canceled (superseded)", got.State())
	}
	b.store.mu.Lock()
	defer b.store.mu.Unlock()
	if !b.store.ended[legacy] {
		t.Error("the finished pipeline still listed was not taken off the list")
	}
	if _, ok := b.store.pipelines[newest.ID]; !ok {
		t.Error("newest pipeline missing")
	}
}

// TestCanceledPipelineIsFinished: a pipeline canceled (or superseded) before its jobs ran is
// recorded as finished at once, so its image and its record follow the retention; it was left
// open until the sweep's repair found it (seen by gantry-bench soak).
func TestCanceledPipelineIsFinished(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	older := b.push(t, "feature")
	b.queue.tasks = nil
	if err := b.engine.Handle(context.Background(), Task{Kind: TaskStart, PipelineID: older.ID}); err != nil {
		t.Fatal(err)
	}
	b.queue.tasks = nil // announced; its build has not run
	b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "feature", SHA: "newer00000"})
	b.drain(t, 0)
	got, _ := b.store.Pipeline(context.Background(), older.ID)
	b.store.mu.Lock()
	defer b.store.mu.Unlock()
	if got.State() != StateCanceled || !b.store.ended[older.ID] {
		t.Errorf("superseded pipeline = %s, finished recorded %v; want canceled and recorded", got.State(), b.store.ended[older.ID])
	}
}

// sweepArgs is a memStore that records the time Sweep asks Unstarted for.
type sweepArgs struct {
	*memStore
	unstartedBefore []time.Time
}

func (s *sweepArgs) Unstarted(ctx context.Context, before time.Time) ([]int64, error) {
	s.unstartedBefore = append(s.unstartedBefore, before)
	return s.memStore.Unstarted(ctx, before)
}

// TestSweepRepairsWhatWasLost: the queue writes after three store writes were lost — two
// pipelines' first jobs and status tasks, a third pipeline's start. The sweep queues again every
// outbox's status task at once, the start of a pipeline not started for 30 seconds, and drives on
// the unfinished pipelines only once they are a minute old (far more than a step takes): an
// announced one by dispatching its next job, an unannounced one by its start task.
func TestSweepRepairsWhatWasLost(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	ctx := context.Background()
	now := time.Unix(1e9, 0)
	b.engine.now = func() time.Time { return now }
	args := &sweepArgs{memStore: b.store}
	b.engine.store = args
	var announced []*Pipeline
	for _, ref := range []string{"feature", "dev"} {
		p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: ref, SHA: ref + "000000"})
		b.queue.tasks = nil
		if err := b.engine.Handle(ctx, Task{Kind: TaskStart, PipelineID: p.ID}); err != nil {
			t.Fatal(err)
		}
		announced = append(announced, p)
	}
	unstarted := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "other", SHA: "other00000"})
	b.queue.tasks = nil // every task above is lost
	start := Task{Kind: TaskStart, PipelineID: unstarted.ID}
	var statuses, builds []Task
	for _, p := range announced {
		entry, _ := b.store.NextStatus(ctx, p.ID)
		statuses = append(statuses, Task{Kind: TaskStatuses, PipelineID: p.ID, Seq: entry.Seq})
		builds = append(builds, Task{Kind: TaskJob, PipelineID: p.ID, Job: JobBuild, Attempt: 1})
	}

	if err := b.engine.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	want := append([]Task{start}, statuses...)
	if d := cmp.Diff(want, b.queue.tasks); d != "" {
		t.Errorf("queued by the sweep right away (-want +got):\n%s", d)
	}
	if want := []time.Time{now.Add(-30 * time.Second)}; !slices.Equal(args.unstartedBefore, want) {
		t.Errorf("Unstarted asked before %v, want %v", args.unstartedBefore, want)
	}

	b.queue.tasks = nil
	now = now.Add(2 * time.Minute)
	if err := b.engine.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	want = append(append([]Task{start}, append(builds, start)...), statuses...)
	if d := cmp.Diff(want, b.queue.tasks); d != "" {
		t.Errorf("queued by the sweep two minutes later (-want +got):\n%s", d)
	}
}

// TestJobDescriptions: what a successful build and test say in GitLab: the build's time, rounded
// to a tenth of a second, and whether it reused the base tier; a test without pytest's summary,
// its own time, rounded alike.
func TestJobDescriptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		build BuildResult
		want  string // the build description's pattern
	}{
		{"no base tier", BuildResult{ImageID: "sha256:img"}, `^built in \d+(\.\d)?s$`},
		{"base tier reused", BuildResult{ImageID: "sha256:img", BaseImage: "r/app:base-1"}, `^built in \d+(\.\d)?s, base reused$`},
		{"base tier built", BuildResult{ImageID: "sha256:img", BaseImage: "r/app:base-1", BaseBuilt: true}, `^built in \d+(\.\d)?s$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupEngine(t)
			var mu sync.Mutex
			now := time.Unix(1e9, 0)
			b.engine.now = func() time.Time { // every reading 1.234567 s after the last
				mu.Lock()
				defer mu.Unlock()
				now = now.Add(1234567 * time.Microsecond)
				return now
			}
			b.exec.BuildFunc = func(BuildRequest) (BuildResult, error) { return tt.build, nil }
			b.exec.TestFunc = func(TestRequest, io.Writer) (TestResult, error) {
				return TestResult{Duration: 1234567 * time.Microsecond}, nil
			}
			p := b.push(t, "feature")
			b.drain(t, 0)
			got, _ := b.store.Pipeline(context.Background(), p.ID)
			if j, _ := got.Job(JobBuild); !regexp.MustCompile(tt.want).MatchString(j.Description) {
				t.Errorf("build description = %q, want %s", j.Description, tt.want)
			}
			if j, _ := got.Job("test/unit"); j.Description != "passed in 1.2s" {
				t.Errorf("test/unit description = %q, want passed in 1.2s", j.Description)
			}
		})
	}
}

// TestStatusesLinkToGantry: every status links to its job on the pipeline's page when gantry
// knows its public URL, and links nowhere when it does not (GitLab refuses a relative link).
func TestStatusesLinkToGantry(t *testing.T) {
	t.Parallel()
	for _, publicURL := range []string{"https://gantry.example.com", ""} {
		b := setupEngine(t)
		b.engine.publicURL = publicURL
		p := b.push(t, "feature")
		b.drain(t, 0)
		done, err := b.store.Pipeline(context.Background(), p.ID)
		if err != nil || len(done.Jobs) == 0 {
			t.Fatalf("pipeline %d after the run: %v, %v", p.ID, done, err)
		}
		want := map[string]bool{}
		for _, j := range done.Jobs {
			link := ""
			if publicURL != "" {
				link = fmt.Sprintf("%s/pipelines/%d#job-%s", publicURL, p.ID, j.Name)
			}
			want[link] = true
		}
		if len(b.statuses.links) == 0 {
			t.Fatal("nothing posted")
		}
		got := map[string]bool{}
		for _, link := range b.statuses.links {
			got[link] = true
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("public URL %q: the statuses' links (-want +got):\n%s", publicURL, d)
		}
	}
}

// finishFails is a memStore whose MarkFinished fails.
type finishFails struct{ *memStore }

func (finishFails) MarkFinished(context.Context, *Pipeline, time.Time) error { return errInjected }

// TestUnrecordedEndIsAnError: when the store cannot record that a pipeline ended, the step that
// ended it fails (a task is tried again; Cancel's caller hears of it), rather than leaving the
// pipeline open and its image kept past the retention with nobody told.
func TestUnrecordedEndIsAnError(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	ctx := context.Background()
	p := b.push(t, "feature")
	b.queue.tasks = nil
	if err := b.engine.Handle(ctx, Task{Kind: TaskStart, PipelineID: p.ID}); err != nil {
		t.Fatal(err)
	}
	b.engine.store = finishFails{b.store}
	if _, err := b.engine.Cancel(ctx, p.ID); !errors.Is(err, errInjected) {
		t.Errorf("Cancel with the end not recorded = %v, want the store's error", err)
	}
	if got, _ := b.store.Pipeline(ctx, p.ID); got.State() != StateCanceled {
		t.Errorf("pipeline = %s, want canceled all the same", got.State())
	}
}

// lateGitLabID is a Statuses whose first post gets no GitLab pipeline id, while another worker's
// post got one and stored it meanwhile; it records the pipeline id each post carried.
type lateGitLabID struct {
	store *memStore
	id    int64
	sent  []int64
}

func (s *lateGitLabID) Post(_ context.Context, u StatusUpdate) (int64, error) {
	s.sent = append(s.sent, u.PipelineID)
	if len(s.sent) == 1 {
		s.store.mu.Lock()
		s.store.pipelines[s.id].GitLabPipelineID = 777
		s.store.mu.Unlock()
	}
	return 0, nil
}

// TestStatusesJoinTheKnownGitLabPipeline: until a post learns GitLab's pipeline id, the poster
// reads it again before each post, so a status never starts a second GitLab pipeline when
// another worker's post already learnt the id.
func TestStatusesJoinTheKnownGitLabPipeline(t *testing.T) {
	t.Parallel()
	s := &lateGitLabID{}
	postStatusesThrough(t, func(b engineBundle, p *Pipeline) Statuses {
		s.store, s.id = b.store, p.ID
		return s
	})
	if want := []int64{0, 777, 777}; !slices.Equal(s.sent, want) {
		t.Errorf("posts carried GitLab pipeline ids %v, want %v", s.sent, want)
	}
}

// movedGitLabID is a Statuses whose answers name GitLab pipeline 501, then 612 from the second
// post on: the pipeline the first post made was gone, and the adapter posted the second again
// unpinned (docs/gitlab.md §3.5). It records the pipeline id each post carried.
type movedGitLabID struct{ sent []int64 }

func (s *movedGitLabID) Post(_ context.Context, u StatusUpdate) (int64, error) {
	s.sent = append(s.sent, u.PipelineID)
	if len(s.sent) == 1 {
		return 501, nil
	}
	return 612, nil
}

// TestStatusesFollowAMovedGitLabPipeline: when a post lands in another GitLab pipeline than the
// one the pipeline was pinned to, the posts after it are pinned there, and the record says so.
func TestStatusesFollowAMovedGitLabPipeline(t *testing.T) {
	t.Parallel()
	s := &movedGitLabID{}
	b, p := postStatusesThrough(t, func(engineBundle, *Pipeline) Statuses { return s })
	if want := []int64{0, 501, 612}; !slices.Equal(s.sent, want) {
		t.Errorf("posts carried GitLab pipeline ids %v, want %v", s.sent, want)
	}
	if got, _ := b.store.Pipeline(context.Background(), p.ID); got.GitLabPipelineID != 612 {
		t.Errorf("recorded GitLab pipeline id = %d, want 612", got.GitLabPipelineID)
	}
}

// postStatusesThrough starts a push pipeline, then posts its status outbox (its jobs announced
// pending) through the Statuses that statuses makes for it.
func postStatusesThrough(t *testing.T, statuses func(engineBundle, *Pipeline) Statuses) (engineBundle, *Pipeline) {
	t.Helper()
	b := setupEngine(t)
	ctx := context.Background()
	p := b.push(t, "feature")
	b.queue.tasks = nil
	if err := b.engine.Handle(ctx, Task{Kind: TaskStart, PipelineID: p.ID}); err != nil {
		t.Fatal(err)
	}
	b.engine.statuses = statuses(b, p)
	if err := b.engine.Handle(ctx, Task{Kind: TaskStatuses, PipelineID: p.ID}); err != nil {
		t.Fatal(err)
	}
	return b, p
}
