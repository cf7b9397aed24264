package configs_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gantry-ci/gantry/configs"
)

// TestLoadNamesUnsetVariables: a ${VAR} that came out empty is named with the key using it, as
// an error on a required secret and as a warning (Config.Unset) elsewhere, unless the key got
// its value another way or the file says ${VAR:-} on purpose.
func TestLoadNamesUnsetVariables(t *testing.T) {
	t.Parallel()
	secretFile := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(secretFile, []byte(strongSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	registry := "registries:\n  - {host: registry.example.com, username: ci, password: \"${REGISTRY_PASSWORD}\"}\n"
	tests := []struct {
		name      string
		yaml      string
		env       map[string]string
		wantErrs  configs.Errors
		wantUnset []configs.UnsetVar
	}{
		{"required secret", "projects:\n  - {path: group/app, image: r.example.com/app, webhook_secret: \"${APP_HOOK_SECRET}\"}\n", nil,
			configs.Errors{{Key: "projects[0].webhook_secret", Message: "${APP_HOOK_SECRET} is not set"}}, nil},
		{"required secret from its file", "projects:\n  - {path: group/app, image: r.example.com/app, webhook_secret: \"${APP_HOOK_SECRET}\", webhook_secret_file: " + secretFile + "}\n", nil,
			nil, nil},
		{"optional secrets", registry + "api: {tokens: [\"${GANTRY_API_TOKEN}\"]}\n", nil,
			nil, []configs.UnsetVar{{Key: "registries[0].password", Name: "REGISTRY_PASSWORD"}, {Key: "api.tokens[0]", Name: "GANTRY_API_TOKEN"}}},
		{"overridden by GANTRY_API_TOKENS", registry + "api: {tokens: [\"${GANTRY_API_TOKEN}\"]}\n", map[string]string{"GANTRY_API_TOKENS": "api-token-0123456789abcdef"},
			nil, []configs.UnsetVar{{Key: "registries[0].password", Name: "REGISTRY_PASSWORD"}}},
		{"registry password from its file", "registries:\n  - {host: registry.example.com, username: ci, password: \"${REGISTRY_PASSWORD}\", password_file: " + secretFile + "}\n", nil, nil, nil},
		{"gitlab url overridden", "gitlab: {url: \"${GITLAB_URL}\"}\n", map[string]string{"GANTRY_GITLAB_URL": "https://gitlab.example.com"}, nil, nil},
		{"public url overridden", "server: {public_url: \"${PUBLIC_URL}\"}\n", map[string]string{"GANTRY_SERVER_PUBLIC_URL": "https://gantry.example.com"}, nil, nil},
		{"redis overridden", "redis: {url: \"${REDIS_URL}\"}\n", map[string]string{"GANTRY_REDIS_URL": "redis://r:6379/0"}, nil, nil},
		{"empty on purpose", "redis: {url: \"${REDIS_URL:-}\"}\n", nil, nil, nil},
		{"two in one value", "server: {listen: \"${HOST}:${PORT}\"}\n", map[string]string{"PORT": "9090"},
			nil, []configs.UnsetVar{{Key: "server.listen", Name: "HOST"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := configs.Load(writeConfig(t, tt.yaml), env(tt.env))
			var errs configs.Errors
			if err != nil {
				errs = fieldErrors(t, err)
			}
			if diff := cmp.Diff(tt.wantErrs, errs); diff != "" {
				t.Fatalf("Load errors mismatch (-want +got):\n%s", diff)
			}
			if cfg == nil {
				return
			}
			if diff := cmp.Diff(tt.wantUnset, cfg.Unset); diff != "" {
				t.Errorf("Load().Unset mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadErrorNamesTheFileOnce: every error Load returns starts with "config <path>: " exactly
// once, whatever went wrong, so that the caller can print it as it is.
func TestLoadErrorNamesTheFileOnce(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "none.yaml")
	for name, path := range map[string]string{
		"missing":  missing,
		"not yaml": writeConfig(t, "server: [\n"),
		"invalid":  writeConfig(t, "server: {listen: nope}\nworkers: {concurrency: 0}\n"),
	} {
		_, err := configs.Load(path, nil)
		if err == nil || !strings.HasPrefix(err.Error(), "config "+path+": ") || strings.Count(err.Error(), path) != 1 {
			t.Errorf("%s: Load error = %v, want it to start with %q and name the file once", name, err, "config "+path+": ")
		}
	}
	if _, err := configs.Load(missing, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist for the caller's fallback", err)
	}
}

// TestLoadLocal: `gantry exec` needs neither the webhook secret nor the server, GitLab or API
// keys, so their problems do not stop it, while a problem with what a local run uses does.
func TestLoadLocal(t *testing.T) {
	t.Parallel()
	intakeOnly := `
server: {public_url: "ftp://nope"}
gitlab: {url: "${GITLAB_URL}", reenable_hooks: true}
api: {tokens: [short, "${GANTRY_API_TOKEN}"]}
projects:
  - {path: group/app, image: registry.example.com/group/app, webhook_secret: "${APP_HOOK_SECRET}"}
  - {path: group/lib, image: registry.example.com/group/lib, webhook_secret: weak}
`
	path := writeConfig(t, intakeOnly)
	if _, err := configs.Load(path, nil); err == nil {
		t.Fatal("Load accepted a config with no webhook secret: the test config is not what it should be")
	}
	cfg, err := configs.LoadLocal(path, nil)
	if err != nil {
		t.Fatalf("LoadLocal = %v, want the intake's keys ignored", err)
	}
	if len(cfg.Unset) != 0 {
		t.Errorf("LoadLocal().Unset = %v, want the intake's keys left out", cfg.Unset)
	}
	_, err = configs.LoadLocal(writeConfig(t, intakeOnly+`  - path: group/tool
    image: registry.example.com/group/tool
    tests: [{name: build, command: [x]}]
workers: {concurrency: 0}
`), nil)
	var errs configs.Errors
	if !errors.As(err, &errs) || len(errs) != 2 || errs[0].Key != "workers.concurrency" || !strings.HasPrefix(errs[1].Key, "projects[2].tests[0]") {
		t.Errorf("LoadLocal with bad workers and tests = %v, want both reported", err)
	}
}

// TestUnsetReadBy: a registry's keys are the workers', the API's the intake's, the rest everyone's.
func TestUnsetReadBy(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]configs.Reader{
		"registries[0].password":    configs.WorkerRole,
		"registries[2].username":    configs.WorkerRole,
		"api.tokens[0]":             configs.IntakeRole,
		"api.oauth.client_secret":   configs.IntakeRole,
		"gitlab.token":              configs.EveryRole,
		"redis.url":                 configs.EveryRole,
		"projects[0].registry":      configs.EveryRole,
		"projects[0].api.tokens[0]": configs.EveryRole,
	} {
		if got := (configs.UnsetVar{Key: key, Name: "X"}).ReadBy(); got != want {
			t.Errorf("ReadBy(%s) = %d, want %d", key, got, want)
		}
	}
}
