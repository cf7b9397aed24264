package orchestrator

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// The engine tests' stand-ins for Redis, the queue, the Docker engine and GitLab.

// memStore is an in-memory Store for engine tests; the real one is tested against Redis in store.
type memStore struct {
	mu        sync.Mutex
	pipelines map[int64]*Pipeline
	released  map[string]string
	logs      map[string]string
	dedup     map[string]int64
	// dedups are the dedup keys CreatePipeline was given, in order.
	dedups    []Dedup
	outbox    map[int64][]StatusEntry
	seq       int64
	locked    map[int64]bool
	unstarted map[int64]bool
	abandoned []Task
	finished  map[int64]time.Time
	queue     *memQueue
	// lostLocks is how many of the next release locks are lost as soon as they are taken.
	lostLocks int
	// waiting holds when each waiting pipeline is due (Gate, Decide).
	waiting map[int64]time.Time
	// subs are the listeners of Cancellations.
	subs []chan int64
	// ended are the pipelines MarkFinished recorded: off their branch's list, no longer open.
	ended map[int64]bool
	// seen are the heads a reconciliation saw without a pipeline (SeenHead).
	seen map[string]string
	// leased are the job attempts held (HoldJob); expired are the leases a test says ran out.
	leased  map[string]bool
	expired []Lease
}

func leaseKey(id int64, job string, attempt int) string {
	return fmt.Sprintf("%d|%s|%d", id, job, attempt)
}

func (m *memStore) HoldJob(ctx context.Context, id int64, job string, attempt int) (context.Context, func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := leaseKey(id, job, attempt)
	if m.leased[k] {
		return nil, nil, ErrLocked
	}
	if m.leased == nil {
		m.leased = map[string]bool{}
	}
	m.leased[k] = true
	held, cancel := context.WithCancel(ctx)
	return held, func() {
		cancel()
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.leased, k)
	}, nil
}

func (m *memStore) ExpiredLeases(context.Context, time.Time) ([]Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.expired), nil
}

func (m *memStore) DropLease(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expired = slices.DeleteFunc(m.expired, func(l Lease) bool { return l.ID == id })
	return nil
}

// CreatePipeline stores p and, standing in for TakeNew, queues its start. The commit's pipeline
// answers as the store's script decides (store/pipelines.go), but for the image retention: unless
// one of its jobs is canceled; and when p releases and it has no release, p's release is added to
// it, unless it was gated, and its start queued again.
func (m *memStore) CreatePipeline(_ context.Context, p *Pipeline, d Dedup) (int64, bool, error) {
	m.mu.Lock()
	m.dedups = append(m.dedups, d)
	if id := m.dedup["d:"+d.Delivery]; d.Delivery != "" && id != 0 {
		m.mu.Unlock()
		return id, false, nil
	}
	if id := m.dedup["c:"+d.Commit]; !d.Force && id != 0 {
		if answers, added := m.answer(id, p, d); answers {
			m.mu.Unlock()
			if added {
				return id, true, m.queue.Enqueue(context.Background(), Task{Kind: TaskStart, PipelineID: id})
			}
			return id, false, nil
		}
	}
	p.ID = int64(len(m.pipelines) + 1)
	m.pipelines[p.ID] = clone(p)
	m.dedup["d:"+d.Delivery], m.dedup["c:"+d.Commit] = p.ID, p.ID
	m.unstarted[p.ID] = true
	m.mu.Unlock()
	return 0, false, m.queue.Enqueue(context.Background(), Task{Kind: TaskStart, PipelineID: p.ID})
}

// answer says whether pipeline id answers for p's commit, and whether p's release was added to
// it; m.mu is held.
func (m *memStore) answer(id int64, p *Pipeline, d Dedup) (answers, added bool) {
	q := m.pipelines[id]
	if q == nil || slices.ContainsFunc(q.Jobs, func(j Job) bool { return j.State == StateCanceled }) {
		return false, false
	}
	rel, releases := p.Job(JobRelease)
	if _, has := q.Job(JobRelease); has || !d.Releases || !releases {
		return true, false
	}
	if q.Approval != nil {
		return false, false
	}
	q.Jobs = append(q.Jobs, *rel)
	t := p.Trigger
	q.ReleaseTrigger = &t
	delete(m.ended, id)
	delete(m.finished, id)
	m.unstarted[id] = true
	return true, true
}

// WaitNew finds nothing new (CreatePipeline queued the start already), after a moment, as the
// real one waits a second.
func (m *memStore) WaitNew(ctx context.Context) (int64, error) {
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Millisecond):
	}
	return 0, nil
}

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
	if p.Approval != nil {
		a := *p.Approval
		c.Approval = &a
	}
	return &c
}

// Open lists the pipelines stored before a time that MarkFinished has not taken off.
func (m *memStore) Open(_ context.Context, before time.Time) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []int64
	for id, p := range m.pipelines {
		if !m.ended[id] && p.CreatedAt.Before(before) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// WaitingOutboxes lists the pipelines with a non-empty outbox, whenever their entries came.
func (m *memStore) WaitingOutboxes(context.Context, time.Time) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []int64
	for id, o := range m.outbox {
		if len(o) > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (m *memStore) LastHead(_ context.Context, project, branch string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var newest *Pipeline
	for _, p := range m.pipelines {
		if (p.Trigger.Kind == TriggerPush || p.Trigger.Kind == TriggerReconcile) && strings.EqualFold(p.Trigger.Project, project) &&
			p.Trigger.Ref == branch && (newest == nil || p.ID > newest.ID) {
			newest = p
		}
	}
	if newest == nil {
		return "", nil
	}
	return newest.Trigger.SHA, nil
}

func (m *memStore) SeenHead(_ context.Context, project, branch, sha string, _ time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]string{}
	}
	k := strings.ToLower(project) + ":" + branch
	prev := m.seen[k]
	m.seen[k] = sha
	return prev == sha, nil
}

func (m *memStore) Gate(_ context.Context, id int64, a Approval) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pipelines[id].ReleaseTrigger != nil {
		return false, nil
	}
	m.pipelines[id].Approval = &a
	if m.waiting == nil {
		m.waiting = map[int64]time.Time{}
	}
	m.waiting[id] = a.ExpiresAt
	return true, nil
}

func (m *memStore) Decide(_ context.Context, id int64, v Verdict) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pipelines[id]
	if !ok || p.Approval == nil || p.Approval.Verdict != nil {
		return false, nil
	}
	p.Approval.Verdict = &v
	m.waiting[id] = time.Time{}
	return true, nil
}

func (m *memStore) Waiting(_ context.Context, before time.Time) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int64
	for id, due := range m.waiting {
		if !due.After(before) {
			out = append(out, id)
		}
	}
	return out, nil
}

func (m *memStore) Unwait(_ context.Context, id int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.waiting, id)
	return nil
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

func (m *memStore) PlanTests(_ context.Context, id int64, file []byte, jobs []Job, order []string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.pipelines[id]
	if !ok {
		return false, ErrNotFound
	}
	if s.TestsPlanned {
		return false, nil
	}
	s.TestsPlanned, s.RepoFile = true, slices.Clone(file)
	all := append(slices.Clone(s.Jobs), jobs...)
	s.Jobs = s.Jobs[:0]
	for _, name := range order {
		for _, j := range all {
			if j.Name == name {
				s.Jobs = append(s.Jobs, j)
			}
		}
	}
	return true, nil
}

func (m *memStore) SwapJob(_ context.Context, id int64, from State, fromAttempt int, j Job, post *StatusEntry) (bool, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, _ := m.pipelines[id].Job(j.Name)
	if cur.State != from || cur.Attempt != fromAttempt {
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

func (m *memStore) Released(_ context.Context, project, branch string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.released[project+"/"+branch], nil
}

func (m *memStore) MarkReleased(_ context.Context, project, branch, sha string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.released[project+"/"+branch] = sha
	return nil
}

func (m *memStore) LockRelease(ctx context.Context, _, _ string) (context.Context, func(), error) {
	held, end := context.WithCancelCause(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lostLocks > 0 {
		m.lostLocks--
		end(ErrLockLost)
	}
	return held, func() { end(nil) }, nil
}

func (m *memStore) BranchPipelines(_ context.Context, project, branch string, before int64) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []int64
	for id, p := range m.pipelines {
		if m.ended[id] {
			continue
		}
		if id < before && p.Trigger.Kind == TriggerPush && strings.EqualFold(p.Trigger.Project, project) && p.Trigger.Ref == branch {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// PublishCancel delivers to every listener, dropping what a full listener cannot take, as
// Redis pub/sub drops for a slow subscriber.
func (m *memStore) PublishCancel(_ context.Context, id int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ch := range m.subs {
		select {
		case ch <- id:
		default:
		}
	}
	return nil
}
func (m *memStore) Abandoned(context.Context) ([]Task, error) { return m.abandoned, nil }
func (m *memStore) MarkFinished(_ context.Context, p *Pipeline, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.finished[p.ID] = at
	if m.ended == nil {
		m.ended = map[int64]bool{}
	}
	m.ended[p.ID] = true
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
func (m *memStore) Forget(context.Context, Task) error { m.abandoned = nil; return nil }

// Cancellations delivers what PublishCancel sends from now on, and closes when ctx ends.
func (m *memStore) Cancellations(ctx context.Context) <-chan int64 {
	ch := make(chan int64, 64)
	m.mu.Lock()
	m.subs = append(m.subs, ch)
	m.mu.Unlock()
	context.AfterFunc(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.subs = slices.DeleteFunc(m.subs, func(c chan int64) bool { return c == ch })
		close(ch)
	})
	return ch
}

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
	mu          sync.Mutex
	cleaned     []string // "<pipeline> <job>" for each Cleanup
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
func (f *fakeExecutor) Cleanup(_ context.Context, _ string, id int64, job string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleaned = append(f.cleaned, fmt.Sprintf("%d %s", id, job))
	return nil
}
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
	if tag, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		return "commit-of-" + tag, nil
	}
	return "head-of-" + ref, nil
}

// IsAncestor models one linear history, ordered as the SHAs sort, that every branch's head
// holds whole, except commits starting with "5tray": they are on no branch.
func (fakeSource) IsAncestor(_ context.Context, _ int64, ancestor, descendant string) (bool, error) {
	if strings.HasPrefix(ancestor, "5tray") {
		return false, nil
	}
	if strings.HasPrefix(descendant, "refs/heads/") {
		return true, nil
	}
	return ancestor <= descendant, nil
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
	// targets are the commits posted on, "<project id>@<sha>", one per post.
	targets []string
	// links are the posts' target URLs, one per post.
	links []string
	// coverage is the last coverage posted per status name, when one was.
	coverage map[string]float64
}

func (r *recordedStatuses) Post(_ context.Context, u StatusUpdate) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.targets = append(r.targets, fmt.Sprintf("%d@%s", u.ProjectID, u.SHA))
	r.links = append(r.links, u.TargetURL)
	r.posts[u.Name] = append(r.posts[u.Name], string(u.State))
	r.descs[u.Name] = u.Description
	if u.Coverage != nil {
		if r.coverage == nil {
			r.coverage = map[string]float64{}
		}
		r.coverage[u.Name] = *u.Coverage
	}
	return 501, nil
}

// MergeRequest answers that merge request iid comes from project 7, the configured one, at
// "mr-head-<iid>" of branch "feature".
func (fakeSource) MergeRequest(_ context.Context, _, iid int64) (MergeRequestHead, error) {
	return MergeRequestHead{SourceProjectID: 7, SHA: fmt.Sprintf("mr-head-%d", iid), SourceBranch: "feature", TargetBranch: "master"}, nil
}

// DefaultBranch answers "master" for every project.
func (fakeSource) DefaultBranch(context.Context, int64) (string, error) { return "master", nil }

// MemberAccess answers that user 1 is a Developer of every project, and nobody else a member.
func (fakeSource) MemberAccess(_ context.Context, _, userID int64) (int, error) {
	if userID == 1 {
		return AccessDeveloper, nil
	}
	return 0, nil
}

// scriptedSource is a Source whose project and merge request answers a test sets, recording
// every read: "project <path>", "mr <project>!<iid>", "archive <project>@<sha>",
// "message <project>@<sha>".
type scriptedSource struct {
	fakeSource
	ProjectFunc      func(path string) (int64, string, error)
	MergeRequestFunc func(projectID, iid int64) (MergeRequestHead, error)

	mu    sync.Mutex
	reads []string
}

func (s *scriptedSource) record(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads = append(s.reads, fmt.Sprintf(format, args...))
}

// readsOf returns the recorded reads that start with prefix.
func (s *scriptedSource) readsOf(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.reads {
		if strings.HasPrefix(r, prefix) {
			out = append(out, r)
		}
	}
	return out
}

func (s *scriptedSource) Project(_ context.Context, path string) (int64, string, error) {
	s.record("project %s", path)
	return s.ProjectFunc(path)
}

func (s *scriptedSource) MergeRequest(_ context.Context, projectID, iid int64) (MergeRequestHead, error) {
	s.record("mr %d!%d", projectID, iid)
	return s.MergeRequestFunc(projectID, iid)
}

func (s *scriptedSource) Archive(ctx context.Context, projectID int64, sha string) (io.ReadCloser, error) {
	s.record("archive %d@%s", projectID, sha)
	return s.fakeSource.Archive(ctx, projectID, sha)
}

func (s *scriptedSource) CommitMessage(ctx context.Context, projectID int64, sha string) (string, error) {
	s.record("message %d@%s", projectID, sha)
	return s.fakeSource.CommitMessage(ctx, projectID, sha)
}

// recordedMetrics counts what the engine reports, as "created <kind>", "ended <stage> <state>
// <class>", "timed" (a job that ran) and "status <result>".
type recordedMetrics struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *recordedMetrics) add(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[string]int{}
	}
	m.n[key]++
}

func (m *recordedMetrics) PipelineCreated(kind TriggerKind) { m.add("created " + string(kind)) }
func (m *recordedMetrics) StatusPost(r StatusResult)        { m.add("status " + string(r)) }
func (m *recordedMetrics) JobEnded(j Job) {
	m.add(fmt.Sprintf("ended %s %s %s", j.Stage, j.State, cmpOr(string(j.ErrorClass), "none")))
	if !j.StartedAt.IsZero() {
		m.add("timed")
	}
}

func (m *recordedMetrics) count(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[key]
}

func (m *recordedMetrics) counts() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.n)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
