package api

import (
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
)

// pipelineJSON is a pipeline as the API shows it: the record plus what follows from it.
type pipelineJSON struct {
	*orchestrator.Pipeline
	State orchestrator.State `json:"state"`
	// Jobs shadows the record's jobs to add their durations.
	Jobs []jobJSON `json:"jobs"`
}

type jobJSON struct {
	orchestrator.Job
	DurationSeconds float64 `json:"duration_seconds,omitempty"`
}

func pipelineView(p *orchestrator.Pipeline) pipelineJSON {
	v := pipelineJSON{Pipeline: p, State: p.State()}
	for _, j := range p.Jobs {
		v.Jobs = append(v.Jobs, jobJSON{Job: j, DurationSeconds: j.Duration().Round(time.Millisecond).Seconds()})
	}
	return v
}

// stage is one stage's jobs, for the page.
type stage struct {
	Name orchestrator.Stage
	Jobs []jobJSON
}

// stages groups a pipeline's jobs by stage, in stage order.
func (v pipelineJSON) Stages() []stage {
	var out []stage
	for _, name := range []orchestrator.Stage{orchestrator.StageBuild, orchestrator.StageTest, orchestrator.StageRelease} {
		s := stage{Name: name}
		for _, j := range v.Jobs {
			if j.Stage == name {
				s.Jobs = append(s.Jobs, j)
			}
		}
		if len(s.Jobs) > 0 {
			out = append(out, s)
		}
	}
	return out
}
