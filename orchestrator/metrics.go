package orchestrator

import (
	"cmp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The engine's Prometheus metrics, served by GET /metrics. Each is counted where the fact is
// decided: pipelines in Accept, job ends in transition, status posts in post.
var (
	pipelinesCreated = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "gantry_pipelines_created_total",
		Help: "Pipelines created, by trigger kind (push, tag_push, merge_request, api, schedule).",
	}, []string{"kind"})
	jobsEnded = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "gantry_jobs_ended_total",
		Help: "Jobs that reached a final state, by stage, state and error class (none, project, infrastructure).",
	}, []string{"stage", "state", "error_class"})
	jobSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gantry_job_duration_seconds",
		Help:    "Time from a job's start to its end, for jobs that ran, by stage and final state.",
		Buckets: []float64{1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600},
	}, []string{"stage", "state"})
	statusPosts = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "gantry_commit_status_posts_total",
		Help: "Commit status posts to GitLab, by result: posted; refused (GitLab will never take it); deferred (retried later); logged (no GitLab token).",
	}, []string{"result"})
)

// countJobEnd records a job that has just reached a final state.
func countJobEnd(j Job) {
	jobsEnded.WithLabelValues(string(j.Stage), string(j.State), cmp.Or(string(j.ErrorClass), "none")).Inc()
	if !j.StartedAt.IsZero() && !j.FinishedAt.IsZero() {
		jobSeconds.WithLabelValues(string(j.Stage), string(j.State)).Observe(j.FinishedAt.Sub(j.StartedAt).Seconds())
	}
}
