package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"go.uber.org/zap"
)

// skipPattern is GitLab CI's own SKIP_PATTERN (docs/gitlab.md §2.4).
var skipPattern = regexp.MustCompile(`(?i)\[(ci[ _-]skip|skip[ _-]ci)\]`)

// SkipCI reports whether a commit message asks for no pipeline.
func SkipCI(message string) bool { return skipPattern.MatchString(message) }

// statusPostTimeout bounds one status post, retries included.
const statusPostTimeout = 40 * time.Second

// lockWait bounds how long a statuses task waits for another worker posting the same
// pipeline's statuses; after that the queue retries it.
const lockWait = 15 * time.Second

// postStatuses posts a pipeline's status outbox to GitLab, oldest first, one worker at a time.
// An entry leaves the outbox only once GitLab took it (or refused it for good), so a GitLab
// that is down delays statuses but never loses or reorders them.
func (e *Engine) postStatuses(ctx context.Context, id int64) error {
	unlock, err := e.lockStatuses(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	var p *Pipeline
	for {
		entry, err := e.store.NextStatus(ctx, id)
		if err != nil || entry == nil {
			return err
		}
		if p == nil || (p.GitLabPipelineID == 0) {
			if p, err = e.store.Pipeline(ctx, id); err != nil {
				return err
			}
		}
		if err := e.post(ctx, p, *entry); err != nil {
			return err
		}
		if err := e.store.AckStatus(ctx, id, entry.Seq); err != nil {
			return err
		}
	}
}

func (e *Engine) lockStatuses(ctx context.Context, id int64) (func(), error) {
	deadline := e.now().Add(lockWait)
	for {
		unlock, err := e.store.LockStatuses(ctx, id)
		if !errors.Is(err, ErrLocked) {
			return unlock, err
		}
		if e.now().After(deadline) {
			return nil, fmt.Errorf("statuses of pipeline %d: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// post sends one status. A refusal for good is logged and dropped; any other error is returned
// so the task is retried with backoff.
func (e *Engine) post(ctx context.Context, p *Pipeline, s StatusEntry) error {
	projectID, _, err := e.sourceProject(ctx, p)
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnknownProject) {
		// No project in GitLab to post on: waiting will not make one.
		e.metrics.StatusPost(StatusRefused)
		e.log.Error("commit status dropped: no project to post it on", zap.Int64("pipeline", p.ID), zap.String("job", s.Job), zap.Error(err))
		return nil
	}
	if err != nil {
		return err
	}
	u := StatusUpdate{
		ProjectID: projectID, SHA: p.Trigger.SHA, Ref: p.Trigger.Ref,
		Name: StatusName(e.prefix, s.Job), State: s.State, Description: s.Description,
		Coverage: s.Coverage, PipelineID: p.GitLabPipelineID,
	}
	if e.publicURL != "" { // without one, GitLab would refuse a relative link
		u.TargetURL = PageURL(e.publicURL, p.ID, s.Job)
	}
	// Bounded below the store's status lock (a minute), so a post never outlives the lock
	// that keeps another worker from posting the same pipeline out of order.
	postCtx, cancel := context.WithTimeout(ctx, statusPostTimeout)
	defer cancel()
	glID, err := e.statuses.Post(postCtx, u)
	if errors.Is(err, ErrNoGitLab) {
		e.metrics.StatusPost(StatusLogged)
		return nil
	}
	if errors.Is(err, ErrRejected) {
		e.metrics.StatusPost(StatusRefused)
		e.log.Error("GitLab refused a commit status", zap.Int64("pipeline", p.ID), zap.String("job", s.Job),
			zap.String("state", string(s.State)), zap.Error(err))
		return nil
	}
	if err != nil {
		e.metrics.StatusPost(StatusDeferred)
		e.log.Warn("commit status not posted yet", zap.Int64("pipeline", p.ID), zap.String("job", s.Job),
			zap.String("state", string(s.State)), zap.Error(err))
		return err
	}
	e.metrics.StatusPost(StatusPosted)
	// A new id also when the pinned pipeline was gone and the post landed in another one
	// (docs/gitlab.md §3.5): later posts follow it there.
	if glID != 0 && glID != p.GitLabPipelineID {
		p.GitLabPipelineID = glID
		if err := e.store.UpdatePipeline(ctx, p); err != nil {
			return fmt.Errorf("store GitLab pipeline id: %w", err)
		}
		// Once per pipeline: which GitLab pipeline every later status is pinned to, and who
		// said so, for when GitLab refuses one as not of this commit and ref.
		e.log.Info("statuses pinned to GitLab pipeline", zap.Int64("pipeline", p.ID), zap.Int64("gitlab_pipeline", glID),
			zap.String("sha", p.Trigger.SHA), zap.String("ref", p.Trigger.Ref), zap.String("job", s.Job), zap.String("state", string(s.State)))
	}
	return nil
}

// TakeNew starts the pipelines webhooks store, as they come, until ctx ends: it announces each
// right here rather than through the queue, because a webhook answer to the first build step
// is the latency users feel, and a queue hop costs a poll interval. A process that dies in
// between leaves the pipeline in the unstarted set, and Sweep queues it.
func (e *Engine) TakeNew(ctx context.Context) {
	for ctx.Err() == nil {
		id, err := e.store.WaitNew(ctx)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("waiting for new pipelines", zap.Error(err))
				select { // a pause that Stop does not wait out
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			continue
		}
		if id == 0 {
			continue
		}
		if err := e.Handle(ctx, Task{Kind: TaskStart, PipelineID: id}); err != nil {
			e.log.Warn("start pipeline, queueing it", zap.Int64("pipeline", id), zap.Error(err))
			if err := e.queue.Enqueue(ctx, Task{Kind: TaskStart, PipelineID: id}); err != nil {
				e.log.Error("pipeline not queued; the sweep will", zap.Int64("pipeline", id), zap.Error(err))
			}
		}
	}
}

// Sweep queues again the first task of pipelines whose queueing failed after they were stored,
// so an event that was stored is never left behind; it removes old images, ends the waits for
// approval that expired, and fails the jobs the queue gave up on. Run it periodically on
// worker processes.
func (e *Engine) Sweep(ctx context.Context) error {
	ids, err := e.store.Unstarted(ctx, e.now().Add(-30*time.Second))
	if err != nil {
		return err
	}
	for _, id := range ids {
		e.log.Warn("pipeline never started, queueing it again", zap.Int64("pipeline", id))
		if err := e.queue.Enqueue(ctx, Task{Kind: TaskStart, PipelineID: id}); err != nil {
			return err
		}
	}
	if err := e.discardImages(ctx); err != nil {
		return err
	}
	if err := e.settleApprovals(ctx); err != nil {
		return fmt.Errorf("approvals: %w", err)
	}
	if err := e.repair(ctx); err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	abandoned, err := e.store.Abandoned(ctx)
	if err != nil {
		return err
	}
	for _, t := range abandoned {
		if err := e.abandon(ctx, t); err != nil {
			return err
		}
		if err := e.store.Forget(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// repairAge is how long a pipeline or an outbox goes without its next step before the sweep
// takes it: far more than a step takes, so the sweep drives on only what was lost.
const repairAge = time.Minute

// repair drives on the pipelines a lost step left: every step between two states is a store
// write followed by a queue write, and a process can die, or Redis fail, in between. An
// unfinished pipeline is announced again (announce finishes what is half done) or dispatched
// again (dispatch queues what can run, and the queue refuses a copy of a queued task); one whose
// end was not recorded is; an outbox whose posting task was lost gets one.
func (e *Engine) repair(ctx context.Context) error {
	before := e.now().Add(-repairAge)
	ids, err := e.store.Open(ctx, before)
	if err != nil {
		return err
	}
	for _, id := range ids {
		p, err := e.store.Pipeline(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		switch {
		case p.State().Terminal():
			err = e.store.MarkFinished(ctx, p, p.EndedAt())
		case slices.ContainsFunc(p.Jobs, func(j Job) bool { return j.State == StateCreated }):
			err = e.queue.Enqueue(ctx, Task{Kind: TaskStart, PipelineID: id})
		default:
			err = e.dispatch(ctx, id)
		}
		if err != nil {
			return err
		}
	}
	outboxes, err := e.store.WaitingOutboxes(ctx, before)
	if err != nil {
		return err
	}
	for _, id := range outboxes {
		entry, err := e.store.NextStatus(ctx, id)
		if err != nil {
			return err
		}
		if entry != nil {
			if err := e.queue.Enqueue(ctx, Task{Kind: TaskStatuses, PipelineID: id, Seq: entry.Seq}); err != nil {
				return err
			}
		}
	}
	return nil
}

// discardImages removes the images of pipelines finished longer ago than the retention.
func (e *Engine) discardImages(ctx context.Context) error {
	if e.exec == nil {
		return nil
	}
	ids, err := e.store.FinishedBefore(ctx, e.now().Add(-e.retention))
	if err != nil {
		return err
	}
	for _, id := range ids {
		p, err := e.store.Pipeline(ctx, id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if p != nil && p.Image != "" && p.State().Terminal() {
			if err := e.exec.Discard(ctx, p.Image); err != nil {
				return err
			}
			e.log.Info("pipeline image removed", zap.Int64("pipeline", id), zap.String("image", p.Image))
		}
		if err := e.store.Discarded(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// abandon ends the job of a task the queue gave up on — its last worker was lost — as an
// infrastructure failure, so the pipeline finishes and GitLab sees a terminal status.
func (e *Engine) abandon(ctx context.Context, t Task) error {
	if t.Kind != TaskJob {
		e.log.Error("queue gave up on a task", zap.Int64("pipeline", t.PipelineID), zap.String("kind", string(t.Kind)), zap.String("error", t.LastError))
		return nil
	}
	p, err := e.store.Pipeline(ctx, t.PipelineID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	j, ok := p.Job(t.Job)
	if !ok || j.Attempt != t.Attempt || j.State.Terminal() {
		return nil
	}
	desc := "infrastructure: worker lost (" + t.LastError + ")"
	e.log.Warn("job abandoned by the queue", zap.Int64("pipeline", p.ID), zap.String("job", j.Name), zap.String("error", t.LastError))
	if _, err := e.transition(ctx, p, j.Name, EventFail, func(j *Job) { j.Description, j.ErrorClass = desc, ClassInfrastructure }); err != nil {
		return err
	}
	return e.dispatch(ctx, p.ID)
}

// TakeOver queues again the jobs whose worker stopped renewing their lease (it died, or lost
// Redis), each as a task of its own: the queue still counts the lost task as running, and would
// hand it back only after its own lease and recovery interval, about a minute and a half. The
// takeover resumes the job: the lost attempt's containers are removed and it runs again. Run it
// every few seconds on worker processes; the lease TTL plus that interval is the takeover time.
func (e *Engine) TakeOver(ctx context.Context) error {
	leases, err := e.store.ExpiredLeases(ctx, e.now())
	if err != nil {
		return err
	}
	for _, l := range leases {
		p, err := e.store.Pipeline(ctx, l.Task.PipelineID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if p != nil {
			if j, ok := p.Job(l.Task.Job); ok && j.Attempt == l.Task.Attempt && !j.State.Terminal() {
				t := l.Task
				t.TakeoverOf = l.Holder
				e.log.Warn("job's worker lost, taking the job over", zap.Int64("pipeline", p.ID), zap.String("job", j.Name), zap.Int("attempt", j.Attempt))
				if err := e.queue.Enqueue(ctx, t); err != nil {
					return err
				}
			}
		}
		if err := e.store.DropLease(ctx, l.ID); err != nil {
			return err
		}
	}
	return nil
}
