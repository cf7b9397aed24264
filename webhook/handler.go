package webhook

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
	"go.uber.org/zap"
)

// Acceptor turns a trigger into a stored, queued pipeline. orchestrator.Engine is one.
type Acceptor interface {
	Accept(ctx context.Context, t orchestrator.Trigger) (orchestrator.Accepted, error)
}

// DefaultMaxBody is GitLab's own limit on a webhook body (gitlab.md §1.3).
const DefaultMaxBody = 25 << 20

// Handler takes GitLab's deliveries.
type Handler struct {
	accept Acceptor
	// secrets maps a project path, lower-cased, to its webhook secret.
	secrets map[string]string
	maxBody int64
	log     *zap.Logger
}

// New builds the webhook handler. secrets maps each configured project's path to its secret.
func New(accept Acceptor, secrets map[string]string, log *zap.Logger) *Handler {
	h := &Handler{accept: accept, secrets: make(map[string]string, len(secrets)), maxBody: DefaultMaxBody, log: log}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	for p, s := range secrets {
		h.secrets[strings.ToLower(p)] = s
	}
	return h
}

// answer is the JSON body of every webhook answer; GitLab stores it, so it stays small.
type answer struct {
	PipelineID int64  `json:"pipeline_id,omitempty"`
	Ignored    string `json:"ignored,omitempty"`
	Error      string `json:"error,omitempty"`
	Detail     string `json:"detail,omitempty"`
}

// receive answers one delivery and counts the answer.
func (h *Handler) receive(c *echo.Context) error {
	start := time.Now()
	code, a := h.decide(c)
	deliveries.WithLabelValues(outcome(code, a)).Inc()
	answerSeconds.Observe(time.Since(start).Seconds())
	return c.JSON(code, a)
}

// decide chooses the answer to one delivery. GitLab disables a hook after repeated non-2xx
// answers and does not redeliver, so everything deliberately ignored is a 200 and only a bad
// token is a 401.
func (h *Handler) decide(c *echo.Context) (int, answer) {
	r := c.Request()
	body, err := readBody(c.Response(), r, h.maxBody)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge, answer{Error: "payload too large", Detail: "the limit is 25 MiB"}
	}
	if err != nil {
		return http.StatusBadRequest, answer{Error: "unreadable body", Detail: err.Error()}
	}
	eventType := r.Header.Get("X-Gitlab-Event")
	if eventType == "" {
		return http.StatusBadRequest, answer{Error: "not a GitLab event", Detail: "no X-Gitlab-Event header"}
	}
	ev, err := convert(eventType, body)
	if err != nil {
		return http.StatusBadRequest, answer{Error: "not a GitLab event", Detail: err.Error()}
	}
	if ev.Project == "" {
		return http.StatusOK, answer{Ignored: ev.Ignored}
	}
	secret, known := h.secrets[strings.ToLower(ev.Project)]
	if !known {
		return http.StatusOK, answer{Ignored: "project " + ev.Project + " is not configured"}
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Gitlab-Token")), []byte(secret)) != 1 {
		h.log.Warn("webhook with a wrong token", zap.String("project", ev.Project), zap.String("remote", r.RemoteAddr))
		return http.StatusUnauthorized, answer{Error: "unauthorized", Detail: "missing or wrong X-Gitlab-Token"}
	}
	if ev.Ignored != "" {
		return http.StatusOK, answer{Ignored: ev.Ignored}
	}
	ev.Trigger.DeliveryID = deliveryID(r)
	a, err := h.accept.Accept(r.Context(), ev.Trigger)
	if err != nil {
		h.log.Error("webhook not stored", zap.String("project", ev.Project), zap.String("sha", ev.Trigger.SHA), zap.Error(err))
		return http.StatusServiceUnavailable, answer{Error: "not stored", Detail: "the event could not be stored; resend it"}
	}
	if a.Duplicate {
		return http.StatusOK, answer{Ignored: "duplicate", PipelineID: a.Pipeline.ID}
	}
	return http.StatusAccepted, answer{PipelineID: a.Pipeline.ID}
}

// deliveryID identifies a delivery across GitLab's resends (gitlab.md §1.1).
func deliveryID(r *http.Request) string {
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		return k
	}
	return r.Header.Get("X-Gitlab-Event-UUID")
}

// readBody reads at most limit bytes of the body. With a Content-Length, which net/http holds the
// body to, it reads into one buffer of that size: io.ReadAll grows its buffer from 512 bytes,
// copying the payload several times.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength <= 0 || r.ContentLength > limit {
		return io.ReadAll(body)
	}
	buf := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}
