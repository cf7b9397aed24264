// Package gitlab is gantry's way out to GitLab: it posts commit statuses (orchestrator.Statuses)
// and streams repository archives (orchestrator.Source) through GitLab's REST API with the
// official Go client. LogStatuses stands in for GitLab when gantry runs without a token.
package gitlab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"
	"go.uber.org/zap"
)

// Client talks to one GitLab instance with one token.
type Client struct {
	api    *gl.Client
	logger *zap.Logger

	// backoff is the wait before each retry of a 409, a 5xx or a request that got no answer;
	// its length is the number of retries.
	backoff []time.Duration
	// maxWait caps the wait a 429 asks for, so a long rate-limit window fails the call instead
	// of holding it.
	maxWait time.Duration
	// attemptTimeout bounds one status post, so a GitLab that never answers is retried.
	attemptTimeout time.Duration
	// sleep waits d or until ctx ends; tests replace it to run without waiting.
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time
}

// New returns a client of the GitLab at baseURL (e.g. https://gitlab.example.com; the client
// appends /api/v4) authenticated by a personal, project or group access token with api scope.
// With an empty token it calls anonymously, which is enough to fetch archives of public projects
// but not to post statuses (use LogStatuses instead).
func New(baseURL, token string, logger *zap.Logger) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gitlab: base URL %q is not an http or https URL", baseURL)
	}
	var auth gl.AuthSource = gl.AccessTokenAuthSource{Token: token}
	if token == "" {
		// Rather than an empty Private-Token header, which GitLab may take for a wrong token.
		auth = gl.Unauthenticated{}
	}
	api, err := gl.NewAuthSourceClient(auth,
		gl.WithBaseURL(baseURL),
		// client-go retries 429 and 5xx blindly, POSTs included (docs/gitlab.md §7): a status post
		// GitLab carried out behind a failing proxy would be replayed. This package retries
		// itself and knows which replays are harmless.
		gl.WithoutRetries(),
		// The URL is validated above; client-go would otherwise log to slog's default logger.
		gl.WithURLWarningLogger(slog.New(slog.DiscardHandler)),
		gl.WithUserAgent("gantry"),
	)
	if err != nil {
		return nil, fmt.Errorf("gitlab: %w", err)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Client{
		api:            api,
		logger:         logger,
		backoff:        []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond},
		maxWait:        time.Minute,
		attemptTimeout: 30 * time.Second,
		sleep:          sleep,
		now:            time.Now,
	}, nil
}

// retry runs op until it succeeds, fails for good, or the retries run out, and returns op's last
// error. What may pass on a second try is retried: 429 after the wait GitLab asks for, 409
// (another update of the commit's statuses held GitLab's lock), 5xx except 501, and requests
// that got no answer.
func (c *Client) retry(ctx context.Context, fields []zap.Field, op func(context.Context) (*gl.Response, error)) error {
	for attempt := 0; ; attempt++ {
		resp, err := op(ctx)
		if err == nil {
			return nil
		}
		if attempt >= len(c.backoff) || ctx.Err() != nil {
			return err
		}
		wait, again := c.retryWait(resp, err, c.backoff[attempt])
		if !again {
			return err
		}
		c.logger.Warn("gitlab call failed, retrying", append(fields,
			zap.Int("attempt", attempt+1), zap.Duration("wait", wait), zap.Error(err))...)
		if cerr := c.sleep(ctx, wait); cerr != nil {
			return fmt.Errorf("%w (stopped retrying: %w)", err, cerr)
		}
	}
}

// retryWait says whether a failed call is worth another try, and after how long.
func (c *Client) retryWait(resp *gl.Response, err error, backoff time.Duration) (time.Duration, bool) {
	var er *gl.ErrorResponse
	switch {
	case errors.As(err, &er):
		switch code := er.Response.StatusCode; {
		case code == http.StatusTooManyRequests:
			return max(backoff, c.rateLimitWait(er.Response.Header)), true
		case code == http.StatusConflict, code >= 500 && code != http.StatusNotImplemented:
			return backoff, true
		}
		return 0, false
	case resp == nil:
		// No answer: a refused connection, a reset, a timeout. A post GitLab may have carried
		// out is safe to replay (see Post).
		return backoff, true
	}
	return 0, false // an answer that is final: a 404, or a body that does not decode
}

// rateLimitWait is how long a 429 asks to wait: Retry-After (seconds or a date), else
// RateLimit-Reset (a Unix time), at most maxWait (docs/gitlab.md §3.3).
func (c *Client) rateLimitWait(h http.Header) time.Duration {
	var wait time.Duration
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.Atoi(v); err == nil {
			wait = time.Duration(s) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			wait = t.Sub(c.now())
		}
	} else if v := h.Get("RateLimit-Reset"); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil {
			wait = time.Unix(s, 0).Sub(c.now())
		}
	}
	return min(max(wait, 0), c.maxWait)
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
