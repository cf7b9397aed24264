package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
)

// ApprovalMode says which merge requests wait for a maintainer's approval before any of their
// code is fetched, built or run. Pushes to the project itself never wait: whoever pushed has
// write access to it already.
type ApprovalMode string

// The approval modes, from the most trusting to the least.
const (
	// ApprovalNone runs every merge request at once.
	ApprovalNone ApprovalMode = "none"
	// ApprovalForks holds merge requests whose source project is not the project (the default).
	ApprovalForks ApprovalMode = "forks"
	// ApprovalNonMembers holds those from forks and those whose author is not a member of the
	// project with Developer access or more.
	ApprovalNonMembers ApprovalMode = "non-members"
	// ApprovalAll holds every merge request.
	ApprovalAll ApprovalMode = "all"
)

// AccessDeveloper is GitLab's Developer access level: the least that may push to a project's
// branches (docs/gitlab.md §7).
const AccessDeveloper = 30

// Approvers says who may approve or decline a waiting pipeline.
const Approvers = "holders of a gantry API token (gantry pipelines approve|decline)"

// Decision ends a pipeline's wait for approval.
type Decision string

// The decisions.
const (
	DecisionApproved Decision = "approved"
	DecisionDeclined Decision = "declined"
	// DecisionExpired is gantry's own, when nobody decided in time.
	DecisionExpired Decision = "expired"
)

// Approval is a pipeline's wait for approval: why it waits, until when, and how it ended.
type Approval struct {
	// Reason says why the pipeline waits ("merge request from a fork").
	Reason    string    `json:"reason"`
	Approvers string    `json:"approvers"`
	ExpiresAt time.Time `json:"expires_at"`
	// Verdict is nil while the pipeline waits.
	Verdict *Verdict `json:"verdict,omitempty"`
}

// Verdict is who decided on a waiting pipeline, how and when.
type Verdict struct {
	Decision Decision `json:"decision"`
	// By is the name the decider gave; Via is how they were let in ("API token sha256:1a2b3c4d").
	By  string    `json:"by,omitempty"`
	Via string    `json:"via,omitempty"`
	At  time.Time `json:"at"`
}

// Waiting reports whether a pipeline still waits for a decision.
func (a *Approval) Waiting() bool { return a != nil && a.Verdict == nil }

// approved reports whether a pipeline may run: it never waited, or it was approved.
func (a *Approval) approved() bool {
	return a == nil || (a.Verdict != nil && a.Verdict.Decision == DecisionApproved)
}

// Review is a request to approve or decline a waiting pipeline.
type Review struct {
	// By and Via are recorded with the decision (see Verdict).
	By, Via string
	// SHA, when set, must be (a prefix of) the commit the pipeline builds: the reviewer
	// approves the commit they looked at, never a newer one.
	SHA string
}

// gate decides, once GitLab has bound a merge request's trigger (b), whether its pipeline waits
// for approval, and records the wait before any job is announced, so every later look at the
// pipeline (a re-run of its start task, a job task, a retry) sees it.
//
// A merge request whose commit the push of a release branch of the project itself already
// asked to release (Pipeline.ReleaseTrigger) does not wait: pushes to the project never do, and
// its image must be built as the push's would be to be released.
func (e *Engine) gate(ctx context.Context, p *Pipeline, b binding) error {
	if p.Trigger.Kind != TriggerMergeRequest || p.Approval != nil || p.ReleaseTrigger != nil {
		return nil
	}
	proj, ok := e.Project(p.Trigger.Project)
	if !ok {
		return nil
	}
	reason, err := e.approvalReason(ctx, proj, b)
	if err != nil || reason == "" {
		return err
	}
	a := Approval{Reason: reason, Approvers: Approvers, ExpiresAt: e.now().Add(proj.approvalExpiry())}
	gated, err := e.store.Gate(ctx, p.ID, a)
	if err != nil {
		return fmt.Errorf("record the wait for approval: %w", err)
	}
	if !gated {
		// A push added the release since p was read; its own start task announces the release.
		e.log.Info("no wait for approval: the push of a release branch asked to release the commit", zap.Int64("pipeline", p.ID))
		return nil
	}
	p.Approval = &a
	e.log.Info("pipeline waits for approval", zap.Int64("pipeline", p.ID), zap.String("project", p.Trigger.Project),
		zap.Int64("source", b.mr.SourceProjectID), zap.String("sha", p.Trigger.SHA), zap.String("reason", reason))
	return nil
}

// approvalReason says why a bound merge request must wait under the project's mode, "" when
// it need not. Whether it comes from a fork and who wrote it are GitLab's word (b), never the
// webhook's.
func (e *Engine) approvalReason(ctx context.Context, proj Project, b binding) (string, error) {
	fork := b.mr.SourceProjectID != b.projectID
	switch proj.approvalMode() {
	case ApprovalNone:
		return "", nil
	case ApprovalAll:
		return "every merge request waits for approval", nil
	case ApprovalForks:
		if fork {
			return "merge request from a fork", nil
		}
		return "", nil
	}
	if fork {
		return "merge request from a fork", nil
	}
	level, err := e.source.MemberAccess(ctx, b.projectID, b.mr.AuthorID)
	if err != nil {
		return "", fmt.Errorf("access of the merge request's author: %w", err)
	}
	if level < AccessDeveloper {
		return fmt.Sprintf("author %s is not a Developer of the project", authorName(b.mr.Author, b.mr.AuthorID)), nil
	}
	return "", nil
}

func authorName(name string, id int64) string {
	if name != "" {
		return "@" + name
	}
	return fmt.Sprintf("user %d", id)
}

// waitingText is the description every job of a waiting pipeline is posted with.
func waitingText(p *Pipeline) string {
	return fmt.Sprintf("waiting for approval (%s): gantry pipelines approve %d", p.Approval.Reason, p.ID)
}

// Approve lets a pipeline that waits for approval run, from its build on.
func (e *Engine) Approve(ctx context.Context, id int64, r Review) (*Pipeline, error) {
	p, err := e.decide(ctx, id, DecisionApproved, r)
	if err != nil {
		return nil, err
	}
	e.log.Info("pipeline approved", zap.Int64("pipeline", id), zap.String("sha", p.Trigger.SHA),
		zap.String("by", r.By), zap.String("via", r.Via))
	return e.settled(ctx, p)
}

// Decline ends a pipeline that waits for approval: every job canceled, none of its code run.
func (e *Engine) Decline(ctx context.Context, id int64, r Review) (*Pipeline, error) {
	p, err := e.decide(ctx, id, DecisionDeclined, r)
	if err != nil {
		return nil, err
	}
	e.log.Info("pipeline declined", zap.Int64("pipeline", id), zap.String("by", r.By), zap.String("via", r.Via))
	return e.settled(ctx, p)
}

// decide records a decision on a waiting pipeline. The store takes only the first decision,
// so an approval and a decline (or the expiry) racing each other cannot both win.
func (e *Engine) decide(ctx context.Context, id int64, d Decision, r Review) (*Pipeline, error) {
	p, err := e.store.Pipeline(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := decidable(p, r); err != nil {
		return nil, err
	}
	v := Verdict{Decision: d, By: r.By, Via: r.Via, At: e.now()}
	ok, err := e.store.Decide(ctx, id, v)
	if err != nil {
		return nil, fmt.Errorf("record the decision on pipeline %d: %w", id, err)
	}
	if !ok {
		if p, err = e.store.Pipeline(ctx, id); err != nil {
			return nil, err
		}
		return nil, decidable(p, r)
	}
	p.Approval.Verdict = &v
	return p, nil
}

// decidable says why a pipeline cannot take a decision, nil when it can.
func decidable(p *Pipeline, r Review) error {
	switch {
	case p.Approval == nil:
		return refuse(p.ID, "does not wait for approval")
	case p.Approval.Verdict != nil:
		v := p.Approval.Verdict
		return refuse(p.ID, "was already %s%s at %s", v.Decision, byText(v), v.At.UTC().Format(time.RFC3339))
	case p.State().Terminal():
		return refuse(p.ID, "%s", finishedWhy(p.State()))
	case r.SHA != "" && !strings.HasPrefix(p.Trigger.SHA, strings.ToLower(r.SHA)):
		return refuse(p.ID, "builds %s, not %s; a newer commit has a pipeline of its own", p.Trigger.ShortSHA(), r.SHA)
	}
	return nil
}

func byText(v *Verdict) string {
	if v.By == "" && v.Via == "" {
		return ""
	}
	return " by " + strings.TrimSpace(v.By+" "+viaText(v.Via))
}

func viaText(via string) string {
	if via == "" {
		return ""
	}
	return "(" + via + ")"
}

// settled carries out a decision already recorded: an approved pipeline's first jobs are
// queued, a declined or expired one is canceled. It is what the sweep does too for a decision
// whose process died before carrying it out, so it may run twice.
func (e *Engine) settled(ctx context.Context, p *Pipeline) (*Pipeline, error) {
	v := p.Approval.Verdict
	var err error
	switch v.Decision {
	case DecisionApproved:
		err = e.dispatch(ctx, p.ID)
	case DecisionDeclined:
		_, err = e.cancel(ctx, p.ID, "declined"+byText(v), "")
	default:
		_, err = e.cancel(ctx, p.ID, "canceled: nobody approved it before "+p.Approval.ExpiresAt.UTC().Format(time.RFC3339), "")
	}
	if err != nil && !errors.Is(err, ErrInvalidTransition) { // canceled meanwhile: nothing to do
		return nil, err
	}
	if err := e.store.Unwait(ctx, p.ID); err != nil {
		return nil, err
	}
	return e.store.Pipeline(ctx, p.ID)
}

// settleApprovals ends the waits that are due: pipelines nobody approved in time expire, and a
// decision whose process died before carrying it out is carried out.
func (e *Engine) settleApprovals(ctx context.Context) error {
	ids, err := e.store.Waiting(ctx, e.now())
	if err != nil {
		return err
	}
	for _, id := range ids {
		p, err := e.store.Pipeline(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			err = e.store.Unwait(ctx, id)
		case err != nil:
		case p.Approval == nil || p.State().Terminal() && p.Approval.Verdict == nil:
			err = e.store.Unwait(ctx, id)
		case p.Approval.Waiting():
			if p, err = e.decide(ctx, id, DecisionExpired, Review{By: "gantry"}); err == nil {
				e.log.Info("approval expired", zap.Int64("pipeline", id))
				_, err = e.settled(ctx, p)
			}
		default:
			_, err = e.settled(ctx, p)
		}
		if err != nil && !errors.Is(err, ErrInvalidTransition) {
			return err
		}
	}
	return nil
}
