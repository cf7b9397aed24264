package orchestrator

import (
	"strings"
	"testing"
	"time"
)

var masterOnly = ReleasePolicy{Branches: []string{"master"}, Tags: []string{"latest"}}

// TestReleaseGuardTraps is the table of traps of style.md habit 4: only a push to exactly a
// release branch of the project itself releases.
func TestReleaseGuardTraps(t *testing.T) {
	push := func(ref string) Trigger { return Trigger{Kind: TriggerPush, Ref: ref, SHA: "a"} }
	tests := []struct {
		name string
		t    Trigger
		pol  ReleasePolicy
		want bool
	}{
		{"push master", push("master"), masterOnly, true},
		{"push main", push("main"), masterOnly, false},
		{"push master-hotfix", push("master-hotfix"), masterOnly, false},
		{"push Master", push("Master"), masterOnly, false},
		{"push refs/heads/master unnormalised", push("refs/heads/master"), masterOnly, false},
		{"tag named master", Trigger{Kind: TriggerTag, Ref: "master"}, masterOnly, false},
		{"tag push, project releases tags", Trigger{Kind: TriggerTag, Ref: "v1.0"}, ReleasePolicy{Branches: []string{"master"}, TagPushes: true}, true},
		{"MR from master", Trigger{Kind: TriggerMergeRequest, Ref: "master"}, masterOnly, false},
		{"MR into master", Trigger{Kind: TriggerMergeRequest, Ref: "feature"}, masterOnly, false},
		{"push master from a fork", Trigger{Kind: TriggerPush, Ref: "master", Fork: true}, masterOnly, false},
		{"API pipeline for master", Trigger{Kind: TriggerAPI, Ref: "master"}, masterOnly, true},
		{"schedule for master", Trigger{Kind: TriggerSchedule, Ref: "master"}, masterOnly, true},
		{"API pipeline for a branch", Trigger{Kind: TriggerAPI, Ref: "dev"}, masterOnly, false},
		{"push release branch of several", push("release"), ReleasePolicy{Branches: []string{"master", "release"}}, true},
		{"no release branches", push("master"), ReleasePolicy{}, false},
		{"gantry exec of a master checkout", Trigger{Kind: TriggerLocal, Ref: "master"}, masterOnly, false},
	}
	for _, tt := range tests {
		for _, phase := range []GuardPhase{PhasePlan, PhasePush} {
			in := GuardInput{Phase: phase, Trigger: tt.t, Policy: tt.pol, Pipeline: 5,
				Jobs: []Job{{Name: JobBuild, Stage: StageBuild, State: StateSuccess}}}
			got := ReleaseGuard(in)
			if got.Allowed != tt.want {
				t.Errorf("%s: ReleaseGuard(phase %d) = %+v, want allowed %v", tt.name, phase, got, tt.want)
			}
			if !got.Allowed && got.Reason == "" {
				t.Errorf("%s: ReleaseGuard refused without a reason", tt.name)
			}
		}
	}
}

func TestReleaseGuardAtPush(t *testing.T) {
	ok := []Job{{Name: JobBuild, Stage: StageBuild, State: StateSuccess}, {Name: "test/unit", Stage: StageTest, State: StateSuccess}, {Name: JobRelease, Stage: StageRelease, State: StatePending}}
	failed := []Job{{Name: JobBuild, Stage: StageBuild, State: StateSuccess}, {Name: "test/unit", Stage: StageTest, State: StateFailed}}
	tests := []struct {
		name         string
		jobs         []Job
		released     int64
		want, outdat bool
	}{
		{"all passed, nothing released", ok, 0, true, false},
		{"all passed, older release", ok, 4, true, false},
		{"a test failed", failed, 0, false, false},
		{"newer pipeline released", ok, 9, false, true},
	}
	for _, tt := range tests {
		got := ReleaseGuard(GuardInput{Phase: PhasePush, Trigger: Trigger{Kind: TriggerPush, Ref: "master"}, Policy: masterOnly, Pipeline: 5, Jobs: tt.jobs, Released: tt.released})
		if got.Allowed != tt.want || got.Outdated != tt.outdat {
			t.Errorf("%s: ReleaseGuard = %+v, want allowed %v outdated %v", tt.name, got, tt.want, tt.outdat)
		}
		if tt.outdat && !strings.HasPrefix(got.Reason, "outdated") {
			t.Errorf("%s: reason %q does not start with outdated", tt.name, got.Reason)
		}
	}
}

// TestPlanAsksTheGuard checks the first of the guard's two points: a pipeline it refuses has no
// release job at all.
func TestPlanAsksTheGuard(t *testing.T) {
	proj := Project{Path: "g/app", Tests: []TestSpec{{Name: "unit"}, {Name: "lint"}}, Release: masterOnly}
	names := func(p *Pipeline) string {
		var n []string
		for _, j := range p.Jobs {
			n = append(n, j.Name)
		}
		return strings.Join(n, ",")
	}
	now := time.Unix(0, 0)
	if got, want := names(Plan(proj, Trigger{Kind: TriggerPush, Ref: "master"}, now)), "build,test/unit,test/lint,release"; got != want {
		t.Errorf("Plan(push master) jobs = %s, want %s", got, want)
	}
	if got, want := names(Plan(proj, Trigger{Kind: TriggerPush, Ref: "feature"}, now)), "build,test/unit,test/lint"; got != want {
		t.Errorf("Plan(push feature) jobs = %s, want %s", got, want)
	}
}

func TestNextSteps(t *testing.T) {
	p := func(states ...State) *Pipeline {
		return &Pipeline{Jobs: []Job{
			{Name: JobBuild, Stage: StageBuild, State: states[0]},
			{Name: "test/a", Stage: StageTest, State: states[1]},
			{Name: "test/b", Stage: StageTest, State: states[2]},
			{Name: JobRelease, Stage: StageRelease, State: states[3]},
		}}
	}
	tests := []struct {
		name string
		p    *Pipeline
		want string
	}{
		{"announced", p(StatePending, StatePending, StatePending, StatePending), "run build"},
		{"building", p(StateRunning, StatePending, StatePending, StatePending), ""},
		{"built", p(StateSuccess, StatePending, StatePending, StatePending), "run test/a;run test/b"},
		{"one test left", p(StateSuccess, StateSuccess, StateRunning, StatePending), ""},
		{"tests passed", p(StateSuccess, StateSuccess, StateSuccess, StatePending), "run release"},
		{"build failed", p(StateFailed, StatePending, StatePending, StatePending), "skip test/a;skip test/b;skip release"},
		{"a test failed", p(StateSuccess, StateFailed, StateRunning, StatePending), "skip release"},
	}
	for _, tt := range tests {
		var got []string
		for _, s := range NextSteps(tt.p) {
			if s.Run {
				got = append(got, "run "+s.Job)
			} else {
				got = append(got, "skip "+s.Job)
			}
		}
		if g := strings.Join(got, ";"); g != tt.want {
			t.Errorf("%s: NextSteps = %q, want %q", tt.name, g, tt.want)
		}
	}
}

func TestReleaseTags(t *testing.T) {
	p := &Pipeline{ID: 7, Trigger: Trigger{SHA: "0123456789abcdef", Ref: "feature/x"}}
	got, err := ReleaseTags([]string{"latest", "{{.ShortSHA}}", "{{.Ref}}-{{.PipelineID}}"}, p)
	if err != nil {
		t.Fatal(err)
	}
	if want := "latest,01234567,feature-x-7"; strings.Join(got, ",") != want {
		t.Errorf("ReleaseTags = %v, want %s", got, want)
	}
	if _, err := ReleaseTags([]string{"{{.Nope}}"}, p); err == nil {
		t.Error("ReleaseTags({{.Nope}}) = nil error, want one")
	}
}

func TestPytestSummary(t *testing.T) {
	out := "..F\n=== FAILURES ===\nassert 1 == 2\n1 failed, 2 passed in 0.12s\n\nexit 1 after 0.5s\n"
	if got, want := pytestSummary(out), "1 failed, 2 passed in 0.12s"; got != want {
		t.Errorf("pytestSummary = %q, want %q", got, want)
	}
}
