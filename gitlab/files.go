package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gantry-ci/gantry/orchestrator"
	gl "gitlab.com/gitlab-org/api/client-go"
)

var _ orchestrator.FileSource = (*Client)(nil)

// errFull stops a file's download once it holds its limit.
var errFull = errors.New("file longer than its limit")

// File reads one file of a project at a commit through the raw file endpoint (docs/gitlab.md
// §5.3), at most limit bytes of it. client-go's GetRawFile buffers the whole body, and a
// repository's file may be any size, so the body is copied into a buffer that cancels the
// request once full: the rest is never downloaded. A missing file or commit is an error
// wrapping orchestrator.ErrNotFound; 429, 409 and 5xx are retried.
func (c *Client) File(ctx context.Context, projectID int64, sha, path string, limit int64) ([]byte, error) {
	what := fmt.Sprintf("%s of project %d at %s", path, projectID, sha)
	var got []byte
	err := c.retry(ctx, nil, func(ctx context.Context) (*gl.Response, error) {
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		req, err := c.api.NewRequest(http.MethodGet,
			fmt.Sprintf("projects/%d/repository/files/%s/raw", projectID, gl.PathEscape(path)),
			&gl.GetRawFileOptions{Ref: gl.Ptr(sha)}, []gl.RequestOptionFunc{gl.WithContext(ctx)})
		if err != nil {
			return nil, err
		}
		buf := &cappedBuffer{limit: limit, full: func() { cancel(errFull) }}
		resp, err := c.api.Do(req, buf)
		if err != nil && errors.Is(context.Cause(ctx), errFull) {
			err = nil // the first limit bytes are what was asked for
		}
		got = buf.b
		return resp, err
	})
	switch {
	case errors.Is(err, gl.ErrNotFound):
		return nil, fmt.Errorf("%s: %w", what, orchestrator.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if got == nil {
		got = []byte{}
	}
	return got, nil
}

// cappedBuffer keeps the first limit bytes written to it and calls full when it has them.
type cappedBuffer struct {
	b     []byte
	limit int64
	full  func()
}

func (w *cappedBuffer) Write(p []byte) (int, error) {
	room := w.limit - int64(len(w.b))
	if int64(len(p)) >= room {
		w.b = append(w.b, p[:room]...)
		w.full()
		return int(room), errFull
	}
	w.b = append(w.b, p...)
	return len(p), nil
}
