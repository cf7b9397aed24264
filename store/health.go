package store

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// QueueHealth is the queue as an operator's alerts see it.
type QueueHealth struct {
	// Pending, Active and Retry count the tasks waiting for a worker, running, and waiting to
	// be tried again.
	Pending, Active, Retry int
	// Latency is how long the oldest pending task has waited: it rises when workers fall behind
	// or none is alive.
	Latency time.Duration
	// Workers counts the worker processes whose heartbeat is fresh (asynq's servers).
	Workers int
}

// QueueHealth reads the queue's counts and the live workers. asynq's inspector takes no
// context; Redis's own timeouts bound it. A queue no task was ever put in reads as empty.
func (s *Store) QueueHealth(ctx context.Context) (QueueHealth, error) {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return QueueHealth{}, err
	}
	var h QueueHealth
	servers, err := s.inspector.Servers()
	if err != nil {
		return QueueHealth{}, fmt.Errorf("list workers: %w", err)
	}
	h.Workers = len(servers)
	queues, err := s.inspector.Queues()
	if err != nil {
		return QueueHealth{}, fmt.Errorf("list queues: %w", err)
	}
	if !slices.Contains(queues, queueName) {
		return h, nil
	}
	info, err := s.inspector.GetQueueInfo(queueName)
	if err != nil {
		return QueueHealth{}, fmt.Errorf("queue %s: %w", queueName, err)
	}
	h.Pending, h.Active, h.Retry, h.Latency = info.Pending, info.Active, info.Retry, info.Latency
	return h, nil
}
