package orchestrator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
	c, ok, err := e.claim(ctx, p, t)
	if !ok || err != nil {
		return err
	}
	defer c.release()
	p, j, held := c.p, c.j, c.held
	// Registered before the job shows running, so a cancellation announced from then on finds
	// it in this process. A job stops when its lease is lost, since another worker may take it
	// over; a release does not (a push is never cut halfway): its lock keeps a second one out.
	parent := c.leased
	if j.Name == JobRelease {
		parent = ctx
	}
	jobCtx, cancel := context.WithCancel(parent)
	defer e.running.add(p.ID, j.Name, cancel)()
	if ok, err := e.begin(ctx, p, j); !ok || err != nil {
		return err
	}
	e.log.Info("job running", zap.Int64("pipeline", p.ID), zap.String("job", j.Name), zap.Int("attempt", j.Attempt))
	log := newLogWriter(ctx, e.store, p.ID, j.Name, j.Attempt)
	// Closed on every way out; where the pipeline moves on next, closed before that too.
	defer log.Close()
	out := e.execute(jobCtx, p, *j, log, held)
	if errors.Is(context.Cause(c.leased), ErrLockLost) && ctx.Err() == nil {
		e.log.Warn("job lease lost; another worker takes the job over", zap.Int64("pipeline", p.ID), zap.String("job", j.Name))
		return nil
	}
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
	_, err = e.transition(ctx, p, j.Name, ev, func(j *Job) {
		j.Description, j.ErrorClass, j.ExitCode = out.desc, out.class, out.exitCode
		j.Report, j.Coverage = out.report, out.coverage
	})
	if err != nil {
		return err
	}
	return e.dispatch(ctx, p.ID)
}

// begin shows a claimed job running: a pending one by EventRun; one the queue handed over again
// (its worker died, or it failed for the infrastructure), which GitLab already shows running,
// by EventResume, after removing whatever the lost attempt left on the engine. It reports false
// when the job is not this worker's to run after all.
func (e *Engine) begin(ctx context.Context, p *Pipeline, j *Job) (bool, error) {
	switch j.State {
	case StatePending:
		return e.transition(ctx, p, j.Name, EventRun, func(j *Job) {
			j.Description, j.Limits = "running", e.limits(p, j.Name)
		})
	case StateRunning:
		if _, err := e.transition(ctx, p, j.Name, EventResume, func(*Job) {}); err != nil {
			return false, err
		}
		if err := e.exec.Cleanup(ctx, p.Trigger.Project, p.ID, j.Name); err != nil {
			return false, fmt.Errorf("clean up after the lost attempt of %s: %w", j.Name, err)
		}
		return true, nil
	}
	return false, nil
}

// claimed is a job attempt this worker may run.
type claimed struct {
	p *Pipeline
	j *Job
	// leased ends when the attempt's lease is lost; held is the release lock's lifetime, nil
	// for other jobs than the release.
	leased, held context.Context
	undo         []func()
}

// release gives back what claim took, the last taken first.
func (c claimed) release() {
	for i := len(c.undo) - 1; i >= 0; i-- {
		c.undo[i]()
	}
}

// claim takes a job attempt for this worker: its lease, so one worker runs an attempt at a time
// (another copy of the task — the queue handing back one whose worker it thinks lost while a
// takeover runs it — ends here; a worker that dies stops renewing the lease, and TakeOver hands
// the job on); and for a release the branch's release lock, under which the guard is asked
// again. ok is false when the attempt is not this worker's to run.
func (e *Engine) claim(ctx context.Context, p *Pipeline, t Task) (c claimed, ok bool, err error) {
	c.p = p
	c.j, _ = p.Job(t.Job)
	leased, release, err := e.store.HoldJob(ctx, p.ID, t.Job, t.Attempt)
	if errors.Is(err, ErrLocked) {
		e.log.Info("job attempt runs on another worker", zap.Int64("pipeline", p.ID), zap.String("job", t.Job), zap.Int("attempt", t.Attempt))
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("lease of %s: %w", t.Job, err)
	}
	c.leased, c.undo = leased, append(c.undo, release)
	if t.Job != JobRelease {
		return c, true, nil
	}
	// Releases of one ref run one at a time, and the guard is asked again under the lock, by a
	// resumed attempt too: a newer commit may have been released while this one waited, or
	// while a lost worker's lock lapsed.
	held, unlock, err := e.lockRelease(ctx, p)
	if err != nil {
		c.release()
		return c, false, err
	}
	c.held, c.undo = held, append(c.undo, unlock)
	if c.p, err = e.store.Pipeline(ctx, p.ID); err != nil {
		c.release()
		return c, false, err
	}
	if c.j, _ = c.p.Job(t.Job); c.j.Attempt != t.Attempt || c.j.State.Terminal() {
		c.release()
		return c, false, nil
	}
	if ok, err := e.guardAtPush(ctx, c.p); err != nil || !ok {
		c.release()
		return c, false, err
	}
	return c, true, nil
}

// outcome is what one job attempt came to.
type outcome struct {
	desc     string
	class    ErrorClass
	exitCode *int
	err      error
	// report and coverage are a test's, when it has them.
	report   *TestReport
	coverage *float64
}

// execute does a job's work. Success and the project's failures come back in the outcome;
// out.err holds an error the job could not get past. held is the release lock's lifetime, nil
// for other jobs.
func (e *Engine) execute(ctx context.Context, p *Pipeline, j Job, log io.Writer, held context.Context) outcome {
	proj, ok := e.Project(p.Trigger.Project)
	if !ok {
		return outcome{err: fmt.Errorf("project %s is no longer configured: %w", p.Trigger.Project, ErrProjectFault)}
	}
	start := e.now()
	if j.Name == JobBuild {
		planned, err := e.announceTests(ctx, p)
		if err != nil {
			return outcome{err: fmt.Errorf("plan the tests: %w", err)}
		}
		p.TestsPlanned, p.RepoFile = planned.TestsPlanned, planned.RepoFile
	}
	proj, err := e.effective(proj, p)
	if err != nil {
		// The pipeline file is refused: the build says why, and nothing else runs.
		writeFileProblems(log, err)
		return outcome{err: err}
	}
	// The untrusted settings apply on top of the file's: a fork's file lifts none of them.
	if p.Untrusted() {
		proj = proj.forUntrusted()
	}
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
	var out io.Writer = tail
	var cov *coverageWriter
	if spec.Coverage != nil {
		cov = newCoverageWriter(tail, spec.Coverage)
		out = cov
	}
	env := map[string]string{
		"CI": "true", "GANTRY_PIPELINE_ID": strconv.FormatInt(p.ID, 10), "GANTRY_JOB": j.Name,
		"GANTRY_JOB_ATTEMPT": strconv.Itoa(j.Attempt), "GANTRY_COMMIT_SHA": p.Trigger.SHA, "GANTRY_COMMIT_REF": p.Trigger.Ref,
	}
	res, err := e.exec.Test(ctx, TestRequest{PipelineID: p.ID, Project: proj.Path, ImageID: p.Image, ImageRef: p.ImageRef, Test: spec, Env: env}, out)
	if err != nil {
		return outcome{err: err}
	}
	if res.ReportErr != nil {
		fmt.Fprintf(log, "no test report: %v\n", res.ReportErr)
	}
	o := testOutcome(spec, res, pytestSummary(tail.String()))
	if cov != nil && o.err == nil {
		o.coverage = cov.Coverage()
	}
	return o
}

// testOutcome is what a test container's end comes to. The exit code decides whether the test
// passed; the report, when there is one, says what failed, failing cases first (the part of the
// description GitLab shows in its pipeline view).
func testOutcome(spec TestSpec, res TestResult, summary string) outcome {
	code := res.ExitCode
	o := outcome{exitCode: &code, report: res.Report}
	var desc string
	switch {
	case res.OOMKilled:
		return outcome{err: fmt.Errorf("out of memory (limit %d MiB), exit %d", spec.Memory>>20, code), exitCode: &code}
	case res.TimedOut:
		o.class, desc = ClassProject, "timed out after "+spec.Timeout.String()
	case code != 0 && res.Report != nil && res.Report.failing() > 0:
		o.class, desc = ClassProject, res.Report.failures(MaxDescription)
	case code != 0 && res.Report != nil:
		o.class, desc = ClassProject, joinNonEmpty(fmt.Sprintf("exit %d", code), res.Report.counts())
	case code != 0:
		o.class, desc = ClassProject, joinNonEmpty(fmt.Sprintf("exit %d", code), summary)
	case res.Report != nil:
		desc = res.Report.counts()
	default:
		desc = cmp.Or(summary, "passed in "+res.Duration.Round(100*time.Millisecond).String())
	}
	if res.ReportErr != nil && spec.JUnit != "" {
		desc = fmt.Sprintf("%s (no test report: %v)", desc, res.ReportErr)
	}
	o.desc = cutRunes(desc, MaxDescription)
	return o
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
	tags, err := ReleaseTags(proj.Release.Templates(p.ReleaseBy()), p)
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
	if p.ReleaseBy().Kind != TriggerTag {
		if err := e.store.MarkReleased(ctx, proj.Path, p.Trigger.Ref, p.Trigger.SHA); err != nil {
			return outcome{err: fmt.Errorf("record release: %w", err)}
		}
	}
	return outcome{desc: releaseDescription(res.Pushed, res.Digest)}
}

// releaseDescription names the tags a release pushed, then the digest: "pushed latest, 1a2b3c4
// (sha256:0123456789ab)", so that GitLab's status says what a deploy can pull. Tags that would
// take it past GitLab's 255 characters (docs/gitlab.md §3.4) are counted instead: "… and 3 more".
func releaseDescription(pushed []string, digest string) string {
	end := ""
	if d := shortDigest(digest); d != "" {
		end = " (" + d + ")"
	}
	desc := "pushed"
	for i, ref := range pushed {
		tag := ref[strings.LastIndex(ref, ":")+1:] // a reference is repository:tag; a port has no '/' after it
		if strings.Contains(tag, "/") {
			tag = ref
		}
		sep := " "
		if i > 0 {
			sep = ", "
		}
		more := ""
		if left := len(pushed) - i - 1; left > 0 {
			more = fmt.Sprintf(" and %d more", left) // room kept for the count, should the next not fit
		}
		if utf8.RuneCountInString(desc+sep+tag+more+end) > MaxDescription {
			if i == 0 {
				return cutRunes(fmt.Sprintf("pushed %d tags%s", len(pushed), end), MaxDescription)
			}
			return cutRunes(fmt.Sprintf("%s and %d more%s", desc, len(pushed)-i, end), MaxDescription)
		}
		desc += sep + tag
	}
	if len(pushed) == 0 {
		desc = "pushed no tags"
	}
	return cutRunes(desc+end, MaxDescription)
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
	if p.ReleaseBy().Kind == TriggerTag {
		data.Tag = p.Trigger.Ref
	}
	return renderTags(templates, data)
}
