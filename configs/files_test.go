package configs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gantry-ci/gantry/configs"
)

func TestLoadReadsSecretFiles(t *testing.T) {
	t.Parallel()
	const tokenOne, tokenTwo = "token-one-0123456789abcdef", "token-two-0123456789abcdef"
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	token := write("gitlab-token", "glpat-abc\n")
	write("hook", strongSecret+"\r\n") // relative to the config file
	password := write("registry-password", "pw\n\n")
	tokens := write("api-tokens", tokenOne+"\n\n  "+tokenTwo+"  \n")
	redis := write("redis-url", "redis://:pw@redis:6379/0\n")
	config := write("gantry.yaml", `
redis: {url_file: `+redis+`}
gitlab: {token_file: `+token+`}
api: {tokens_file: `+tokens+`}
registries: [{host: registry.example.com, username: ci, password_file: `+password+`}]
projects:
  - path: group/app
    webhook_secret_file: hook
    image: registry.example.com/group/app
`)
	cfg, err := configs.Load(config, nil)
	if err != nil {
		t.Fatalf("Load(%s) = %v, want no error", config, err)
	}
	got := []string{
		cfg.Redis.URL.Value(), cfg.GitLab.Token.Value(), cfg.Registries[0].Password.Value(),
		cfg.Projects[0].WebhookSecret.Value(), cfg.Projects[0].WebhookSecretFile,
	}
	for _, s := range cfg.API.Tokens {
		got = append(got, s.Value())
	}
	want := []string{"redis://:pw@redis:6379/0", "glpat-abc", "pw", strongSecret, filepath.Join(dir, "hook"), tokenOne, tokenTwo}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load(%s) secrets mismatch (-want +got):\n%s", config, diff)
	}
}

func TestLoadSecretFileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, key string
	}{
		{"missing file", `gitlab: {token_file: /nonexistent/token}`, "gitlab.token_file"},
		{"both set", `gitlab: {token: abc, token_file: /nonexistent/token}`, "gitlab.token_file"},
		{"project secret missing", `
projects:
  - {path: group/app, webhook_secret_file: nope, image: registry.example.com/group/app}`, "projects[0].webhook_secret_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := configs.Load(writeConfig(t, tt.yaml), nil)
			errs := fieldErrors(t, err)
			if len(errs) != 1 || errs[0].Key != tt.key {
				t.Errorf("Load(%q) = %v, want an error for %s", tt.yaml, err, tt.key)
			}
		})
	}
}

// TestLoadRefusesRegistryCAFile: gantry never talks to a registry itself (the
// engine pulls and pushes), so a CA file given to gantry would be silently
// ignored; it is refused with where the CA has to go instead. An empty
// ca_file, as configs copied from older examples have, is no setting at all.
func TestLoadRefusesRegistryCAFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("a CA"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "gantry.yaml")
	if err := os.WriteFile(config, []byte("registries:\n  - {host: registry.example.com:5000, ca_file: ca.pem}\n  - {host: other.example.com, ca_file: \"\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := configs.Load(config, nil)
	want := configs.Errors{{Key: "registries[0].ca_file",
		Message: "is not used by gantry: the Docker engine talks to the registry, so put the CA in /etc/docker/certs.d/registry.example.com:5000/ca.crt on the engine's host"}}
	if diff := cmp.Diff(want, fieldErrors(t, err)); diff != "" {
		t.Errorf("Load() errors mismatch (-want +got):\n%s", diff)
	}
}

// TestLoadOAuth: sign-in with GitLab loads with its secrets from files next to the config, the
// session lifetime defaults to 8h, and a message never quotes the secrets.
func TestLoadOAuth(t *testing.T) {
	t.Parallel()
	const appSecret, cookie = "gloas-0f9e8d7c6b5a4f3e2d1c", "3b8e1f6a0c9d2e7b5a4f1c8e0d3b6a9f"
	dir := t.TempDir()
	for name, content := range map[string]string{"oauth-secret": appSecret + "\n", "cookie": cookie + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := `
server: {public_url: "https://gantry.example.com"}
gitlab: {url: "https://gitlab.example.com"}
api:
  public_pages: false
  oauth: {application_id: app1, secret_file: oauth-secret, cookie_secret_file: cookie%s}
`
	path := filepath.Join(dir, "gantry.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(base, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.API.OAuth
	if !o.Enabled() || o.ApplicationID != "app1" || o.Secret.Value() != appSecret || o.CookieSecret.Value() != cookie || o.Lifetime() != 8*time.Hour {
		t.Errorf("api.oauth loaded as %+v, lifetime %s", o, o.Lifetime())
	}
	// Both the secret and its file: refused, and the message names neither secret.
	if err := os.WriteFile(path, []byte(fmt.Sprintf(base, ", secret: "+appSecret)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = configs.Load(path, nil)
	if err == nil || !strings.Contains(err.Error(), "api.oauth.secret_file") || strings.Contains(err.Error(), appSecret) || strings.Contains(err.Error(), cookie) {
		t.Errorf("Load with secret and secret_file = %v; want an error at api.oauth.secret_file quoting no secret", err)
	}
}
