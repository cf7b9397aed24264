package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/redis/go-redis/v9"
)

// createBatcher sends the create scripts of webhooks that arrive together to Redis in one
// pipeline: one write and one read for the batch instead of one of each per webhook. A round
// trip's system calls cost Redis and gantry more than the script itself (gantry-bench ingest,
// strace, INFO commandstats), so under a burst they are most of the intake's work; a webhook
// that arrives alone is sent at once, as before. Scripts still run one after another in Redis,
// each atomic, in arrival order. go-redis has no automatic pipelining (rueidis has, but would
// replace the client everywhere), so the batching is written here.
type createBatcher struct {
	rdb redis.UniversalClient
	// replicas, when above 0, is how many replicas must have a batch's writes before its
	// calls succeed; replicaWait is how long Redis waits for them.
	replicas    int
	replicaWait time.Duration
	// calls is unbuffered: a call is handed to a sender that will run it, or not handed at
	// all, so Close never strands one.
	calls     chan *createCall
	stop      chan struct{}
	startOnce sync.Once
	stopOnce  sync.Once
	// senders are the goroutines send runs in, from the first run to close, which waits for
	// them: a batch handed over is finished before the store's Close returns.
	senders sync.WaitGroup
	// batches counts the pipelines sent, so tests can see the batching.
	batches atomic.Int64
}

const (
	// createSenders is how many batches may be in flight at once: while one waits for Redis,
	// the next gathers.
	createSenders  = 2
	maxCreateBatch = 128
)

// errClosed is returned for a pipeline created after the store was closed.
var errClosed = errors.New("store closed")

type createCall struct {
	keys []string
	args []any
	res  []int64
	err  error
	done chan struct{}
}

func newCreateBatcher(rdb redis.UniversalClient, replicas int, replicaWait time.Duration) *createBatcher {
	return &createBatcher{rdb: rdb, replicas: replicas, replicaWait: replicaWait, calls: make(chan *createCall), stop: make(chan struct{})}
}

// run runs the create script with keys and args in the next batch. Once handed over the script
// runs whatever becomes of ctx, and run reports what Redis did: an event stored must never be
// answered as lost.
func (b *createBatcher) run(ctx context.Context, keys []string, args []any) ([]int64, error) {
	b.startOnce.Do(func() {
		for range createSenders {
			b.senders.Go(b.send)
		}
	})
	// Checked first, because select picks at random among ready cases.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case <-b.stop:
		return nil, errClosed
	default:
	}
	c := &createCall{keys: keys, args: args, done: make(chan struct{})}
	select {
	case b.calls <- c:
	case <-b.stop:
		return nil, errClosed
	case <-ctx.Done():
		return nil, ctx.Err() // not handed over: nothing was written
	}
	<-c.done
	return c.res, c.err
}

// send takes a call, gathers every call waiting behind it, and runs them as one pipeline.
func (b *createBatcher) send() {
	for {
		var first *createCall
		select {
		case first = <-b.calls:
		case <-b.stop:
			return
		}
		batch := []*createCall{first}
	gather:
		for len(batch) < maxCreateBatch {
			select {
			case c := <-b.calls:
				batch = append(batch, c)
			default:
				break gather
			}
		}
		b.exec(batch)
	}
}

// exec runs a batch. Its context has no deadline of its own: the client's read and write
// timeouts bound it.
func (b *createBatcher) exec(batch []*createCall) {
	b.batches.Add(1)
	ctx := context.Background()
	b.pipeline(ctx, batch, createPipeline.EvalSha)
	var again []*createCall
	for _, c := range batch {
		if redis.HasErrorPrefix(c.err, "NOSCRIPT") {
			again = append(again, c)
		}
	}
	if len(again) > 0 {
		// Redis restarted, failed over or had its scripts flushed: EVAL sends the script itself
		// (and loads it for the next batch), in a pipeline of its own with its own WAIT.
		b.pipeline(ctx, again, createPipeline.Eval)
	}
	for _, c := range batch {
		close(c.done)
	}
}

// pipeline runs calls as one pipeline, then, when replicas are asked for, WAIT on the same
// connection: Redis counts the replicas that hold every write this connection made before it
// (docs/redis.md §1), so one WAIT covers the whole batch. A call whose script ran but whose
// writes too few replicas acknowledged fails with orchestrator.ErrNotReplicated: the pipeline
// is stored on the master, and the webhook's resend finds it as a duplicate and waits again.
func (b *createBatcher) pipeline(ctx context.Context, calls []*createCall,
	eval func(context.Context, redis.Scripter, []string, ...any) *redis.Cmd) {
	cmds := make([]*redis.Cmd, len(calls))
	var wait *redis.Cmd
	b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { // errors are read per command below
		for i, c := range calls {
			cmds[i] = eval(ctx, p, c.keys, c.args...)
		}
		if b.replicas > 0 {
			// Do, since go-redis's Wait is not on its Pipeliner.
			wait = p.Do(ctx, "WAIT", b.replicas, b.replicaWait.Milliseconds())
		}
		return nil
	})
	for i, c := range calls {
		c.res, c.err = cmds[i].Int64Slice()
		if c.err != nil || wait == nil {
			continue
		}
		switch n, err := wait.Int64(); {
		case err != nil:
			c.err = fmt.Errorf("wait for %d replicas: %w", b.replicas, err)
		case n < int64(b.replicas):
			c.err = fmt.Errorf("%w: %d of %d replicas acknowledged within %s", orchestrator.ErrNotReplicated, n, b.replicas, b.replicaWait)
		}
	}
}

// close stops taking calls and waits for the senders to finish the batches they hold.
func (b *createBatcher) close() {
	b.stopOnce.Do(func() { close(b.stop) })
	b.senders.Wait()
}
