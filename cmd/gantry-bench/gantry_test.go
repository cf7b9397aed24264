package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gantry-ci/gantry/configs"
	"github.com/gantry-ci/gantry/internal/wire"
	"github.com/gantry-ci/gantry/orchestrator"
)

// TestConfigLoads: the generated config is one gantry accepts, and the direct path reads the
// projects with gantry's defaults filled in.
func TestConfigLoads(t *testing.T) {
	dir := t.TempDir()
	cfg := gantryConfig{
		listen: "127.0.0.1:18080", redisURL: "redis://127.0.0.1:6390/1001", gitlabURL: "http://127.0.0.1:1",
		gitlabToken: "glpat-test", apiToken: "api-token-0123456789abcdef", dockerHost: "unix:///tmp/x/docker.sock", concurrency: 4,
		registry: &registryLogin{host: "127.0.0.1:5090", user: "gantry", password: "pw"},
		projects: []string{
			sampleProject("bench-1/sample", "hook-secret-1-0123456789", "127.0.0.1:5090/bench-1/sample", "127.0.0.1:5090/bench-1/sample-base", "gantry-test/python:3.11"),
			tinyProject("bench-1/tiny", "hook-secret-2-0123456789", "bench-1/tiny"),
		},
	}
	path, err := cfg.write(dir)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := configs.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatalf("configs.Load(generated config): %v", err)
	}
	if got := loaded.Registries[0].Password.Value(); got != "pw" {
		t.Errorf("registry password = %q, want it read from password_file", got)
	}
	if loaded.Docker.Host != cfg.dockerHost || loaded.Workers.JobRetries != 0 {
		t.Errorf("docker.host, job_retries = %q, %d; want %q, 0", loaded.Docker.Host, loaded.Workers.JobRetries, cfg.dockerHost)
	}
	sample, _ := loaded.Project("bench-1/sample")
	got := wire.Project(sample)
	want := orchestrator.Project{
		Path: "bench-1/sample", Image: "127.0.0.1:5090/bench-1/sample",
		Build: orchestrator.BuildSpec{Dockerfile: "Dockerfile", Context: ".", Args: map[string]string{"PYTHON_IMAGE": "gantry-test/python:3.11"},
			Memory: 4 << 30, CPUs: 2, Network: "bridge"},
		Base: &orchestrator.BaseSpec{Dockerfile: "Dockerfile.base", Inputs: []string{"requirements.txt", "wheels"}, Image: "127.0.0.1:5090/bench-1/sample-base"},
		Tests: []orchestrator.TestSpec{
			{Name: "unit", Command: []string{"python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"}, Timeout: 2 * time.Minute, Memory: 512 << 20, CPUs: 1, Pids: 256, Network: "none"},
			{Name: "lint", Command: []string{"python3", "lint.py", "app", "tests"}, Timeout: time.Minute, Memory: 512 << 20, CPUs: 1, Pids: 256, Network: "none"},
		},
		Release:   orchestrator.ReleasePolicy{Branches: []string{"master"}, Tags: []string{"latest", "{{.ShortSHA}}"}},
		Supersede: true,
		Approval:  orchestrator.ApprovalForks, ApprovalExpiry: orchestrator.DefaultApprovalExpiry,
		PipelineFile: ".gantry.yml",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wire.Project(sample) (-want +got):\n%s", diff)
	}
	tiny, _ := loaded.Project("bench-1/tiny")
	if tiny.SupersedeEnabled() || tiny.Base != nil || len(tiny.Tests) != 1 {
		t.Errorf("tiny project = supersede %v, base %v, %d tests; want no supersede, no base, one test", tiny.SupersedeEnabled(), tiny.Base, len(tiny.Tests))
	}
}
