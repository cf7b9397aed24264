package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// maxPipelineFile is how much of a pipeline file is read: one byte more than the 64 KiB the
// configuration accepts (configs.MaxRepoFileSize), so that a longer file is refused for its
// length rather than read whole.
const maxPipelineFile = 64<<10 + 1

// FileError is a pipeline file the project refuses. Error is one line naming the file and the
// first key at fault, for the build's commit status; Problems lists every problem, for its log.
type FileError struct {
	Summary  string
	Problems []string
}

func (e *FileError) Error() string { return cutRunes(e.Summary, MaxDescription) }

// Unwrap makes a refused file the project's fault: it is reported, never retried.
func (e *FileError) Unwrap() error { return ErrProjectFault }

// testsFromFile reports whether a pipeline's test jobs are still to be planned from its
// commit's pipeline file. A pipeline planned with test jobs at intake (before its project read
// a file) keeps them.
func testsFromFile(proj Project, p *Pipeline) bool {
	if proj.PipelineFile == "" || p.TestsPlanned {
		return false
	}
	for _, j := range p.Jobs {
		if j.Stage == StageTest {
			return false
		}
	}
	return true
}

// fileRead is a pipeline file being read while the start task reads the commit message: both
// are GitLab calls the first pending status waits for, so they go out together.
type fileRead struct {
	done chan struct{}
	file []byte
	err  error
}

// readAhead starts reading the pipeline file planTests will want, or returns nil when it will
// read none: the project reads no file, the tests are planned, or the pipeline waits for
// approval (a fork's code is read only once approved). The caller waits for it before it returns.
func (e *Engine) readAhead(ctx context.Context, p *Pipeline) *fileRead {
	proj, ok := e.Project(p.Trigger.Project)
	if !ok || !testsFromFile(proj, p) || p.Approval.Waiting() || e.files == nil {
		return nil
	}
	r := &fileRead{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.file, r.err = e.readFile(ctx, p, proj)
	}()
	return r
}

// wait returns the file once it was read.
func (r *fileRead) wait() ([]byte, error) {
	<-r.done
	return r.file, r.err
}

// readFile reads the project's pipeline file at the pipeline's commit, in the project the commit
// comes from (a fork's for a fork's merge request): nil when the commit has none, empty when it
// is empty.
func (e *Engine) readFile(ctx context.Context, p *Pipeline, proj Project) ([]byte, error) {
	id, _, err := e.sourceProject(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("project of the source: %w", err)
	}
	file, err := e.files.File(ctx, id, p.Trigger.SHA, proj.PipelineFile, maxPipelineFile)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read %s at %s: %w", proj.PipelineFile, p.Trigger.ShortSHA(), err)
	case file == nil:
		return []byte{}, nil // an empty file is a file
	}
	return file, nil
}

// planTests adds the test jobs the project has as its pipeline file makes them, created: the
// caller announces them. The file is the one ahead read, or, without one, read now. It runs once
// the pipeline may read code: when it is announced, or for one that waited for approval, when
// its build starts, never at intake (docs/gitlab.md §5.3). A file the project refuses plans no
// test: the build fails saying why, and nothing else runs. It returns the pipeline as stored.
func (e *Engine) planTests(ctx context.Context, p *Pipeline, ahead *fileRead) (*Pipeline, error) {
	proj, ok := e.Project(p.Trigger.Project)
	if !ok || !testsFromFile(proj, p) {
		return p, nil
	}
	var file []byte
	var err error
	switch {
	case ahead != nil:
		file, err = ahead.wait()
	case e.files != nil:
		file, err = e.readFile(ctx, p, proj)
	}
	if err != nil {
		return nil, err
	}
	var tests []Job
	if eff, err := e.applyFile(proj, file); err == nil {
		tests = testJobs(eff.Tests)
	}
	// Test jobs go between the build and the release, as Plan orders them.
	var order []string
	for _, j := range p.Jobs {
		if j.Stage == StageBuild {
			order = append(order, j.Name)
		}
	}
	for _, j := range tests {
		order = append(order, j.Name)
	}
	for _, j := range p.Jobs {
		if j.Stage != StageBuild {
			order = append(order, j.Name)
		}
	}
	if _, err := e.store.PlanTests(ctx, p.ID, file, tests, order); err != nil {
		return nil, err
	}
	return e.store.Pipeline(ctx, p.ID)
}

// applyFile is the project as a pipeline file makes it; without a file reader every commit
// runs the server's settings.
func (e *Engine) applyFile(proj Project, file []byte) (Project, error) {
	if e.apply == nil {
		return proj, nil
	}
	return e.apply(proj, file)
}

// effective is the project a pipeline's jobs run: the configured one, as the commit's pipeline
// file makes it once that was read.
func (e *Engine) effective(proj Project, p *Pipeline) (Project, error) {
	if proj.PipelineFile == "" || !p.TestsPlanned {
		return proj, nil
	}
	return e.applyFile(proj, p.RepoFile)
}

// announceTests plans the test jobs of a pipeline whose build is about to run and which has
// none yet (it waited for approval, so its file could not be read before), and posts them
// pending: before the build can succeed, so that a merge request never sees every check of
// gantry's passed while tests are still to come.
func (e *Engine) announceTests(ctx context.Context, p *Pipeline) (*Pipeline, error) {
	proj, ok := e.Project(p.Trigger.Project)
	if !ok || !testsFromFile(proj, p) {
		return p, nil
	}
	q, err := e.planTests(ctx, p, nil)
	if err != nil {
		return nil, err
	}
	for _, j := range q.Jobs {
		if j.Stage == StageTest && j.State == StateCreated {
			if _, err := e.transition(ctx, q, j.Name, EventEnqueue, func(*Job) {}); err != nil {
				return nil, err
			}
		}
	}
	return q, nil
}

// writeFileProblems lists every problem of a refused pipeline file in the job's log.
func writeFileProblems(log io.Writer, err error) {
	var fe *FileError
	if !errors.As(err, &fe) {
		return
	}
	for _, p := range fe.Problems {
		fmt.Fprintf(log, "%s\n", p)
	}
}
