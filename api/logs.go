package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
	"go.uber.org/zap"
)

// jobLog answers GET …/pipelines/{id}/jobs/{job}/log[?attempt=N][&offset=B][&follow=1] with the
// log as text. offset is where to start, in bytes since the log began (what an earlier answer's
// X-Gantry-Log-Next header said). With follow, the answer stays open and brings new output
// every FollowEvery until the attempt is over, then ends.
func (s *Server) jobLog(c *echo.Context) error {
	job, action, ok := splitTail(c.Param("*"))
	if !ok || action != "log" {
		return s.noRoute(c)
	}
	p, err := s.pipeline(c, c.Param("id"))
	if p == nil {
		return err
	}
	j, found := p.Job(job)
	if !found {
		return notFound(c, fmt.Sprintf("pipeline %d has no job %s", p.ID, job))
	}
	q := c.QueryParams()
	attempt := j.Attempt
	if a := q.Get("attempt"); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil || n < 1 {
			return badRequest(c, "attempt must be a positive number")
		}
		if n > j.Attempt {
			return notFound(c, fmt.Sprintf("job %s of pipeline %d has no attempt %d", job, p.ID, n))
		}
		attempt = n
	}
	var offset int64
	if o := q.Get("offset"); o != "" {
		if offset, err = strconv.ParseInt(o, 10, 64); err != nil || offset < 0 {
			return badRequest(c, "offset must be a number of bytes, 0 or more")
		}
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/plain; charset=utf-8")
	// A log is whatever a job printed: a browser must never take it for a page.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Gantry-Log-Attempt", strconv.Itoa(attempt))
	if f := q.Get("follow"); f == "1" || f == "true" {
		s.followLog(c, p.ID, job, attempt, offset)
		return nil
	}
	text, next, err := s.pipelines.LogFrom(c.Request().Context(), p.ID, job, attempt, offset)
	if err != nil {
		return s.fail(c, err)
	}
	h.Set("X-Gantry-Log-Next", strconv.FormatInt(next, 10))
	return c.String(http.StatusOK, text)
}

// followLog streams a job attempt's log from offset until the attempt is over or the client
// leaves. The state is read before the log in every round, so the output a job wrote before
// it ended is sent before the answer ends. The answer begins with the first output (or the
// end), so a client sees a request still waiting, not an empty stream, while a job is quiet.
// Once the answer has begun, an error can only end it; it is logged.
//
// The HTTP server's WriteTimeout bounds ordinary answers; a follow lasts as long as the job, so
// it moves the write deadline on every round: a client that stops reading is still dropped when
// a write misses it. (ReadTimeout needs nothing: net/http lifts the read deadline once the
// request is read, and a client that leaves cancels ctx.) Outside a real server, as in a test's
// recorder, deadlines are not supported, and not needed.
func (s *Server) followLog(c *echo.Context, id int64, job string, attempt int, offset int64) {
	ctx := c.Request().Context()
	w := c.Response()
	rc := http.NewResponseController(w)
	tick := time.NewTicker(s.followEvery)
	defer tick.Stop()
	for {
		// Also covers the end of the answer, written after the last round.
		_ = rc.SetWriteDeadline(time.Now().Add(s.followWrite))
		over, err := s.attemptOver(ctx, id, job, attempt)
		if err != nil {
			s.followFailed(ctx, id, job, err)
			return
		}
		text, next, err := s.pipelines.LogFrom(ctx, id, job, attempt, offset)
		if err != nil {
			s.followFailed(ctx, id, job, err)
			return
		}
		if text != "" {
			if _, err := io.WriteString(w, text); err != nil {
				return // the client left
			}
			rc.Flush()
		}
		offset = next
		if over {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// attemptOver reports whether a job attempt has ended: the job is in a final state, or a
// newer attempt has begun.
func (s *Server) attemptOver(ctx context.Context, id int64, job string, attempt int) (bool, error) {
	p, err := s.pipelines.Pipeline(ctx, id)
	if err != nil {
		return false, err
	}
	j, ok := p.Job(job)
	if !ok {
		return false, fmt.Errorf("pipeline %d has no job %s: %w", id, job, orchestrator.ErrNotFound)
	}
	return j.Attempt > attempt || j.State.Terminal(), nil
}

func (s *Server) followFailed(ctx context.Context, id int64, job string, err error) {
	if ctx.Err() == nil {
		s.log.Warn("follow log", zap.Int64("pipeline", id), zap.String("job", job), zap.Error(err))
	}
}
