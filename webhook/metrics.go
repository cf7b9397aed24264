package webhook

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the intake's Prometheus metrics, served by GET /metrics. They belong to one
// Handler, registered on the registry it is given (WithMetrics), so handlers in parallel tests
// count apart.
type metrics struct {
	deliveries    *prometheus.CounterVec
	answerSeconds prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_webhook_deliveries_total",
			Help: "Webhook deliveries by answer: accepted, duplicate, ignored, unauthorized, invalid, too_deep, too_large, project_mismatch, overloaded, not_stored, not_replicated.",
		}, []string{"answer"}),
		answerSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gantry_webhook_answer_seconds",
			Help:    "Time from a delivery's arrival to its answer, the pipeline stored.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
	}
}

// WithMetrics registers the handler's metrics on reg; without it they are counted but served
// nowhere.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(h *Handler) {
		reg.MustRegister(h.metrics.deliveries, h.metrics.answerSeconds)
	}
}

// answerKind names an answer that its code alone does not tell apart from others; decide sets
// it where the fact is known, so the counter never reads an answer's words.
type answerKind string

// The answers that share a code with others.
const (
	kindDuplicate  answerKind = "duplicate"
	kindTooDeep    answerKind = "too_deep"
	kindOverloaded answerKind = "overloaded"
	// kindNotReplicated is stored on the Redis master but not acknowledged by
	// redis.min_replicas replicas in time.
	kindNotReplicated answerKind = "not_replicated"
)

// outcome names an answer for the deliveries counter.
func outcome(code int, a answer) string {
	if a.kind != "" {
		return string(a.kind)
	}
	switch {
	case code == http.StatusAccepted:
		return "accepted"
	case code == http.StatusOK:
		return "ignored"
	case code == http.StatusUnauthorized:
		return "unauthorized"
	case code == http.StatusRequestEntityTooLarge:
		return "too_large"
	case code == http.StatusForbidden:
		return "project_mismatch"
	case code == http.StatusServiceUnavailable:
		return "not_stored"
	}
	return "invalid"
}
