package gitlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/gantry-ci/gantry/orchestrator"
	gl "gitlab.com/gitlab-org/api/client-go"
	"go.uber.org/zap"
)

var _ orchestrator.Source = (*Client)(nil)

// Archive streams the tar.gz archive of a project at a commit, as GitLab serves it: every entry
// under one top-level folder (docs/gitlab.md §5.1). It returns once GitLab has answered: a missing
// project or commit is an error wrapping orchestrator.ErrNotFound, and 429, 409, 5xx and lost
// answers are retried before any byte is handed over. A transfer that breaks afterwards surfaces
// as the reader's error. Closing the reader early stops the download.
func (c *Client) Archive(ctx context.Context, projectID int64, sha string) (io.ReadCloser, error) {
	what := fmt.Sprintf("archive of project %d at %s", projectID, sha)
	fields := []zap.Field{zap.Int64("project", projectID), zap.String("sha", sha)}
	var stream *archiveStream
	err := c.retry(ctx, fields, func(ctx context.Context) (*gl.Response, error) {
		var resp *gl.Response
		var err error
		stream, resp, err = c.openArchive(ctx, what, projectID, sha)
		return resp, err
	})
	switch {
	case errors.Is(err, gl.ErrNotFound):
		return nil, fmt.Errorf("%s: %w", what, orchestrator.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return stream, nil
}

// openArchive starts a download and waits for its first byte or its end. client-go's
// StreamArchive copies the body into a writer and returns only when the body is done, so it runs
// in a goroutine writing into a pipe; the goroutine ends when the body does, and the stream's
// Close waits for it.
func (c *Client) openArchive(ctx context.Context, what string, projectID int64, sha string) (*archiveStream, *gl.Response, error) {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	started := make(chan struct{})
	s := &archiveStream{pr: pr, cancel: cancel, done: make(chan struct{})}
	var resp *gl.Response
	var err error
	go func() {
		defer close(s.done)
		defer cancel()
		resp, err = c.api.Repositories.StreamArchive(projectID, &firstWrite{w: pw, started: started},
			&gl.ArchiveOptions{Format: gl.Ptr("tar.gz"), SHA: gl.Ptr(sha)}, gl.WithContext(ctx))
		if err != nil {
			pw.CloseWithError(fmt.Errorf("%s: %w", what, err))
			return
		}
		pw.Close()
	}()
	select {
	case <-started:
		return s, nil, nil
	case <-s.done:
		if err != nil {
			cancel()
			return nil, resp, err
		}
		return s, nil, nil // an empty body: the reader is at its end
	}
}

// archiveStream is the reading end of a download.
type archiveStream struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (s *archiveStream) Read(p []byte) (int, error) { return s.pr.Read(p) }

// Close stops the download if it is still running and waits for it to end. Canceling first
// matters: client-go drains an unread body to its end before returning.
func (s *archiveStream) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.pr.Close()
		<-s.done
	})
	return nil
}

// firstWrite signals the first write, which comes once GitLab answered 200, before passing it on.
type firstWrite struct {
	w       io.Writer
	started chan struct{}
	once    sync.Once
}

func (f *firstWrite) Write(p []byte) (int, error) {
	f.once.Do(func() { close(f.started) })
	return f.w.Write(p)
}
