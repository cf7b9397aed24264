package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gantry-ci/gantry/configs"
)

// TestServeNamesUnsetVariable: a config whose required ${APP_HOOK_SECRET} is unset stops gantry
// with the variable and the key named, and the file named once, before anything starts.
func TestServeNamesUnsetVariable(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gantry.yaml")
	must(t, os.WriteFile(path, []byte("projects:\n  - {path: group/app, image: r.example.com/app, webhook_secret: \"${APP_HOOK_SECRET}\"}\n"), 0o600))
	var out bytes.Buffer
	err := run(context.Background(), []string{"serve", "--config", path}, func(string) string { return "" }, &out, &out)
	if want := "config " + path + ": projects[0].webhook_secret: ${APP_HOOK_SECRET} is not set"; err == nil || err.Error() != want {
		t.Errorf("gantry serve = %v, want %q", err, want)
	}
}

// TestWarnUnset: each role warns about the optional variables it would read empty, by key and
// name, and not about those it never reads.
func TestWarnUnset(t *testing.T) {
	t.Parallel()
	cfg := &configs.Config{Unset: []configs.UnsetVar{{Key: "registries[0].password", Name: "REGISTRY_PASSWORD"},
		{Key: "api.tokens[0]", Name: "GANTRY_API_TOKEN"}, {Key: "gitlab.token", Name: "GITLAB_TOKEN"}}}
	for name, want := range map[string][]string{
		"serve":  {"REGISTRY_PASSWORD", "GANTRY_API_TOKEN", "GITLAB_TOKEN"},
		"server": {"GANTRY_API_TOKEN", "GITLAB_TOKEN"},
		"worker": {"REGISTRY_PASSWORD", "GITLAB_TOKEN"},
	} {
		core, logs := observer.New(zap.WarnLevel)
		warnUnset(cfg, roles[name], zap.New(core))
		var got []string
		for _, e := range logs.All() {
			got = append(got, e.ContextMap()["variable"].(string))
		}
		if !slices.Equal(got, want) {
			t.Errorf("gantry %s warns about %v, want %v", name, got, want)
		}
	}
}

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
