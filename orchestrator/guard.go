package orchestrator

import (
	"fmt"
	"slices"
)

// GuardPhase says when the release guard is asked.
type GuardPhase int

// The two points where the guard is checked.
const (
	// PhasePlan is when the pipeline is planned: the jobs have not run yet.
	PhasePlan GuardPhase = iota
	// PhasePush is right before the image is pushed.
	PhasePush
)

// GuardInput is everything the release guard looks at.
type GuardInput struct {
	Phase    GuardPhase
	Trigger  Trigger
	Policy   ReleasePolicy
	Pipeline int64
	// Jobs are the pipeline's jobs; at PhasePush build and every test must have succeeded.
	Jobs []Job
	// Released is the newest pipeline of the branch already released, 0 if none.
	Released int64
}

// GuardVerdict is the release guard's answer.
type GuardVerdict struct {
	Allowed bool
	// Outdated is set when only check 4 failed: the release job ends skipped, with Reason.
	Outdated bool
	Reason   string
}

// ReleaseGuard decides whether a pipeline may release (product.md "The release guard"). It is
// pure so that its table of traps can be tested without anything running; the engine calls it
// when a pipeline is planned and again right before the push.
func ReleaseGuard(in GuardInput) GuardVerdict {
	t := in.Trigger
	switch {
	case t.Fork:
		return GuardVerdict{Reason: "the commit comes from a fork"}
	case t.Kind == TriggerTag:
		if !in.Policy.TagPushes {
			return GuardVerdict{Reason: "tag pushes do not release in this project"}
		}
	case t.Kind == TriggerPush || t.Kind == TriggerAPI || t.Kind == TriggerSchedule:
		// Exact match: "master-hotfix" is not "master", and a tag called master is not the branch.
		if !slices.Contains(in.Policy.Branches, t.Ref) {
			return GuardVerdict{Reason: fmt.Sprintf("%s is not a release branch", t.Ref)}
		}
	default:
		return GuardVerdict{Reason: fmt.Sprintf("%s pipelines do not release", t.Kind)}
	}
	if in.Phase == PhasePlan {
		return GuardVerdict{Allowed: true}
	}
	for _, j := range in.Jobs {
		if j.Stage != StageRelease && j.State != StateSuccess {
			return GuardVerdict{Reason: fmt.Sprintf("%s did not succeed", j.Name)}
		}
	}
	if in.Released > in.Pipeline {
		return GuardVerdict{Outdated: true, Reason: fmt.Sprintf("outdated: pipeline %d already released a newer commit of %s", in.Released, t.Ref)}
	}
	return GuardVerdict{Allowed: true}
}
