package orchestrator

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var masterOnly = ReleasePolicy{Branches: []string{"master"}, Tags: []string{"latest"}}

// TestReleaseGuardTraps is the table of traps of style.md habit 4: only a push to exactly a
// release branch of the project itself releases.
func TestReleaseGuardTraps(t *testing.T) {
	t.Parallel()
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
		{"tag push, project releases tags", Trigger{Kind: TriggerTag, Ref: "v1.0"}, ReleasePolicy{Branches: []string{"master"}, TagPushes: true, TagPattern: regexp.MustCompile(`^v[0-9]`)}, true},
		{"tag push not matching the pattern", Trigger{Kind: TriggerTag, Ref: "latest"}, ReleasePolicy{Branches: []string{"master"}, TagPushes: true, TagPattern: regexp.MustCompile(`^v[0-9]`)}, false},
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
			in := GuardInput{Phase: phase, Trigger: tt.t, Policy: tt.pol, Facts: onMaster,
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

// onMaster are the facts of a commit on master with nothing released yet.
var onMaster = &ReleaseFacts{OnRef: true}

// TestReleaseGuardAncestry is check 4: GitLab's ancestry facts decide, at the start task and
// right before the push; pipeline ids decide nothing.
func TestReleaseGuardAncestry(t *testing.T) {
	t.Parallel()
	ok := []Job{{Name: JobBuild, Stage: StageBuild, State: StateSuccess}, {Name: "test/unit", Stage: StageTest, State: StateSuccess}, {Name: JobRelease, Stage: StageRelease, State: StatePending}}
	failed := []Job{{Name: JobBuild, Stage: StageBuild, State: StateSuccess}, {Name: "test/unit", Stage: StageTest, State: StateFailed}}
	master := func(kind TriggerKind) Trigger { return Trigger{Kind: kind, Ref: "master", SHA: "0ld0c0mm1t"} }
	tags := ReleasePolicy{Branches: []string{"master"}, TagPushes: true, TagPattern: regexp.MustCompile(`^v[0-9]`)}
	tests := []struct {
		name   string
		t      Trigger
		pol    ReleasePolicy
		jobs   []Job
		facts  *ReleaseFacts
		want   bool
		reason string // the refusal's prefix; check 4 refusals are Outdated
	}{
		{"on master, nothing released", master(TriggerPush), masterOnly, ok, onMaster, true, ""},
		{"descends from the release", master(TriggerPush), masterOnly, ok, &ReleaseFacts{OnRef: true, Released: "aaaa", FromReleased: true}, true, ""},
		{"the released commit again", master(TriggerAPI), masterOnly, ok, &ReleaseFacts{OnRef: true, Released: "0ld0c0mm1t", FromReleased: true}, true, ""},
		{"old commit of master after a newer release", master(TriggerAPI), masterOnly, ok, &ReleaseFacts{OnRef: true, Released: "newer0000"}, false, "outdated: master already released newer000"},
		{"old commit of master pushed late", master(TriggerPush), masterOnly, ok, &ReleaseFacts{OnRef: true, Released: "newer0000"}, false, "outdated"},
		{"schedule of an old commit", master(TriggerSchedule), masterOnly, ok, &ReleaseFacts{OnRef: true, Released: "newer0000"}, false, "outdated"},
		{"API trigger of a commit never on master", master(TriggerAPI), masterOnly, ok, &ReleaseFacts{}, false, "not released: 0ld0c0mm is not on master"},
		{"push of a commit GitLab does not have on master", master(TriggerPush), masterOnly, ok, &ReleaseFacts{Released: "aaaa", FromReleased: true}, false, "not released"},
		{"facts never gathered", master(TriggerPush), masterOnly, ok, nil, false, "not released"},
		{"a test failed", master(TriggerPush), masterOnly, failed, onMaster, false, "test/unit did not succeed"},
		{"tag matching the pattern", Trigger{Kind: TriggerTag, Ref: "v1.2.3", SHA: "t"}, tags, ok, &ReleaseFacts{OnRef: true, Released: "unrelated"}, true, ""},
		{"tag pointing elsewhere", Trigger{Kind: TriggerTag, Ref: "v1.2.3", SHA: "t"}, tags, ok, &ReleaseFacts{}, false, "not released: tag v1.2.3 does not point at"},
		{"tag not matching the pattern", Trigger{Kind: TriggerTag, Ref: "nightly", SHA: "t"}, tags, ok, &ReleaseFacts{OnRef: true}, false, "tag nightly does not match"},
		{"tag without a pattern", Trigger{Kind: TriggerTag, Ref: "v1.2.3", SHA: "t"}, ReleasePolicy{Branches: []string{"master"}, TagPushes: true}, ok, &ReleaseFacts{OnRef: true}, false, "tag v1.2.3 does not match"},
	}
	for _, tt := range tests {
		got := ReleaseGuard(GuardInput{Phase: PhasePush, Trigger: tt.t, Policy: tt.pol, Jobs: tt.jobs, Facts: tt.facts})
		if got.Allowed != tt.want || !strings.HasPrefix(got.Reason, tt.reason) {
			t.Errorf("%s: ReleaseGuard(push) = %+v, want allowed %v reason %q…", tt.name, got, tt.want, tt.reason)
		}
		check4 := strings.HasPrefix(tt.reason, "outdated") || strings.HasPrefix(tt.reason, "not released")
		if got.Outdated != check4 {
			t.Errorf("%s: ReleaseGuard(push).Outdated = %v, want %v (only check 4 ends the job skipped)", tt.name, got.Outdated, check4)
		}
		// At the start task the same facts decide, before the jobs have run.
		if tt.jobs[len(tt.jobs)-1].State == StatePending {
			plan := ReleaseGuard(GuardInput{Phase: PhasePlan, Trigger: tt.t, Policy: tt.pol, Facts: tt.facts})
			if tt.facts != nil && (plan.Allowed != got.Allowed || plan.Reason != got.Reason) {
				t.Errorf("%s: ReleaseGuard(plan) = %+v, want %+v like at the push", tt.name, plan, got)
			}
		}
	}
}

// TestTagReleaseTags: a tag push releases under the tag's own name and never moves latest
// unless the project says so.
func TestTagReleaseTags(t *testing.T) {
	t.Parallel()
	pol := ReleasePolicy{Branches: []string{"master"}, Tags: []string{"latest", "{{.ShortSHA}}"}, TagPushes: true, TagTags: []string{"{{.Tag}}"}}
	tag := &Pipeline{ID: 7, Trigger: Trigger{Kind: TriggerTag, Ref: "v1.2.3", SHA: "0123456789abcdef"}}
	got, err := ReleaseTags(pol.Templates(tag.Trigger), tag)
	if err != nil || !cmp.Equal(got, []string{"v1.2.3"}) {
		t.Errorf("ReleaseTags(tag v1.2.3) = %v, %v, want [v1.2.3] and not latest", got, err)
	}
	push := &Pipeline{ID: 8, Trigger: Trigger{Kind: TriggerPush, Ref: "master", SHA: "0123456789abcdef"}}
	if got, err := ReleaseTags(pol.Templates(push.Trigger), push); err != nil || !cmp.Equal(got, []string{"latest", "01234567"}) {
		t.Errorf("ReleaseTags(push master) = %v, %v, want [latest 01234567]", got, err)
	}
	if _, err := ReleaseTags([]string{"{{.Tag}}"}, push); err == nil {
		t.Error("ReleaseTags({{.Tag}}) of a branch pipeline = nil error, want one: it has no tag")
	}
}

// TestPlanAsksTheGuard checks the first of the guard's two points: a pipeline it refuses has no
// release job at all.
func TestPlanAsksTheGuard(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	// A Docker tag is at most 128 characters.
	if got, err := ReleaseTags([]string{strings.Repeat("a", 128)}, p); err != nil || len(got) != 1 {
		t.Errorf("ReleaseTags(128 characters) = %v, %v, want the tag", got, err)
	}
	if _, err := ReleaseTags([]string{strings.Repeat("a", 129)}, p); err == nil {
		t.Error("ReleaseTags(129 characters) = nil error, want one")
	}
	// A pushed tag matching a loose tag_pattern must not overwrite gantry's own test images,
	// a fork's above all, which share the release repository.
	tag := &Pipeline{ID: 7, Trigger: Trigger{Kind: TriggerTag, SHA: "0123456789abcdef"}}
	for _, name := range []string{"test-7", "fork-test-3", "Fork-x"} {
		tag.Trigger.Ref = name
		if got, err := ReleaseTags([]string{"{{.Tag}}"}, tag); err == nil {
			t.Errorf("ReleaseTags({{.Tag}}) of tag %s = %v, want an error", name, got)
		}
	}
}

// TestPytestSummary: the description is pytest's closing summary, the last one when the output
// holds several (a test that runs pytest itself prints its inner run's summary first).
func TestPytestSummary(t *testing.T) {
	t.Parallel()
	out := "..F\n=== FAILURES ===\nassert 1 == 2\n1 failed, 2 passed in 0.12s\n\nexit 1 after 0.5s\n"
	if got, want := pytestSummary(out), "1 failed, 2 passed in 0.12s"; got != want {
		t.Errorf("pytestSummary = %q, want %q", got, want)
	}
	nested := "inner: 3 passed in 0.05s\n..\n2 passed in 1.50s\n"
	if got, want := pytestSummary(nested), "2 passed in 1.50s"; got != want {
		t.Errorf("pytestSummary of two summaries = %q, want the last, %q", got, want)
	}
}
