package api

import (
	"net/url"
	"strconv"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
)

// stageState is a stage of a listed pipeline and the state its jobs make.
type stageState struct {
	Name  orchestrator.Stage
	State orchestrator.State
}

// stageStates are the states of a pipeline's stages, in order, for the list page: each composed
// from its jobs as the pipeline's own state is from all of them.
func stageStates(p *orchestrator.Pipeline) []stageState {
	var out []stageState
	for _, stage := range []orchestrator.Stage{orchestrator.StageBuild, orchestrator.StageTest, orchestrator.StageRelease} {
		jobs := &orchestrator.Pipeline{}
		for _, j := range p.Jobs {
			if j.Stage == stage {
				jobs.Jobs = append(jobs.Jobs, j)
			}
		}
		if len(jobs.Jobs) > 0 {
			out = append(out, stageState{Name: stage, State: jobs.State()})
		}
	}
	return out
}

// stageMark is a stage's state as one character, so a state reads without its colour.
func stageMark(s orchestrator.State) string {
	switch s {
	case orchestrator.StateSuccess:
		return "✓"
	case orchestrator.StateFailed:
		return "✗"
	case orchestrator.StateRunning:
		return "●"
	case orchestrator.StateCanceled:
		return "⊘"
	case orchestrator.StateSkipped:
		return "–"
	}
	return "○"
}

// live reports whether a pipeline in this state may still change by itself, so the list page
// reads it again. One waiting for approval waits on a person, for days maybe: not live.
func live(s orchestrator.State) bool {
	return s == orchestrator.StateCreated || s == orchestrator.StatePending || s == orchestrator.StateRunning
}

// triggerText says what started a pipeline in words.
func triggerText(k orchestrator.TriggerKind) string {
	switch k {
	case orchestrator.TriggerPush:
		return "push"
	case orchestrator.TriggerTag:
		return "tag push"
	case orchestrator.TriggerMergeRequest:
		return "merge request"
	case orchestrator.TriggerAPI:
		return "API trigger"
	case orchestrator.TriggerSchedule:
		return "schedule"
	case orchestrator.TriggerLocal:
		return "gantry exec"
	case orchestrator.TriggerReconcile:
		return "push found by reconciliation (its webhook never came)"
	}
	return string(k)
}

// MergeRequestURL is the page in GitLab of the merge request the pipeline runs for: the one its
// trigger gave, else the project's merge request page when the merge request is the project's
// own (a fork's trigger names the fork, not the project holding the merge request); "" when
// unknown.
func (v pipelineJSON) MergeRequestURL() string {
	t := v.Trigger
	switch {
	case v.MergeRequestIID == 0:
		return ""
	case t.MergeRequestURL != "" && t.MergeRequestIID == v.MergeRequestIID:
		return t.MergeRequestURL
	case t.Fork || t.ProjectURL == "":
		return ""
	}
	return t.ProjectURL + "/-/merge_requests/" + url.PathEscape(strconv.FormatInt(v.MergeRequestIID, 10))
}

// clockText is the time of day of a job's start or end, as the page shows it beside the
// pipeline's date.
func clockText(t time.Time) string { return t.UTC().Format("15:04:05") }

// isoText is t for a <time datetime>.
func isoText(t time.Time) string { return t.UTC().Format(time.RFC3339) }
