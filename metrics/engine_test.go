package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestEngineMetrics: what the engine reports is on the registry it was given, under the names
// and labels the README and the alert rules use, and on no other registry.
func TestEngineMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	m := NewEngine(reg)
	start := time.Unix(1e9, 0)
	m.PipelineCreated(orchestrator.TriggerMergeRequest)
	m.JobEnded(orchestrator.Job{Stage: orchestrator.StageTest, State: orchestrator.StateFailed, ErrorClass: orchestrator.ClassProject,
		StartedAt: start, FinishedAt: start.Add(3 * time.Second)})
	m.JobEnded(orchestrator.Job{Stage: orchestrator.StageRelease, State: orchestrator.StateSkipped}) // never ran: not timed
	m.StatusPost(orchestrator.StatusDeferred)
	m.StatusPost(orchestrator.StatusDeferred)
	want := `
# HELP gantry_commit_status_posts_total Commit status posts to GitLab, by result: posted; refused (GitLab will never take it); deferred (retried later); logged (no GitLab token).
# TYPE gantry_commit_status_posts_total counter
gantry_commit_status_posts_total{result="deferred"} 2
# HELP gantry_jobs_ended_total Jobs that reached a final state, by stage, state and error class (none, project, infrastructure).
# TYPE gantry_jobs_ended_total counter
gantry_jobs_ended_total{error_class="none",stage="release",state="skipped"} 1
gantry_jobs_ended_total{error_class="project",stage="test",state="failed"} 1
# HELP gantry_pipelines_created_total Pipelines created, by trigger kind (push, tag_push, merge_request, api, schedule).
# TYPE gantry_pipelines_created_total counter
gantry_pipelines_created_total{kind="merge_request"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gantry_commit_status_posts_total", "gantry_jobs_ended_total", "gantry_pipelines_created_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.jobSeconds); n != 1 {
		t.Errorf("%d job duration series, want 1 (the test that ran)", n)
	}
	if got := testutil.ToFloat64(m.statusPosts.WithLabelValues("deferred")); got != 2 {
		t.Errorf("deferred = %v", got)
	}
	if n, _ := prometheus.DefaultGatherer.Gather(); len(n) > 0 {
		for _, f := range n {
			if strings.HasPrefix(f.GetName(), "gantry_") {
				t.Errorf("%s is on the global registry", f.GetName())
			}
		}
	}
}
