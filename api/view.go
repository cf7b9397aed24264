package api

import (
	"fmt"
	"strconv"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
)

// pipelineJSON is a pipeline as the API shows it: the record plus what follows from it.
type pipelineJSON struct {
	*orchestrator.Pipeline
	State orchestrator.State `json:"state"`
	// MergeRequestIID is the merge request the pipeline runs for: its trigger's, or one
	// attached since by that merge request's event for the same commit.
	MergeRequestIID int64 `json:"merge_request_iid,omitempty"`
	// DurationSeconds is from the first job's start to the last job's end, once it is over.
	DurationSeconds float64 `json:"duration_seconds,omitempty"`
	// Jobs shadows the record's jobs to add their durations.
	Jobs []jobJSON `json:"jobs"`
}

type jobJSON struct {
	orchestrator.Job
	DurationSeconds float64 `json:"duration_seconds,omitempty"`
}

func pipelineView(p *orchestrator.Pipeline) pipelineJSON {
	v := pipelineJSON{Pipeline: p, State: p.State(), MergeRequestIID: p.MergeRequestIID(), Jobs: []jobJSON{}}
	var first, last time.Time
	for _, j := range p.Jobs {
		v.Jobs = append(v.Jobs, jobJSON{Job: j, DurationSeconds: seconds(j.Duration())})
		if !j.StartedAt.IsZero() && (first.IsZero() || j.StartedAt.Before(first)) {
			first = j.StartedAt
		}
		if j.FinishedAt.After(last) {
			last = j.FinishedAt
		}
	}
	if v.State.Terminal() && !first.IsZero() && last.After(first) {
		v.DurationSeconds = seconds(last.Sub(first))
	}
	return v
}

func seconds(d time.Duration) float64 { return d.Round(time.Millisecond).Seconds() }

// durationText writes seconds the way the pages do (and their script, which must agree):
// "4.2s", "3m05s", "1h02m".
func durationText(sec float64) string {
	if sec <= 0 {
		return ""
	}
	if sec < 60 {
		return fmt.Sprintf("%.1fs", sec)
	}
	s := int64(sec)
	if s < 3600 {
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
}

// coverageText writes a coverage percentage as the pages (and their script) do: "81.25%".
func coverageText(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + "%" }

// ageText says how long ago t was, coarsely: "just now", "5m ago", "3h ago", "2d ago".
func ageText(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case t.IsZero():
		return ""
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// shortSHA is the first eight characters of a commit, as GitLab shows it.
func shortSHA(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}
