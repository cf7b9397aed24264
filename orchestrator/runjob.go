package orchestrator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// runJob runs one attempt of one job: it moves the job to running, does the work through the
// Executor, records the outcome, and dispatches what comes next.
func (e *Engine) runJob(ctx context.Context, p *Pipeline, t Task) error {
	j, ok := p.Job(t.Job)
	if !ok || j.Attempt != t.Attempt || j.State.Terminal() {
		return nil // a task of a job or attempt that no longer exists, or already ran
	}
	if !p.Approval.approved() {
		// Only dispatch queues jobs, and not for such a pipeline; a task that got here anyway
		// runs nothing of code nobody approved.
		e.log.Error("job of an unapproved pipeline not run", zap.Int64("pipeline", p.ID), zap.String("job", j.Name))
		return nil
	}
	var held context.Context // the release lock's lifetime; only a release holds one
	if j.Name == JobRelease {
		// Releases of one ref run one at a time, and the guard is asked again under the lock,
		// by a resumed attempt too: a newer commit may have been released while this one
		// waited, or while a lost worker's lock lapsed.
		h, unlock, err := e.lockRelease(ctx, p)
		if err != nil {
			return err
		}
		defer unlock()
		held = h
		if p, err = e.store.Pipeline(ctx, p.ID); err != nil {
			return err
		}
		if j, _ = p.Job(t.Job); j.Attempt != t.Attempt || j.State.Terminal() {
			return nil
		}
		if ok, err := e.guardAtPush(ctx, p); err != nil || !ok {
			return err
		}
	}
	// Registered before the job shows running, so a cancellation announced from then on finds
	// it in this process.
	jobCtx, cancel := context.WithCancel(ctx)
	defer e.running.add(p.ID, j.Name, cancel)()
	switch j.State {
	case StatePending:
		moved, err := e.transition(ctx, p, j.Name, EventRun, func(j *Job) {
			j.Description, j.Limits = "running", e.limits(p, j.Name)
		})
		if err != nil || !moved {
			return err
		}
	case StateRunning:
		// The queue handed the task over again: its worker died, or it failed for the
		// infrastructure. GitLab already shows it running. Whatever the lost attempt left on
		// the engine goes first.
		if _, err := e.transition(ctx, p, j.Name, EventResume, func(*Job) {}); err != nil {
			return err
		}
		if err := e.exec.Cleanup(ctx, p.ID, j.Name); err != nil {
			return fmt.Errorf("clean up after the lost attempt of %s: %w", j.Name, err)
		}
	default:
		return nil
	}
	e.log.Info("job running", zap.Int64("pipeline", p.ID), zap.String("job", j.Name), zap.Int("attempt", j.Attempt))
	log := newLogWriter(ctx, e.store, p.ID, j.Name, j.Attempt)
	// Closed on every way out; where the pipeline moves on next, closed before that too.
	defer log.Close()
	out := e.execute(jobCtx, p, *j, log, held)
	if jobCtx.Err() != nil && ctx.Err() == nil {
		// Cancelled through Cancel (or superseded): the job's state is already set.
		fmt.Fprint(log, "\ncanceled\n")
		log.Close()
		return e.dispatch(ctx, p.ID)
	}
	if out.err != nil && !errors.Is(out.err, ErrProjectFault) {
		if ctx.Err() != nil || t.Retried < t.MaxRetry {
			fmt.Fprintf(log, "\ninfrastructure error (attempt %d of %d, will retry): %v\n", t.Retried+1, t.MaxRetry+1, out.err)
			e.log.Warn("job failed for the infrastructure, retrying", zap.Int64("pipeline", p.ID), zap.String("job", j.Name), zap.Error(out.err))
			return out.err
		}
		out.class, out.desc = ClassInfrastructure, "infrastructure: "+out.err.Error()
	} else if out.err != nil {
		out.class, out.desc = ClassProject, out.err.Error()
	}
	if out.desc != "" {
		fmt.Fprintf(log, "\n%s\n", out.desc)
	}
	// The log is whole before the job shows finished: a reader following it stops there.
	if err := log.Close(); err != nil {
		e.log.Warn("job log incomplete", zap.Int64("pipeline", p.ID), zap.String("job", j.Name), zap.Error(err))
	}
	ev := EventSucceed
	if out.class != ClassNone {
		ev = EventFail
	}
	_, err := e.transition(ctx, p, j.Name, ev, func(j *Job) {
		j.Description, j.ErrorClass, j.ExitCode = out.desc, out.class, out.exitCode
	})
	if err != nil {
		return err
	}
	return e.dispatch(ctx, p.ID)
}

// outcome is what one job attempt came to.
type outcome struct {
	desc     string
	class    ErrorClass
	exitCode *int
	err      error
}

// execute does a job's work. Success and the project's failures come back in the outcome;
// out.err holds an error the job could not get past. held is the release lock's lifetime, nil
// for other jobs.
func (e *Engine) execute(ctx context.Context, p *Pipeline, j Job, log io.Writer, held context.Context) outcome {
	proj, ok := e.Project(p.Trigger.Project)
	if !ok {
		return outcome{err: fmt.Errorf("project %s is no longer configured: %w", p.Trigger.Project, ErrProjectFault)}
	}
	if p.Untrusted() {
		proj = proj.forUntrusted()
	}
	start := e.now()
	switch {
	case j.Name == JobBuild:
		return e.build(ctx, p, proj, log, start)
	case j.Name == JobRelease:
		return e.release(ctx, p, proj, log, held)
	}
	spec, ok := testSpec(proj, j.TestName())
	if !ok {
		return outcome{err: fmt.Errorf("test %s is no longer configured: %w", j.TestName(), ErrProjectFault)}
	}
	tail := &tailWriter{w: log}
	env := map[string]string{
		"CI": "true", "GANTRY_PIPELINE_ID": strconv.FormatInt(p.ID, 10), "GANTRY_JOB": j.Name,
		"GANTRY_JOB_ATTEMPT": strconv.Itoa(j.Attempt), "GANTRY_COMMIT_SHA": p.Trigger.SHA, "GANTRY_COMMIT_REF": p.Trigger.Ref,
	}
	res, err := e.exec.Test(ctx, TestRequest{PipelineID: p.ID, Project: proj.Path, ImageID: p.Image, ImageRef: p.ImageRef, Test: spec, Env: env}, tail)
	if err != nil {
		return outcome{err: err}
	}
	code := res.ExitCode
	summary := pytestSummary(tail.String())
	switch {
	case res.OOMKilled:
		return outcome{err: fmt.Errorf("out of memory (limit %d MiB), exit %d", spec.Memory>>20, code), exitCode: &code}
	case res.TimedOut:
		return outcome{class: ClassProject, desc: "timed out after " + spec.Timeout.String(), exitCode: &code}
	case code != 0:
		return outcome{class: ClassProject, desc: joinNonEmpty(fmt.Sprintf("exit %d", code), summary), exitCode: &code}
	}
	return outcome{desc: cmp.Or(summary, "passed in "+res.Duration.Round(100*time.Millisecond).String()), exitCode: &code}
}

func (e *Engine) build(ctx context.Context, p *Pipeline, proj Project, log io.Writer, start time.Time) outcome {
	// The trigger as GitLab has it: its source project checked when the pipeline started.
	trigger := p.Trigger
	id, webURL, err := e.sourceProject(ctx, p)
	if err != nil {
		return outcome{err: fmt.Errorf("project of the source: %w", err)}
	}
	trigger.ProjectID, trigger.ProjectURL = id, webURL
	src, err := e.source.Archive(ctx, id, p.Trigger.SHA)
	if errors.Is(err, ErrNotFound) {
		return outcome{err: fmt.Errorf("source of %s not found: %w", p.Trigger.ShortSHA(), ErrProjectFault)}
	}
	if err != nil {
		return outcome{err: fmt.Errorf("fetch source: %w", err)}
	}
	defer src.Close()
	res, err := e.exec.Build(ctx, BuildRequest{PipelineID: p.ID, Project: proj, Trigger: trigger, Source: src}, log)
	if err != nil {
		return outcome{err: err}
	}
	p.Image, p.ImageRef = res.ImageID, res.ImageRef
	if err := e.store.UpdatePipeline(ctx, p); err != nil {
		return outcome{err: fmt.Errorf("record image: %w", err)}
	}
	desc := "built in " + e.now().Sub(start).Round(100*time.Millisecond).String()
	if res.BaseImage != "" && !res.BaseBuilt {
		desc += ", base reused"
	}
	return outcome{desc: desc}
}

// release tags the tested image and pushes the tags, if the release lock is still held.
func (e *Engine) release(ctx context.Context, p *Pipeline, proj Project, log io.Writer, held context.Context) outcome {
	tags, err := ReleaseTags(proj.Release.Templates(p.Trigger), p)
	if err != nil {
		return outcome{err: fmt.Errorf("release tags: %v: %w", err, ErrProjectFault)}
	}
	// Lost the lock: another worker may be releasing this ref, so the push does not start; the
	// retry resumes under the lock and asks the guard again. A push that has started is not
	// interrupted: tags split between two images would be worse than a late one.
	if held == nil || held.Err() != nil {
		cause := ErrLockLost
		if held != nil {
			cause = context.Cause(held)
		}
		return outcome{err: fmt.Errorf("release lock of %s: %w", p.Trigger.Ref, cause)}
	}
	res, err := e.exec.Release(ctx, ReleaseRequest{PipelineID: p.ID, ImageID: p.Image, Repository: proj.Image, Tags: tags}, log)
	if err != nil {
		return outcome{err: err}
	}
	p.Digest = res.Digest
	if err := e.store.UpdatePipeline(ctx, p); err != nil {
		return outcome{err: fmt.Errorf("record digest: %w", err)}
	}
	// A tag's release is no branch's: the branch's mark stays what the branch released.
	if p.Trigger.Kind != TriggerTag {
		if err := e.store.MarkReleased(ctx, proj.Path, p.Trigger.Ref, p.Trigger.SHA); err != nil {
			return outcome{err: fmt.Errorf("record release: %w", err)}
		}
	}
	return outcome{desc: fmt.Sprintf("pushed %d tags, %s", len(res.Pushed), shortDigest(res.Digest))}
}

func testSpec(p Project, name string) (TestSpec, bool) {
	for _, t := range p.Tests {
		if t.Name == name {
			return t, true
		}
	}
	return TestSpec{}, false
}

// pytestRE finds pytest's closing summary, e.g. "2 failed, 3 passed in 0.41s".
var pytestRE = regexp.MustCompile(`(?m)(\d+ (?:passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?)(?:, \d+ \w+)* in [\d.]+s)`)

func pytestSummary(out string) string {
	m := pytestRE.FindAllString(out, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1]
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func joinNonEmpty(a, b string) string {
	if b == "" {
		return a
	}
	return a + ": " + b
}

// ReleaseTags renders a project's release tag templates for a pipeline.
func ReleaseTags(templates []string, p *Pipeline) ([]string, error) {
	data := TagData{SHA: p.Trigger.SHA, ShortSHA: p.Trigger.ShortSHA(), Ref: p.Trigger.Ref, PipelineID: strconv.FormatInt(p.ID, 10)}
	if p.Trigger.Kind == TriggerTag {
		data.Tag = p.Trigger.Ref
	}
	return renderTags(templates, data)
}
