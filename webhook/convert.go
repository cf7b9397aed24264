// Package webhook takes GitLab's webhook deliveries: it checks the token, parses the event with
// the GitLab client's own parser, converts it to an orchestrator.Trigger, and answers GitLab.
package webhook

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gantry-ci/gantry/orchestrator"
	gl "gitlab.com/gitlab-org/api/client-go"
)

// zeroSHA is what GitLab sends as `after` for a deleted branch or tag.
const zeroSHA = "0000000000000000000000000000000000000000"

// errNotAnEvent is returned for a body that is not a GitLab event of the announced type.
var errNotAnEvent = errors.New("not a GitLab event")

// event is a delivery converted: either a trigger, or the reason it starts nothing.
type event struct {
	// Project is the path of the project the hook belongs to, whose token must match.
	Project string
	Trigger orchestrator.Trigger
	Ignored string
}

// convert parses a payload with the GitLab client and translates it. It is pure, so it is
// tested with GitLab's real payloads.
func convert(eventType string, payload []byte) (event, error) {
	parsed, err := gl.ParseHook(gl.EventType(eventType), payload)
	if err != nil {
		if strings.Contains(err.Error(), "unexpected event type") {
			return event{Ignored: fmt.Sprintf("event type %q starts no pipeline", eventType)}, nil
		}
		return event{}, fmt.Errorf("%w: %v", errNotAnEvent, err)
	}
	switch ev := parsed.(type) {
	case *gl.PushEvent:
		return convertPush(ev), nil
	case *gl.TagEvent:
		return convertTag(ev), nil
	case *gl.MergeEvent:
		return convertMerge(ev), nil
	}
	return event{Ignored: fmt.Sprintf("event type %q starts no pipeline", eventType)}, nil
}

func convertPush(ev *gl.PushEvent) event {
	out := event{Project: ev.Project.PathWithNamespace}
	branch, ok := strings.CutPrefix(ev.Ref, "refs/heads/")
	switch {
	case !ok:
		out.Ignored = fmt.Sprintf("ref %q is not a branch", ev.Ref)
	case ev.After == zeroSHA || ev.CheckoutSHA == "":
		out.Ignored = "branch " + branch + " deleted"
	default:
		out.Trigger = orchestrator.Trigger{
			Project: ev.Project.PathWithNamespace, ProjectID: ev.ProjectID, ProjectURL: ev.Project.WebURL,
			Kind: orchestrator.TriggerPush, Ref: branch, SHA: ev.CheckoutSHA,
		}
	}
	return out
}

func convertTag(ev *gl.TagEvent) event {
	out := event{Project: ev.Project.PathWithNamespace}
	tag, ok := strings.CutPrefix(ev.Ref, "refs/tags/")
	switch {
	case !ok:
		out.Ignored = fmt.Sprintf("ref %q is not a tag", ev.Ref)
	case ev.After == zeroSHA || ev.CheckoutSHA == "":
		out.Ignored = "tag " + tag + " deleted"
	default:
		// checkout_sha, not after: for an annotated tag `after` is the tag object (gitlab.md §2.2).
		out.Trigger = orchestrator.Trigger{
			Project: ev.Project.PathWithNamespace, ProjectID: ev.ProjectID, ProjectURL: ev.Project.WebURL,
			Kind: orchestrator.TriggerTag, Ref: tag, SHA: ev.CheckoutSHA,
		}
	}
	return out
}

func convertMerge(ev *gl.MergeEvent) event {
	a := ev.ObjectAttributes
	out := event{Project: ev.Project.PathWithNamespace}
	switch {
	case a.Action == "open" || a.Action == "reopen":
	case a.Action == "update" && a.OldRev != "":
	case a.Action == "update":
		out.Ignored = "merge request updated without new commits"
		return out
	default:
		out.Ignored = fmt.Sprintf("merge request action %q starts no pipeline", a.Action)
		return out
	}
	if a.LastCommit.ID == "" {
		out.Ignored = "merge request has no last commit"
		return out
	}
	projectURL := ev.Project.WebURL
	if a.Source != nil {
		projectURL = a.Source.WebURL
	}
	// Statuses go to the source project, where the commit lives (gitlab.md §3.1, forks).
	out.Trigger = orchestrator.Trigger{
		Project: ev.Project.PathWithNamespace, ProjectID: a.SourceProjectID, ProjectURL: projectURL,
		Kind: orchestrator.TriggerMergeRequest, Ref: a.SourceBranch, SHA: a.LastCommit.ID,
		Fork: a.SourceProjectID != a.TargetProjectID, MergeRequestIID: a.IID,
	}
	return out
}
