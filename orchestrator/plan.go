package orchestrator

import "time"

// Plan lays out the jobs of a new pipeline for a trigger: build, one job per test, and release
// when the guard allows it at planning time. A pipeline the guard refuses has no release job at
// all, so nothing is ever posted for it. A project with a pipeline file gets its test jobs
// later, once the file is read at the commit (planTests): intake reads no code.
func Plan(p Project, t Trigger, now time.Time) *Pipeline {
	pl := &Pipeline{Trigger: t, CreatedAt: now}
	pl.Jobs = append(pl.Jobs, Job{Name: JobBuild, Stage: StageBuild, State: StateCreated, Attempt: 1})
	if p.PipelineFile == "" {
		pl.Jobs = append(pl.Jobs, testJobs(p.Tests)...)
	}
	if ReleaseGuard(GuardInput{Phase: PhasePlan, Trigger: t, Policy: p.Release}).Allowed {
		pl.Jobs = append(pl.Jobs, Job{Name: JobRelease, Stage: StageRelease, State: StateCreated, Attempt: 1})
	}
	return pl
}

func testJobs(tests []TestSpec) []Job {
	var jobs []Job
	for _, ts := range tests {
		jobs = append(jobs, Job{Name: TestJobPrefix + ts.Name, Stage: StageTest, State: StateCreated, Attempt: 1})
	}
	return jobs
}

// stageOrder is the order of stages; a job waits for every job of the stages before its own.
var stageOrder = map[Stage]int{StageBuild: 0, StageTest: 1, StageRelease: 2}

// Step is what should happen next to one pending job.
type Step struct {
	Job string
	// Run is true when the job's turn has come; otherwise the job is to be skipped with Reason.
	Run    bool
	Reason string
}

// NextSteps looks at a pipeline and says which pending jobs can run now and which will never run
// because a job of an earlier stage did not succeed. Jobs still waiting on earlier stages get no
// step. It is pure: the engine applies the steps.
func NextSteps(p *Pipeline) []Step {
	var steps []Step
	for _, j := range p.Jobs {
		if j.State != StatePending {
			continue
		}
		waiting, blocker := earlier(p, j)
		switch {
		case blocker != "":
			steps = append(steps, Step{Job: j.Name, Reason: "not run: " + blocker})
		case !waiting:
			steps = append(steps, Step{Job: j.Name, Run: true})
		}
	}
	return steps
}

// earlier looks at the jobs of the stages before j's: waiting is that one has not ended yet,
// blocker names the first that ended without success ("test/unit failed"), "" when none did.
func earlier(p *Pipeline, j Job) (waiting bool, blocker string) {
	for _, dep := range p.Jobs {
		if stageOrder[dep.Stage] >= stageOrder[j.Stage] {
			continue
		}
		switch {
		case dep.State == StateSuccess:
		case dep.State.Terminal():
			if blocker == "" {
				blocker = dep.Name + " " + string(dep.State)
			}
		default:
			waiting = true
		}
	}
	return waiting, blocker
}
