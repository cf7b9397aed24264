package orchestrator

import (
	"fmt"
	"slices"
)

// GuardPhase says when the release guard is asked.
type GuardPhase int

// The two points where the guard is checked.
const (
	// PhasePlan is when the pipeline is planned: the jobs have not run yet. It is asked twice:
	// at intake without Facts (no GitLab call may delay a webhook's answer), and by the start
	// task with them, before anything is posted.
	PhasePlan GuardPhase = iota
	// PhasePush is right before the image is pushed, under the branch's release lock.
	PhasePush
)

// GuardInput is everything the release guard looks at.
type GuardInput struct {
	Phase   GuardPhase
	Trigger Trigger
	Policy  ReleasePolicy
	// Jobs are the pipeline's jobs; at PhasePush build and every test must have succeeded.
	Jobs []Job
	// Facts are what GitLab says about the commit (check 4). They are nil only at intake; at
	// PhasePush nil refuses, so a caller that forgot to gather them cannot release.
	Facts *ReleaseFacts
}

// ReleaseFacts are what the engine learnt from GitLab about a pipeline's commit, so that the
// guard can decide by commit ancestry and stay pure. Pipeline ids decide nothing: a newer
// pipeline may build an older commit (an API trigger, a schedule, a retry).
type ReleaseFacts struct {
	// OnRef is, for a branch, that the commit is the branch's head in GitLab or an ancestor of
	// it; for a tag, that the tag points at the commit in GitLab.
	OnRef bool
	// Released is the commit the branch last released, "" when none is known.
	Released string
	// FromReleased is that the commit is Released or descends from it.
	FromReleased bool
}

// GuardVerdict is the release guard's answer.
type GuardVerdict struct {
	Allowed bool
	// Outdated is set when only check 4 failed: the release job ends skipped, with Reason.
	Outdated bool
	Reason   string
}

// ReleaseGuard decides whether a pipeline may release (README.md, "What gantry promises": the release guard). It is
// pure so that its table of traps can be tested without anything running; the engine calls it
// when a pipeline is planned and again right before the push, with the facts it gathered.
func ReleaseGuard(in GuardInput) GuardVerdict {
	t := in.Trigger
	switch {
	case t.Fork:
		return GuardVerdict{Reason: "the commit comes from a fork"}
	case t.Kind == TriggerTag:
		if !in.Policy.TagPushes {
			return GuardVerdict{Reason: "tag pushes do not release in this project"}
		}
		if in.Policy.TagPattern == nil || !in.Policy.TagPattern.MatchString(t.Ref) {
			return GuardVerdict{Reason: fmt.Sprintf("tag %s does not match the release tag pattern", t.Ref)}
		}
	case t.Kind == TriggerPush || t.Kind == TriggerAPI || t.Kind == TriggerSchedule || t.Kind == TriggerReconcile:
		// Exact match: "master-hotfix" is not "master", and a tag called master is not the branch.
		if !slices.Contains(in.Policy.Branches, t.Ref) {
			return GuardVerdict{Reason: fmt.Sprintf("%s is not a release branch", t.Ref)}
		}
	default:
		return GuardVerdict{Reason: fmt.Sprintf("%s pipelines do not release", t.Kind)}
	}
	if in.Phase == PhasePush {
		for _, j := range in.Jobs {
			if j.Stage != StageRelease && j.State != StateSuccess {
				return GuardVerdict{Reason: fmt.Sprintf("%s did not succeed", j.Name)}
			}
		}
	}
	f := in.Facts
	switch {
	case f == nil && in.Phase == PhasePlan:
		return GuardVerdict{Allowed: true}
	case f == nil:
		return GuardVerdict{Outdated: true, Reason: "not released: GitLab was not asked where the commit is"}
	case !f.OnRef && t.Kind == TriggerTag:
		return GuardVerdict{Outdated: true, Reason: fmt.Sprintf("not released: tag %s does not point at %s in GitLab", t.Ref, t.ShortSHA())}
	case !f.OnRef:
		return GuardVerdict{Outdated: true, Reason: fmt.Sprintf("not released: %s is not on %s in GitLab", t.ShortSHA(), t.Ref)}
	case t.Kind != TriggerTag && f.Released != "" && !f.FromReleased:
		return GuardVerdict{Outdated: true, Reason: fmt.Sprintf("outdated: %s already released %s, which %s does not descend from", t.Ref, shortSHA(f.Released), t.ShortSHA())}
	}
	return GuardVerdict{Allowed: true}
}

// shortSHA is the first eight characters of a commit, as GitLab shows it.
func shortSHA(sha string) string { return Trigger{SHA: sha}.ShortSHA() }
