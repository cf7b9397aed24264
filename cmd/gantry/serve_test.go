package main

import (
	"testing"

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
