package main

import (
	"testing"
	"time"

	"github.com/gantry-ci/gantry/configs"
)

// TestDockerOptions: docker.tls_verify hands the engine client the certificates of cert_path.
func TestDockerOptions(t *testing.T) {
	cfg := configs.Default()
	cfg.Docker = configs.Docker{Host: "tcp://docker.example.com:2376", CertPath: "/etc/gantry/docker"}
	if o := dockerOptions(cfg, nil); o.CertPath != "" || o.Host != cfg.Docker.Host {
		t.Errorf("dockerOptions(no tls_verify) = %+v, want the host and no certificates", o)
	}
	cfg.Docker.TLSVerify = true
	if o := dockerOptions(cfg, nil); o.CertPath != "/etc/gantry/docker" {
		t.Errorf("dockerOptions(tls_verify) CertPath = %q, want /etc/gantry/docker", o.CertPath)
	}
}

// TestPersistenceWarning: gantry warns when Redis writes nothing to disk, and only then.
func TestPersistenceWarning(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		appendonly, save string
		warn             bool
	}{
		{"no", "", true},
		{"no", "  ", true},
		{"yes", "", false},
		{"no", "3600 1 300 100", false},
		{"yes", "3600 1", false},
	} {
		if got := persistenceWarning(tt.appendonly, tt.save); (got != "") != tt.warn {
			t.Errorf("persistenceWarning(%q, %q) = %q, want a warning %v", tt.appendonly, tt.save, got, tt.warn)
		}
	}
}

// TestDeliveryWindow: a delivery id is remembered a week, never longer than the pipeline it names.
func TestDeliveryWindow(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ retention, want time.Duration }{
		{0, 7 * 24 * time.Hour}, // pipelines kept forever
		{720 * time.Hour, 7 * 24 * time.Hour},
		{2 * time.Hour, 2 * time.Hour},
	} {
		cfg := configs.Default()
		cfg.Redis.PipelineRetention.Duration = tt.retention
		if got := deliveryWindow(cfg); got != tt.want {
			t.Errorf("deliveryWindow(retention %s) = %s, want %s", tt.retention, got, tt.want)
		}
	}
}
