package webhook

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
	"go.uber.org/zap"
)

// Acceptor turns a trigger into a stored, queued pipeline. orchestrator.Engine is one.
type Acceptor interface {
	Accept(ctx context.Context, t orchestrator.Trigger) (orchestrator.Accepted, error)
}

// ProjectIDs knows the GitLab id of a configured project once it has been looked up.
// orchestrator.Engine is meant to be one.
type ProjectIDs interface {
	// KnownProjectID returns the id of the configured project at path, false while unknown.
	KnownProjectID(path string) (int64, bool)
}

// DefaultMaxBody is GitLab's own limit on a webhook body (docs/gitlab.md §1.3).
const DefaultMaxBody = 25 << 20

// DefaultMaxBodies is how many bodies are read and decoded at once by default. A slot is held
// from the first byte read to the end of decoding, not while the pipeline is stored, so it bounds
// memory (at most this many bodies of up to DefaultMaxBody) rather than throughput: the ingest
// benchmark's 32 connections never fill it.
const DefaultMaxBodies = 64

// DefaultSlotWait is how long a delivery waits for a free slot before it is answered 503. Bursts
// (a push to many branches, a resend of many hooks) are absorbed by waiting; only a server
// whose slots stay full, as under a flood of slow bodies, sheds. GitLab waits 10s for an answer
// (docs/gitlab.md §1.3), so the wait stays well below that.
const DefaultSlotWait = 2 * time.Second

// Handler takes GitLab's deliveries.
type Handler struct {
	accept  Acceptor
	keys    keyring
	ids     ProjectIDs
	maxBody int64
	// slots holds one token per body being read or decoded.
	slots    chan struct{}
	slotWait time.Duration
	bufs     bodyPool
	log      *zap.Logger
	metrics  *metrics
}

// Option changes a Handler's default. New takes them variadically so that the callers of its
// three-argument form keep compiling.
type Option func(*Handler)

// WithProjectIDs makes the handler refuse (403) a payload whose hook project id differs from
// the configured project's known GitLab id. Without it, or while an id is unknown, the id is
// not checked here.
func WithProjectIDs(ids ProjectIDs) Option { return func(h *Handler) { h.ids = ids } }

// WithMaxBodies bounds how many bodies are read and decoded at once (default DefaultMaxBodies).
func WithMaxBodies(n int) Option {
	return func(h *Handler) {
		if n > 0 {
			h.slots = make(chan struct{}, n)
		}
	}
}

// WithSlotWait sets how long a delivery waits for a slot when all are taken (default
// DefaultSlotWait); 0 answers 503 at once.
func WithSlotWait(d time.Duration) Option { return func(h *Handler) { h.slotWait = max(d, 0) } }

// New builds the webhook handler. secrets maps each configured project's path to its secret;
// a project with an empty secret gets no deliveries.
func New(accept Acceptor, secrets map[string]string, log *zap.Logger, opts ...Option) *Handler {
	h := &Handler{accept: accept, keys: newKeyring(secrets), maxBody: DefaultMaxBody,
		slots: make(chan struct{}, DefaultMaxBodies), slotWait: DefaultSlotWait, log: log, metrics: newMetrics()}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

// answer is the JSON body of every webhook answer; GitLab stores it, so it stays small.
type answer struct {
	PipelineID int64  `json:"pipeline_id,omitempty"`
	Ignored    string `json:"ignored,omitempty"`
	// ReleaseAdded says a duplicate added the release to the pipeline it names
	// (orchestrator.Accepted).
	ReleaseAdded bool   `json:"release_added,omitempty"`
	Error        string `json:"error,omitempty"`
	Detail       string `json:"detail,omitempty"`
	// kind tells the deliveries counter apart answers that share a code; not sent.
	kind answerKind
}

// retryAfter is the Retry-After of an overloaded answer, in seconds. GitLab does not redeliver
// by itself; the header is for the person pressing "Resend request" and for other senders.
const retryAfter = 5

// receive answers one delivery and counts the answer.
func (h *Handler) receive(c *echo.Context) error {
	start := time.Now()
	code, a := h.decide(c)
	h.metrics.deliveries.WithLabelValues(outcome(code, a)).Inc()
	h.metrics.answerSeconds.Observe(time.Since(start).Seconds())
	if a.kind == kindOverloaded {
		c.Response().Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	return c.JSON(code, a)
}

// decide chooses the answer to one delivery. GitLab disables a hook after repeated non-2xx
// answers and does not redeliver, so everything deliberately ignored is a 200; a delivery that
// is not for a configured project under its secret is a 401.
//
// The order is the defence: the token is checked before a byte of the body is read (it costs
// nothing and names the projects the sender may speak for), the body is read under a bound on
// memory and on concurrent bodies, its nesting is bounded before any decoder sees it, and only
// then is the project it names held to the token's projects and to its known id.
func (h *Handler) decide(c *echo.Context) (int, answer) {
	r := c.Request()
	projects := h.keys.projects(r.Header.Get("X-Gitlab-Token"))
	if projects == nil {
		h.log.Warn("webhook with a wrong token", zap.String("remote", r.RemoteAddr), zap.String("event", r.Header.Get("X-Gitlab-Event")))
		return http.StatusUnauthorized, answer{Error: "unauthorized", Detail: "missing or wrong X-Gitlab-Token"}
	}
	eventType := r.Header.Get("X-Gitlab-Event")
	if eventType == "" {
		return http.StatusBadRequest, answer{Error: "not a GitLab event", Detail: "no X-Gitlab-Event header"}
	}
	ev, code, a := h.readEvent(c, eventType)
	if code != 0 {
		return code, a
	}
	if ev.Project == "" {
		// Events that start nothing name no project we read, system hooks included: the token
		// matched a configured secret, which is all they can be held to.
		return http.StatusOK, answer{Ignored: ev.Ignored}
	}
	project, ok := projects.find(ev.Project)
	switch {
	case !ok && !h.keys.configured(ev.Project):
		// A hook of a project gantry does not build, sharing a configured secret (a group's
		// hook): nothing to refuse, nothing to do.
		return http.StatusOK, answer{Ignored: "project " + ev.Project + " is not configured"}
	case !ok:
		// Another configured project's secret: a secret speaks only for its own projects.
		h.log.Warn("webhook token of other projects", zap.String("project", ev.Project), zap.String("remote", r.RemoteAddr))
		return http.StatusUnauthorized, answer{Error: "unauthorized", Detail: "missing or wrong X-Gitlab-Token"}
	}
	if h.ids != nil {
		if want, known := h.ids.KnownProjectID(project); known && ev.HookProjectID != want {
			h.log.Warn("webhook for another project id", zap.String("project", project),
				zap.Int64("project_id", ev.HookProjectID), zap.Int64("configured_id", want), zap.String("remote", r.RemoteAddr))
			return http.StatusForbidden, answer{Error: "project mismatch"}
		}
	}
	if ev.Ignored != "" {
		return http.StatusOK, answer{Ignored: ev.Ignored}
	}
	ev.Trigger.DeliveryID = deliveryID(r)
	// The engine holds the id to GitLab's for the configured path before it reads or posts
	// anything (the cache above may not know it yet).
	ev.Trigger.HookProjectID = ev.HookProjectID
	acc, err := h.accept.Accept(r.Context(), ev.Trigger)
	if errors.Is(err, orchestrator.ErrNotReplicated) {
		// Stored on the master, but a failover now could lose it: not a promise to make. The
		// resend is answered as the duplicate once the replicas have it.
		h.log.Warn("webhook not replicated", zap.String("project", ev.Project), zap.String("sha", ev.Trigger.SHA), zap.Error(err))
		return http.StatusServiceUnavailable, answer{Error: "not replicated",
			Detail: "the event is not yet on enough Redis replicas (redis.min_replicas); resend it", kind: kindNotReplicated}
	}
	if err != nil {
		h.log.Error("webhook not stored", zap.String("project", ev.Project), zap.String("sha", ev.Trigger.SHA), zap.Error(err))
		return http.StatusServiceUnavailable, answer{Error: "not stored", Detail: "the event could not be stored; resend it"}
	}
	if acc.Duplicate {
		return http.StatusOK, answer{Ignored: "duplicate", PipelineID: acc.Pipeline.ID, ReleaseAdded: acc.ReleaseAdded, kind: kindDuplicate}
	}
	return http.StatusAccepted, answer{PipelineID: acc.Pipeline.ID}
}

// readEvent reads and converts the body while holding a slot; a non-zero code is the answer.
// The slot and the body's buffer are given back before the pipeline is stored: conversion
// copies what it keeps out of the body.
func (h *Handler) readEvent(c *echo.Context, eventType string) (event, int, answer) {
	r := c.Request()
	if r.ContentLength > h.maxBody {
		return event{}, http.StatusRequestEntityTooLarge, answer{Error: "payload too large", Detail: "the limit is 25 MiB"}
	}
	if !h.acquire(r.Context()) {
		return event{}, http.StatusServiceUnavailable, answer{Error: "overloaded", Detail: "too many deliveries at once; resend it", kind: kindOverloaded}
	}
	defer func() { <-h.slots }()
	buf := h.bufs.get()
	defer h.bufs.put(buf)
	body, err := readBody(buf, c.Response(), r, h.maxBody)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return event{}, http.StatusRequestEntityTooLarge, answer{Error: "payload too large", Detail: "the limit is 25 MiB"}
	}
	if err != nil {
		return event{}, http.StatusBadRequest, answer{Error: "unreadable body", Detail: err.Error()}
	}
	ev, err := convert(eventType, body)
	if errors.Is(err, errTooDeep) {
		return event{}, http.StatusBadRequest, answer{Error: "payload nested too deeply", Detail: err.Error(), kind: kindTooDeep}
	}
	if err != nil {
		return event{}, http.StatusBadRequest, answer{Error: "not a GitLab event", Detail: err.Error()}
	}
	return ev, 0, answer{}
}

// acquire takes a slot, waiting up to slotWait for one; false means none came, or the client left.
func (h *Handler) acquire(ctx context.Context) bool {
	select {
	case h.slots <- struct{}{}:
		return true
	default:
	}
	if h.slotWait == 0 {
		return false
	}
	wait := time.NewTimer(h.slotWait)
	defer wait.Stop()
	select {
	case h.slots <- struct{}{}:
		return true
	case <-wait.C:
	case <-ctx.Done():
	}
	return false
}

// deliveryID identifies a delivery across GitLab's resends (docs/gitlab.md §1.1).
func deliveryID(r *http.Request) string {
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		return k
	}
	return r.Header.Get("X-Gitlab-Event-UUID")
}
