package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

const (
	taskType  = "gantry:task"
	queueName = "gantry"
	// taskTimeout bounds one task; test jobs have their own, shorter timeouts.
	taskTimeout = 2 * time.Hour
)

// taskID names a task so that asynq refuses a second copy while the first is queued or
// running: two workers that both see a job's turn has come start it once.
func taskID(t orchestrator.Task) string {
	switch t.Kind {
	case orchestrator.TaskStart:
		return fmt.Sprintf("p%d:start", t.PipelineID)
	case orchestrator.TaskStatuses:
		return fmt.Sprintf("p%d:statuses:%d", t.PipelineID, t.Seq)
	}
	if t.TakeoverOf != "" {
		return fmt.Sprintf("p%d:%s:%d:takeover:%s", t.PipelineID, t.Job, t.Attempt, t.TakeoverOf)
	}
	return fmt.Sprintf("p%d:%s:%d", t.PipelineID, t.Job, t.Attempt)
}

// statusRetries lets a statuses task outlast a GitLab outage of about a day (retries back off
// to one a minute): a status is only dropped when GitLab refuses it for good.
const statusRetries = 1500

// Enqueue implements orchestrator.Queue.
func (s *Store) Enqueue(ctx context.Context, t orchestrator.Task) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	retries := s.retries
	if t.Kind == orchestrator.TaskStatuses {
		retries = statusRetries
	}
	_, err = s.queue.EnqueueContext(ctx, asynq.NewTask(taskType, b),
		asynq.TaskID(taskID(t)), asynq.Queue(queueName), asynq.MaxRetry(retries), asynq.Timeout(taskTimeout))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	return err
}

// Worker takes tasks off the queue and hands them to a handler, Concurrency at a time.
type Worker struct {
	srv *asynq.Server
}

// WorkerOptions configure a Worker.
type WorkerOptions struct {
	Concurrency int
	// ShutdownGrace is how long running tasks get to finish on Shutdown before they are handed
	// back to the queue.
	ShutdownGrace time.Duration
	// PollInterval is how often an idle worker looks for a task; default 10ms. asynq polls
	// rather than blocks, and its default of one second would dominate how fast a push starts.
	PollInterval time.Duration
	Logger       *zap.Logger
}

// NewWorker builds a worker on the same Redis as the store.
func NewWorker(rdb redis.UniversalClient, o WorkerOptions) *Worker {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Worker{srv: asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:       o.Concurrency,
		Queues:            map[string]int{queueName: 1},
		ShutdownTimeout:   o.ShutdownGrace,
		TaskCheckInterval: cmp.Or(o.PollInterval, 10*time.Millisecond),
		// Infrastructure failures are retried soon: 2s, 4s, 8s … at most a minute.
		RetryDelayFunc: func(n int, _ error, _ *asynq.Task) time.Duration {
			return min(time.Duration(1<<min(n, 5))*2*time.Second, time.Minute)
		},
		Logger:   asynqLogger{log.Sugar()},
		LogLevel: asynq.WarnLevel,
	})}
}

// Start runs the worker in the background until Shutdown.
func (w *Worker) Start(handle func(context.Context, orchestrator.Task) error) error {
	return w.srv.Start(asynq.HandlerFunc(func(ctx context.Context, at *asynq.Task) error {
		var t orchestrator.Task
		if err := json.Unmarshal(at.Payload(), &t); err != nil {
			return fmt.Errorf("task payload: %v: %w", err, asynq.SkipRetry)
		}
		t.Retried, _ = asynq.GetRetryCount(ctx)
		t.MaxRetry, _ = asynq.GetMaxRetry(ctx)
		return handle(ctx, t)
	}))
}

// Shutdown stops taking tasks and waits up to the grace period for running ones.
func (w *Worker) Shutdown() { w.srv.Shutdown() }

// asynqLogger routes asynq's own logs to zap.
type asynqLogger struct{ s *zap.SugaredLogger }

func (l asynqLogger) Debug(args ...any) { l.s.Debug(args...) }
func (l asynqLogger) Info(args ...any)  { l.s.Info(args...) }
func (l asynqLogger) Warn(args ...any)  { l.s.Warn(args...) }
func (l asynqLogger) Error(args ...any) { l.s.Error(args...) }
func (l asynqLogger) Fatal(args ...any) { l.s.Fatal(args...) }
