package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// newRegistry is the process's own Prometheus registry, served at /metrics: the Go runtime's
// and the process's metrics, and gantry's, which the engine and the webhook register on it.
// Nothing registers on the client's global registry, so tests build as many as they need.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
