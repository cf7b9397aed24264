package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Health is the queue and Redis as read at a scrape.
type Health struct {
	Pending, Active, Retry int
	// Latency is how long the oldest pending task has waited.
	Latency time.Duration
	// Workers counts the worker processes with a fresh heartbeat.
	Workers int
}

// healthTimeout bounds a scrape's read of Redis: Prometheus's own scrape timeout is 10 s by
// default, and an answer that says Redis is down beats one that never comes.
const healthTimeout = 3 * time.Second

// healthCollector reads Health at every scrape. It is a Collector rather than gauges set by a
// loop so that what /metrics shows is never older than the scrape, and Redis down shows as
// gantry_redis_up 0 at once.
type healthCollector struct {
	probe                               func(context.Context) (Health, error)
	up, pending, active, retry, latency *prometheus.Desc
	workers                             *prometheus.Desc
}

// NewHealth registers on reg the gauges an operator alerts on: whether Redis answers, the
// queue's tasks and the age of its oldest, and the live workers. probe reads them.
func NewHealth(reg prometheus.Registerer, probe func(context.Context) (Health, error)) {
	reg.MustRegister(&healthCollector{
		probe:   probe,
		up:      prometheus.NewDesc("gantry_redis_up", "1 when Redis answered this scrape's read of the queue, 0 when it did not.", nil, nil),
		pending: prometheus.NewDesc("gantry_queue_pending_tasks", "Tasks waiting for a worker.", nil, nil),
		active:  prometheus.NewDesc("gantry_queue_active_tasks", "Tasks a worker is running.", nil, nil),
		retry:   prometheus.NewDesc("gantry_queue_retry_tasks", "Tasks that failed and wait to be tried again.", nil, nil),
		latency: prometheus.NewDesc("gantry_queue_latency_seconds", "How long the oldest pending task has waited; it rises when workers fall behind or none is alive.", nil, nil),
		workers: prometheus.NewDesc("gantry_workers_alive", "Worker processes whose heartbeat is fresh.", nil, nil),
	})
}

func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.pending, c.active, c.retry, c.latency, c.workers} {
		ch <- d
	}
}

// Collect sends gantry_redis_up always, and the queue's gauges only when Redis answered: a
// missing series is honest where a zero would claim an empty queue.
func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), healthTimeout)
	defer cancel()
	h, err := c.probe(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(h.Pending))
	ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(h.Active))
	ch <- prometheus.MustNewConstMetric(c.retry, prometheus.GaugeValue, float64(h.Retry))
	ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, h.Latency.Seconds())
	ch <- prometheus.MustNewConstMetric(c.workers, prometheus.GaugeValue, float64(h.Workers))
}
