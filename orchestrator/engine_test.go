package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// memStore is an in-memory Store for engine tests; the real one is tested against Redis in store.
type memStore struct {
	mu        sync.Mutex
	pipelines map[int64]*Pipeline
	released  map[string]int64
	logs      map[string]string
	dedup     map[string]int64
	outbox    map[int64][]StatusEntry
	seq       int64
	locked    map[int64]bool
	unstarted map[int64]bool
	abandoned []Task
	finished  map[int64]time.Time
	queue     *memQueue
}

// CreatePipeline stores p and, standing in for TakeNew, queues its start.
func (m *memStore) CreatePipeline(_ context.Context, p *Pipeline, d Dedup) (int64, error) {
	m.mu.Lock()
	for _, k := range []string{"d:" + d.Delivery, "c:" + d.Content} {
		if id := m.dedup[k]; id != 0 && k != "d:" {
			m.mu.Unlock()
			return id, nil
		}
	}
	p.ID = int64(len(m.pipelines) + 1)
	m.pipelines[p.ID] = clone(p)
	m.dedup["d:"+d.Delivery], m.dedup["c:"+d.Content] = p.ID, p.ID
	m.unstarted[p.ID] = true
	m.mu.Unlock()
	return 0, m.queue.Enqueue(context.Background(), Task{Kind: TaskStart, PipelineID: p.ID})
}

func (m *memStore) WaitNew(context.Context) (int64, error) { return 0, nil }

func (m *memStore) NextStatus(_ context.Context, id int64) (*StatusEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.outbox[id]) == 0 {
		return nil, nil
	}
	e := m.outbox[id][0]
	return &e, nil
}

func (m *memStore) AckStatus(_ context.Context, id, seq int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.outbox[id]) > 0 && m.outbox[id][0].Seq == seq {
		m.outbox[id] = m.outbox[id][1:]
	}
	return nil
}

func (m *memStore) LockStatuses(_ context.Context, id int64) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.locked[id] {
		return nil, ErrLocked
	}
	m.locked[id] = true
	return func() { m.mu.Lock(); delete(m.locked, id); m.mu.Unlock() }, nil
}

func (m *memStore) Started(_ context.Context, id int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.unstarted, id)
	return nil
}

func (m *memStore) Unstarted(context.Context, time.Time) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []int64
	for id := range m.unstarted {
		ids = append(ids, id)
	}
	return ids, nil
}

func clone(p *Pipeline) *Pipeline {
	c := *p
	c.Jobs = append([]Job(nil), p.Jobs...)
	return &c
}

func (m *memStore) Pipeline(_ context.Context, id int64) (*Pipeline, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pipelines[id]
	if !ok {
		return nil, ErrNotFound
	}
	return clone(p), nil
}

func (m *memStore) UpdatePipeline(_ context.Context, p *Pipeline) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.pipelines[p.ID]
	s.Image, s.ImageRef, s.Digest, s.GitLabPipelineID = p.Image, p.ImageRef, p.Digest, p.GitLabPipelineID
	return nil
}

func (m *memStore) SwapJob(_ context.Context, id int64, from State, j Job, post *StatusEntry) (bool, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, _ := m.pipelines[id].Job(j.Name)
	if cur.State != from {
		return false, 0, nil
	}
	*cur = j
	if post == nil {
		return true, 0, nil
	}
	m.seq++
	e := *post
	e.Seq = m.seq
	m.outbox[id] = append(m.outbox[id], e)
	return true, m.seq, nil
}

func (m *memStore) AppendLog(_ context.Context, id int64, job string, attempt int, p []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logs[fmt.Sprintf("%d/%s/%d", id, job, attempt)] += string(p)
	return nil
}

func (m *memStore) Released(_ context.Context, project, branch string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.released[project+"/"+branch], nil
}

func (m *memStore) MarkReleased(_ context.Context, project, branch string, id int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.released[project+"/"+branch] = max(m.released[project+"/"+branch], id)
	return nil
}

func (m *memStore) LockRelease(context.Context, string, string) (func(), error) {
	return func() {}, nil
}

func (m *memStore) BranchPipelines(_ context.Context, project, branch string, before int64) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []int64
	for id, p := range m.pipelines {
		if id < before && p.Trigger.Kind == TriggerPush && strings.EqualFold(p.Trigger.Project, project) && p.Trigger.Ref == branch {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (m *memStore) PublishCancel(context.Context, int64) error { return nil }
func (m *memStore) Abandoned(context.Context) ([]Task, error)  { return m.abandoned, nil }
func (m *memStore) MarkFinished(_ context.Context, id int64, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.finished[id] = at
	return nil
}
func (m *memStore) FinishedBefore(_ context.Context, t time.Time) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []int64
	for id, at := range m.finished {
		if at.Before(t) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
func (m *memStore) Discarded(_ context.Context, id int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.finished, id)
	return nil
}
func (m *memStore) Forget(context.Context, Task) error         { m.abandoned = nil; return nil }
func (m *memStore) Cancellations(context.Context) <-chan int64 { return nil }

// memQueue collects tasks; the test hands them to the engine one by one.
type memQueue struct {
	mu    sync.Mutex
	tasks []Task
}

func (q *memQueue) Enqueue(_ context.Context, t Task) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.tasks = append(q.tasks, t)
	return nil
}

func (q *memQueue) pop() (Task, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.tasks) == 0 {
		return Task{}, false
	}
	t := q.tasks[0]
	q.tasks = q.tasks[1:]
	return t, true
}

// fakeExecutor's funcs stand in for the Docker engine.
type fakeExecutor struct {
	BuildFunc   func(BuildRequest) (BuildResult, error)
	TestFunc    func(TestRequest, io.Writer) (TestResult, error)
	ReleaseFunc func(ReleaseRequest) (ReleaseResult, error)
	discarded   []string
}

func (f *fakeExecutor) Build(_ context.Context, r BuildRequest, _ io.Writer) (BuildResult, error) {
	return f.BuildFunc(r)
}
func (f *fakeExecutor) Test(_ context.Context, r TestRequest, log io.Writer) (TestResult, error) {
	return f.TestFunc(r, log)
}
func (f *fakeExecutor) Release(_ context.Context, r ReleaseRequest, _ io.Writer) (ReleaseResult, error) {
	return f.ReleaseFunc(r)
}
func (f *fakeExecutor) Cleanup(context.Context, int64, string) error { return nil }
func (f *fakeExecutor) Discard(_ context.Context, id string) error {
	f.discarded = append(f.discarded, id)
	return nil
}

type fakeSource struct{}

func (fakeSource) Archive(context.Context, int64, string) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("")), nil
}

func (fakeSource) Project(_ context.Context, path string) (int64, string, error) {
	return 7, "https://gitlab.example.com/" + path, nil
}

func (fakeSource) ResolveRef(_ context.Context, _ int64, ref string) (string, error) {
	return "head-of-" + ref, nil
}

// CommitMessage answers with a skip marker for SHAs that start with "5k1p".
func (fakeSource) CommitMessage(_ context.Context, _ int64, sha string) (string, error) {
	if strings.HasPrefix(sha, "5k1p") {
		return "wip [skip ci]", nil
	}
	return "a change", nil
}

// recordedStatuses keeps every post, per status name.
type recordedStatuses struct {
	mu    sync.Mutex
	posts map[string][]string
	descs map[string]string
}

func (r *recordedStatuses) Post(_ context.Context, u StatusUpdate) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts[u.Name] = append(r.posts[u.Name], string(u.State))
	r.descs[u.Name] = u.Description
	return 501, nil
}

type engineBundle struct {
	engine   *Engine
	store    *memStore
	queue    *memQueue
	exec     *fakeExecutor
	statuses *recordedStatuses
}

func setupEngine(t *testing.T) engineBundle {
	t.Helper()
	q := &memQueue{}
	b := engineBundle{
		store: &memStore{pipelines: map[int64]*Pipeline{}, released: map[string]int64{}, logs: map[string]string{},
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
	}
	e, err := NewEngine(EngineOptions{
		Store: b.store, Queue: q, Executor: b.exec, Source: fakeSource{}, Statuses: b.statuses,
		Projects:  []Project{{Path: "g/app", Image: "r/app", Supersede: true, Tests: []TestSpec{{Name: "unit"}, {Name: "lint"}}, Release: ReleasePolicy{Branches: []string{"master"}, Tags: []string{"latest"}}}},
		PublicURL: "https://gantry.example.com", Now: func() time.Time { return time.Unix(1e9, 0) },
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
	b := setupEngine(t)
	p := b.push(t, "master")
	b.drain(t, 0)
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
	if r, _ := b.store.Released(context.Background(), "g/app", "master"); r != p.ID {
		t.Errorf("Released = %d, want %d", r, p.ID)
	}
}

// TestEngineGuardRightBeforePush is the guard's second point: a newer pipeline of the branch
// released while this one was testing, so this one must not push.
func TestEngineGuardRightBeforePush(t *testing.T) {
	b := setupEngine(t)
	p := b.push(t, "master")
	b.store.MarkReleased(context.Background(), "g/app", "master", p.ID+1)
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
	tests := []struct {
		name       string
		build      error
		test       TestResult
		testErr    error
		retries    int
		wantUnit   []string
		wantClass  ErrorClass
		wantDesc   string
		buildCalls int
	}{
		{name: "test exits 1", test: TestResult{ExitCode: 1}, wantUnit: []string{"pending", "running", "failed"}, wantClass: ClassProject, wantDesc: "exit 1: 2 passed in 0.10s", buildCalls: 1},
		{name: "test out of memory, retried then failed", test: TestResult{ExitCode: 137, OOMKilled: true}, retries: 2, wantUnit: []string{"pending", "running", "failed"}, wantClass: ClassInfrastructure, wantDesc: "infrastructure: out of memory", buildCalls: 1},
		{name: "engine gone once, then back", testErr: errors.New("engine unreachable"), retries: 2, wantUnit: []string{"pending", "running", "success"}, buildCalls: 1},
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
			if builds != tt.buildCalls {
				t.Errorf("builds = %d, want %d", builds, tt.buildCalls)
			}
			if !got.State().Terminal() {
				t.Errorf("pipeline ended %s, want a terminal state", got.State())
			}
		})
	}
}

func TestEngineDuplicates(t *testing.T) {
	b := setupEngine(t)
	tr := Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "dev", SHA: "abc", DeliveryID: "d1"}
	first := b.pushTrigger(t, tr)
	for _, again := range []Trigger{
		tr, // the same delivery
		{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "dev", SHA: "abc", DeliveryID: "d2"}, // same content
	} {
		a, err := b.engine.Accept(context.Background(), again)
		if err != nil || !a.Duplicate || a.Pipeline.ID != first.ID {
			t.Errorf("Accept(%+v) = %+v, %v, want duplicate of %d", again, a, err, first.ID)
		}
	}
	other, _ := b.engine.Accept(context.Background(), Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerMergeRequest, Ref: "dev", SHA: "abc", DeliveryID: "d3"})
	if other.Duplicate {
		t.Error("a merge request pipeline for the same SHA counted as a duplicate of the push")
	}
}

// TestEngineSkipFromCommitMessage: the webhook could not see the head commit, so the engine
// reads it; a [skip ci] there skips every job and posts nothing.
func TestEngineSkipFromCommitMessage(t *testing.T) {
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

// TestSweepDiscardsOldImages: a finished pipeline's image stays for the retention (retries need
// it) and is removed after it.
func TestSweepDiscardsOldImages(t *testing.T) {
	b := setupEngine(t)
	now := time.Unix(1e9, 0)
	b.engine.now = func() time.Time { return now }
	b.push(t, "feature")
	b.drain(t, 0)
	b.engine.Sweep(context.Background())
	if len(b.exec.discarded) != 0 {
		t.Fatalf("image discarded right after the pipeline: %v", b.exec.discarded)
	}
	now = now.Add(25 * time.Hour)
	b.engine.Sweep(context.Background())
	if !cmp.Equal(b.exec.discarded, []string{"sha256:img"}) {
		t.Errorf("discarded = %v, want the pipeline's image once the retention passed", b.exec.discarded)
	}
	b.engine.Sweep(context.Background())
	if len(b.exec.discarded) != 1 {
		t.Errorf("discarded twice: %v", b.exec.discarded)
	}
}
