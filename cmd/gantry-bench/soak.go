package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-ci/gantry/gitlab"
	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/gantry-ci/gantry/store"
	"github.com/gantry-ci/gantry/webhook"
	"github.com/labstack/echo/v5"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// soakCommand sends --pipelines pushes through the real intake (the webhook handler over HTTP),
// runs every pipeline to its end with the real engine and store on Redis (jobs succeed at once:
// the Docker side is not what is soaked), and lets gantry's own housekeeping expire them with
// the retention shortened. It prints Redis's memory once the first window has come and gone and
// at the end, and the intake's p99 and the supersede step's cost in the first and the last
// window of pushes: what a long-lived installation pays for its history.
func soakCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	redisURL := fs.String("redis", getenv("GANTRY_TEST_REDIS_URL"), "Redis URL (default $GANTRY_TEST_REDIS_URL)")
	db := fs.Int("db", 1001, "Redis database to use; emptied first")
	pipelines := fs.Int("pipelines", 100_000, "pushes to send")
	window := fs.Int("window", 2000, "pushes measured at the start and at the end")
	senders := fs.Int("concurrency", 8, "webhooks in flight at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *window < 100 || *pipelines < 2**window {
		return errors.New("--window must be at least 100 and --pipelines at least twice --window")
	}
	rdb, err := openRedis(ctx, *redisURL, *db)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return err
	}
	s, err := startSoak(ctx, rdb)
	if err != nil {
		return err
	}
	defer s.stop()
	empty := usedMemory(ctx, rdb)

	start := time.Now()
	// A warm-up the figures leave out: connections, scripts and caches settle.
	if _, err := s.pushes(ctx, 0, *window/2, *senders); err != nil {
		return err
	}
	first, err := s.pushes(ctx, *window/2, *window, *senders)
	if err != nil {
		return err
	}
	firstLooked := s.branch.take()
	if err := s.drained(ctx); err != nil {
		return err
	}
	base, baseTTL := usedMemory(ctx, rdb), expiringBytes(ctx, rdb)
	baseStep, baseKeys := s.supersedeStep(ctx), otherKeys(ctx, rdb)
	fmt.Fprintf(stderr, "first window done: Redis %s\n", mib(base))

	if _, err := s.pushes(ctx, *window, *pipelines-*window/2, *senders); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d pipelines sent in %s\n", *pipelines-*window/2, time.Since(start).Round(time.Second))
	s.branch.take()
	last, err := s.pushes(ctx, *pipelines-*window/2, *pipelines, *senders)
	if err != nil {
		return err
	}
	lastLooked := s.branch.take()
	if err := s.drained(ctx); err != nil {
		return err
	}
	end, endTTL := usedMemory(ctx, rdb), expiringBytes(ctx, rdb)
	endStep := s.supersedeStep(ctx)

	p99first, p99last := percentile(first, 99), percentile(last, 99)
	fmt.Fprintf(stdout, "soak: %d pipelines created, run and expired in %s (retention 2s, logs 1s, dedup 2s)\n",
		*pipelines, time.Since(start).Round(time.Second))
	fmt.Fprintf(stdout, "redis used_memory: empty %s; after the first %d %s, at the end %s (%+.1f%%; target within 10%%)\n",
		mib(empty), *window, mib(base), mib(end), 100*(float64(end)/float64(base)-1))
	fmt.Fprintf(stdout, "  of which dedup keys not expired yet (deliveries and commits kept 2s here): %s and %s\n", mib(baseTTL), mib(endTTL))
	fmt.Fprintf(stdout, "  keys other than dedup keys: %d after the first window, %d at the end\n", baseKeys, otherKeys(ctx, rdb))
	fmt.Fprintf(stdout, "intake p99: pushes %d–%d %s, last %d %s (%+.1f%%; target within 20%%)\n",
		*window/2, *window, p99first.Round(time.Microsecond), *window/2, p99last.Round(time.Microsecond), 100*(float64(p99last)/float64(p99first)-1))
	fmt.Fprintf(stdout, "supersede step, idle, after the first window %s, at the end %s (%+.1f%%; target within 20%%)\n",
		baseStep.Round(time.Microsecond), endStep.Round(time.Microsecond), 100*(float64(endStep)/float64(baseStep)-1))
	fmt.Fprintf(stdout, "  pipelines it looked at per push while pushing: first window %.2f, last %.2f\n",
		firstLooked.listedPerCall(), lastLooked.listedPerCall())
	return nil
}

// supersedeStep is the mean time of the store's part of a push's supersede (listing the
// branch's pipelines older than the push), measured alone on an idle Redis.
func (s *soak) supersedeStep(ctx context.Context) time.Duration {
	const n = 1000
	start := time.Now()
	for range n {
		s.st.BranchPipelines(ctx, benchProject, "master", 1<<62)
	}
	return time.Since(start) / n
}

// otherKeys counts the keys that are not dedup keys: what the retention must keep bounded.
func otherKeys(ctx context.Context, rdb *redis.Client) int {
	n := 0
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		if !strings.HasPrefix(iter.Val(), "gantry:dedup:") {
			n++
		}
	}
	return n
}

// expiringBytes is the memory of the dedup keys, which expire by their own TTL.
func expiringBytes(ctx context.Context, rdb *redis.Client) int64 {
	var total int64
	iter := rdb.Scan(ctx, 0, "gantry:dedup:*", 1000).Iterator()
	for iter.Next(ctx) {
		n, _ := rdb.MemoryUsage(ctx, iter.Val()).Result()
		total += n
	}
	return total
}

// soak is the intake and the engine of the soak, on one Redis.
type soak struct {
	rdb    *redis.Client
	st     *store.Store
	branch *timedBranches
	url    string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	srv    *httptest.Server
	loops  *orchestrator.Service
}

const soakToken = "soak-token-5f1c0d9e2b7a4c83"

func startSoak(ctx context.Context, rdb *redis.Client) (*soak, error) {
	zero := 0
	st := store.New(rdb, store.Options{Retries: &zero})
	s := &soak{rdb: rdb, st: st, branch: &timedBranches{Store: st}}
	queue := newSoakQueue()
	engine, err := orchestrator.NewEngine(orchestrator.EngineOptions{
		Store: s.branch, Queue: queue, Executor: instantJobs{}, Source: soakSource{}, Statuses: gitlab.NewLogStatuses(zap.NewNop()),
		Projects: []orchestrator.Project{{
			Path: benchProject, Image: "registry.example.com/bench/app", Supersede: true,
			Tests: []orchestrator.TestSpec{{Name: "unit", Command: []string{"true"}, Timeout: time.Minute}},
		}},
		// Every record is kept for seconds: the dedup keys, like the pipelines they name.
		ImageRetention: time.Second, DedupWindow: 2 * time.Second, CommitWindow: 2 * time.Second, DeliveryWindow: 2 * time.Second,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.loops = orchestrator.NewService(engine)
	if err := s.loops.Start(ctx); err != nil {
		return nil, err
	}
	for range 16 {
		s.wg.Go(func() { queue.work(ctx, engine) })
	}
	// gantry serve's housekeeping and sweep, on shortened intervals.
	s.wg.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				engine.Sweep(ctx)
				st.Housekeep(ctx, store.Retention{Pipelines: 2 * time.Second, Logs: time.Second}, now, 400*time.Millisecond)
			}
		}
	})
	e := echo.New()
	webhook.New(engine, map[string]string{benchProject: soakToken}, zap.NewNop()).Register(e)
	s.srv = httptest.NewServer(e)
	s.url = s.srv.URL + "/webhooks/gitlab"
	return s, nil
}

func (s *soak) stop() {
	s.srv.Close()
	s.cancel()
	s.loops.Stop()
	s.wg.Wait()
	s.st.Close()
}

// pushes sends the pushes numbered from to to (exclusive), senders at a time, and returns how
// long each took to be answered 202.
func (s *soak) pushes(ctx context.Context, from, to, senders int) ([]time.Duration, error) {
	took := make([]time.Duration, to-from)
	var next atomic.Int64
	next.Store(int64(from))
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				d, err := s.push(ctx, i)
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
				took[i-from] = d
			}
		})
	}
	wg.Wait()
	return took, cmpErr(firstErr, ctx.Err())
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// push sends push number i: a new commit on master.
func (s *soak) push(ctx context.Context, i int) (time.Duration, error) {
	sha := fmt.Sprintf("%040x", i+1)
	body := bytes.ReplaceAll(pushTemplate, []byte("@SHA@"), []byte(sha))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", "Push Hook")
	req.Header.Set("X-Gitlab-Token", soakToken)
	req.Header.Set("Idempotency-Key", "soak-"+strconv.Itoa(i))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("push %d answered %s", i, resp.Status)
	}
	return time.Since(start), nil
}

// drained waits until every pipeline has run and been expired.
func (s *soak) drained(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Minute)
	for {
		n, err := s.rdb.ZCard(ctx, pipelinesKey).Result()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d pipelines still kept 30 minutes after the last push", n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func usedMemory(ctx context.Context, rdb *redis.Client) int64 {
	info, _ := rdb.Info(ctx, "memory").Result()
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

// timedBranches is the store with its supersede step (BranchPipelines, what every push's
// start calls) timed, and the pipelines it lists counted.
type timedBranches struct {
	*store.Store
	mu     sync.Mutex
	cost   branchCost
	listed int
}

type branchCost struct {
	calls, listed int
	total         time.Duration
}

func (c branchCost) mean() time.Duration {
	if c.calls == 0 {
		return 0
	}
	return c.total / time.Duration(c.calls)
}

func (c branchCost) listedPerCall() float64 {
	if c.calls == 0 {
		return 0
	}
	return float64(c.listed) / float64(c.calls)
}

func (t *timedBranches) BranchPipelines(ctx context.Context, project, branch string, before int64) ([]int64, error) {
	start := time.Now()
	ids, err := t.Store.BranchPipelines(ctx, project, branch, before)
	t.mu.Lock()
	t.cost.calls++
	t.cost.listed += len(ids)
	t.cost.total += time.Since(start)
	t.mu.Unlock()
	return ids, err
}

// take returns the cost counted since the last take.
func (t *timedBranches) take() branchCost {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.cost
	t.cost = branchCost{}
	return c
}

// soakQueue runs tasks in this process: the engine's work on Redis is what is soaked, not asynq.
// Like asynq with its task ids, it keeps one copy of a task that is waiting, and it never blocks
// the one enqueueing.
type soakQueue struct {
	mu      sync.Mutex
	wake    *sync.Cond
	waiting map[orchestrator.Task]bool
	list    []orchestrator.Task
}

func newSoakQueue() *soakQueue {
	q := &soakQueue{waiting: map[orchestrator.Task]bool{}}
	q.wake = sync.NewCond(&q.mu)
	return q
}

func (q *soakQueue) Enqueue(_ context.Context, t orchestrator.Task) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.waiting[t] {
		q.waiting[t] = true
		q.list = append(q.list, t)
		q.wake.Signal()
	}
	return nil
}

func (q *soakQueue) work(ctx context.Context, e *orchestrator.Engine) {
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.wake.Broadcast()
	})
	defer stop()
	for {
		q.mu.Lock()
		for len(q.list) == 0 && ctx.Err() == nil {
			q.wake.Wait()
		}
		if ctx.Err() != nil {
			q.mu.Unlock()
			return
		}
		t := q.list[0]
		q.list = q.list[1:]
		delete(q.waiting, t)
		q.mu.Unlock()
		if err := e.Handle(ctx, t); err != nil && ctx.Err() == nil {
			q.Enqueue(ctx, t) // as the queue retries
		}
	}
}

// instantJobs succeeds at every job at once.
type instantJobs struct{}

func (instantJobs) Build(context.Context, orchestrator.BuildRequest, io.Writer) (orchestrator.BuildResult, error) {
	return orchestrator.BuildResult{ImageID: "sha256:soak"}, nil
}
func (instantJobs) Test(_ context.Context, _ orchestrator.TestRequest, log io.Writer) (orchestrator.TestResult, error) {
	io.WriteString(log, "1 passed in 0.01s\n")
	return orchestrator.TestResult{}, nil
}
func (instantJobs) Release(context.Context, orchestrator.ReleaseRequest, io.Writer) (orchestrator.ReleaseResult, error) {
	return orchestrator.ReleaseResult{}, errors.New("the soak project does not release")
}
func (instantJobs) Cleanup(context.Context, string, int64, string) error { return nil }
func (instantJobs) Discard(context.Context, string) error                { return nil }

// soakSource is GitLab for the soak project: push.json's project, id 4242.
type soakSource struct{}

func (soakSource) Archive(context.Context, int64, string) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("")), nil
}
func (soakSource) CommitMessage(context.Context, int64, string) (string, error) { return "soak", nil }
func (soakSource) Project(context.Context, string) (int64, string, error) {
	return 4242, "https://gitlab.example.com/bench/app", nil
}
func (soakSource) ResolveRef(context.Context, int64, string) (string, error) {
	return "", orchestrator.ErrNotFound
}
func (soakSource) MergeRequest(context.Context, int64, int64) (orchestrator.MergeRequestHead, error) {
	return orchestrator.MergeRequestHead{}, orchestrator.ErrNotFound
}
func (soakSource) IsAncestor(context.Context, int64, string, string) (bool, error) { return false, nil }
func (soakSource) DefaultBranch(context.Context, int64) (string, error)            { return "master", nil }
func (soakSource) MemberAccess(context.Context, int64, int64) (int, error)         { return 0, nil }
