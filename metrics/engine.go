// Package metrics counts the engine's decisions on a Prometheus registry: it implements
// orchestrator.Metrics, so the domain never imports the Prometheus client, and every collector
// is registered on the registry it is given rather than a global one, so tests count apart.
package metrics

import (
	"cmp"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/prometheus/client_golang/prometheus"
)

// Engine holds the engine's metrics, served by GET /metrics.
type Engine struct {
	pipelinesCreated *prometheus.CounterVec
	jobsEnded        *prometheus.CounterVec
	jobSeconds       *prometheus.HistogramVec
	statusPosts      *prometheus.CounterVec
}

var _ orchestrator.Metrics = (*Engine)(nil)

// NewEngine makes the engine's metrics and registers them on reg.
func NewEngine(reg prometheus.Registerer) *Engine {
	m := &Engine{
		pipelinesCreated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_pipelines_created_total",
			Help: "Pipelines created, by trigger kind (push, tag_push, merge_request, api, schedule).",
		}, []string{"kind"}),
		jobsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_jobs_ended_total",
			Help: "Jobs that reached a final state, by stage, state and error class (none, project, infrastructure).",
		}, []string{"stage", "state", "error_class"}),
		jobSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gantry_job_duration_seconds",
			Help:    "Time from a job's start to its end, for jobs that ran, by stage and final state.",
			Buckets: []float64{1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"stage", "state"}),
		statusPosts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_commit_status_posts_total",
			Help: "Commit status posts to GitLab, by result: posted; refused (GitLab will never take it); deferred (retried later); logged (no GitLab token).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.pipelinesCreated, m.jobsEnded, m.jobSeconds, m.statusPosts)
	return m
}

// PipelineCreated implements orchestrator.Metrics.
func (m *Engine) PipelineCreated(kind orchestrator.TriggerKind) {
	m.pipelinesCreated.WithLabelValues(string(kind)).Inc()
}

// JobEnded implements orchestrator.Metrics: the job's end, and its duration when it ran.
func (m *Engine) JobEnded(j orchestrator.Job) {
	m.jobsEnded.WithLabelValues(string(j.Stage), string(j.State), cmp.Or(string(j.ErrorClass), "none")).Inc()
	if !j.StartedAt.IsZero() && !j.FinishedAt.IsZero() {
		m.jobSeconds.WithLabelValues(string(j.Stage), string(j.State)).Observe(j.FinishedAt.Sub(j.StartedAt).Seconds())
	}
}

// StatusPost implements orchestrator.Metrics.
func (m *Engine) StatusPost(result orchestrator.StatusResult) {
	m.statusPosts.WithLabelValues(string(result)).Inc()
}
