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
