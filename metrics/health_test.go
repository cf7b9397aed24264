package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestHealthMetrics: each scrape reads the probe; Redis down shows as gantry_redis_up 0 with
// no queue figures rather than zeros that would claim an empty queue.
func TestHealthMetrics(t *testing.T) {
	t.Parallel()
	var health Health
	var fail error
	reg := prometheus.NewPedanticRegistry()
	NewHealth(reg, func(context.Context) (Health, error) { return health, fail })

	health = Health{Pending: 3, Active: 2, Retry: 1, Latency: 1500 * time.Millisecond, Workers: 4}
	want := `
# HELP gantry_queue_active_tasks Tasks a worker is running.
# TYPE gantry_queue_active_tasks gauge
gantry_queue_active_tasks 2
# HELP gantry_queue_latency_seconds How long the oldest pending task has waited; it rises when workers fall behind or none is alive.
# TYPE gantry_queue_latency_seconds gauge
gantry_queue_latency_seconds 1.5
# HELP gantry_queue_pending_tasks Tasks waiting for a worker.
# TYPE gantry_queue_pending_tasks gauge
gantry_queue_pending_tasks 3
# HELP gantry_queue_retry_tasks Tasks that failed and wait to be tried again.
# TYPE gantry_queue_retry_tasks gauge
gantry_queue_retry_tasks 1
# HELP gantry_redis_up 1 when Redis answered this scrape's read of the queue, 0 when it did not.
# TYPE gantry_redis_up gauge
gantry_redis_up 1
# HELP gantry_workers_alive Worker processes whose heartbeat is fresh.
# TYPE gantry_workers_alive gauge
gantry_workers_alive 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	fail = errors.New("connection refused")
	want = `
# HELP gantry_redis_up 1 when Redis answered this scrape's read of the queue, 0 when it did not.
# TYPE gantry_redis_up gauge
gantry_redis_up 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
