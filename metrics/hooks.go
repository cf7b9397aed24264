package metrics

import "github.com/prometheus/client_golang/prometheus"

// Hooks counts the project hooks GitLab disabled, as gantry's reconciliation last saw them.
type Hooks struct {
	disabled *prometheus.GaugeVec
}

// NewHooks makes the hooks gauge and registers it on reg.
func NewHooks(reg prometheus.Registerer) *Hooks {
	h := &Hooks{disabled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gantry_hook_disabled",
		Help: "Hooks of the project that GitLab disabled after failed deliveries (0 when all deliver): their events are lost until re-enabled.",
	}, []string{"project"})}
	reg.MustRegister(h.disabled)
	return h
}

// Disabled records how many of a project's hooks GitLab disabled.
func (h *Hooks) Disabled(project string, n int) { h.disabled.WithLabelValues(project).Set(float64(n)) }
