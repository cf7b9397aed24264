package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
)

const appSecret = "app-hook-s3cret-0123456789abcdef"

// hooksBundle is a GitLab double with group/app and group/lib, and a config naming both.
type hooksBundle struct {
	gl       *gitlabtest.Server
	app, lib gitlabtest.Project
	env      map[string]string
}

func setupHooks(t *testing.T) *hooksBundle {
	t.Helper()
	gl := gitlabtest.New(t)
	return &hooksBundle{
		gl: gl, app: gl.AddProject("group/app", t.TempDir()), lib: gl.AddProject("group/lib", t.TempDir()),
		env: map[string]string{"TEST_GITLAB_TOKEN": gl.Token, "APP_HOOK_SECRET": appSecret},
	}
}

// config writes a config file with the given server and gitlab sections and returns its path.
func (b *hooksBundle) config(t *testing.T, server, gitlab string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gantry.yaml")
	must(t, os.WriteFile(path, []byte(fmt.Sprintf(`
server: %s
gitlab: %s
projects:
  - {path: group/app, webhook_secret: "${APP_HOOK_SECRET}", image: registry.example.com/group/app}
  - {path: group/lib, webhook_secret: lib-secret-0123456789abcdef, image: registry.example.com/group/lib}
`, server, gitlab)), 0o600))
	return path
}

// defaultConfig is a complete config for the double, with public URL https://gantry.example.com/.
func (b *hooksBundle) defaultConfig(t *testing.T) string {
	return b.config(t, `{public_url: "https://gantry.example.com/"}`,
		fmt.Sprintf(`{url: %q, token: "${TEST_GITLAB_TOKEN}"}`, b.gl.URL))
}

// gantry runs the command in-process and returns its output and error.
func (b *hooksBundle) gantry(args ...string) (stdout string, err error) {
	var out, logs bytes.Buffer
	err = run(context.Background(), args, func(k string) string { return b.env[k] }, &out, &logs)
	return out.String(), err
}

func TestHooksRegister(t *testing.T) {
	t.Parallel()
	b := setupHooks(t)
	cfg := b.defaultConfig(t)
	const want = "https://gantry.example.com/webhooks/gitlab"
	steps := []struct {
		args []string
		out  string
	}{
		{[]string{"--project", "group/app"}, "created hook 1 on group/app for " + want + "\n"},
		// GitLab paths are case-insensitive, and so is the config's lookup.
		{[]string{"--project", "Group/App"}, "updated hook 1 on group/app for " + want + "\n"},
	}
	for _, s := range steps {
		out, err := b.gantry(append([]string{"hooks", "register", "--config", cfg}, s.args...)...)
		if err != nil || out != s.out {
			t.Fatalf("gantry hooks register %v = %q, %v; want %q", s.args, out, err, s.out)
		}
	}
	hooks := b.gl.Hooks(b.app.ID)
	if len(hooks) != 1 || hooks[0].URL != want || hooks[0].Token != appSecret || !hooks[0].MergeRequestsEvents {
		t.Fatalf("hooks of group/app = %+v, want one for %s with the webhook_secret as token", hooks, want)
	}

	b.gl.AddHook(b.app.ID, gitlabtest.Hook{URL: want})
	b.gl.AddHook(b.app.ID, gitlabtest.Hook{URL: want})
	out, err := b.gantry("hooks", "register", "--config", cfg, "--project", "group/app")
	if wantOut := "updated hook 1 on group/app for " + want + ", removed duplicates [2 3]\n"; err != nil || out != wantOut {
		t.Errorf("gantry hooks register with duplicates = %q, %v; want %q", out, err, wantOut)
	}

	out, err = b.gantry("hooks", "register", "--config", cfg, "--project", "group/lib", "--url", "http://10.0.0.5:8080/webhooks/gitlab")
	if wantOut := "created hook 4 on group/lib for http://10.0.0.5:8080/webhooks/gitlab\n"; err != nil || out != wantOut {
		t.Errorf("gantry hooks register --url = %q, %v; want %q", out, err, wantOut)
	}
	if hooks := b.gl.Hooks(b.lib.ID); len(hooks) != 1 || hooks[0].Token != "lib-secret-0123456789abcdef" {
		t.Errorf("hooks of group/lib = %+v, want one with token lib-secret-0123456789abcdef", hooks)
	}
}

func TestHooksRegisterRefuses(t *testing.T) {
	t.Parallel()
	b := setupHooks(t)
	cfg := b.defaultConfig(t)
	gitlab := fmt.Sprintf(`{url: %q, token: "${TEST_GITLAB_TOKEN}"}`, b.gl.URL)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", []string{"hooks"}, "register or check"},
		{"unknown subcommand", []string{"hooks", "list"}, `unknown hooks subcommand "list"`},
		{"no project", []string{"hooks", "register", "--config", cfg}, "--project is required"},
		{"stray argument", []string{"hooks", "register", "--config", cfg, "--project", "group/app", "extra"}, "unexpected arguments"},
		{"unknown project", []string{"hooks", "register", "--config", cfg, "--project", "group/nope"}, `project "group/nope" is not configured`},
		{"bad url", []string{"hooks", "register", "--config", cfg, "--project", "group/app", "--url", "gantry:8080"}, "--url must be an absolute http(s) URL"},
		{"no public url", []string{"hooks", "register", "--project", "group/app", "--config", b.config(t, "{}", gitlab)}, "server.public_url"},
		{"no gitlab url", []string{"hooks", "register", "--project", "group/app", "--config", b.config(t, "{}", "{}")}, "gitlab.url"},
		{"no token", []string{"hooks", "check", "--config", b.config(t, "{}", fmt.Sprintf("{url: %q}", b.gl.URL))}, "gitlab.token"},
		{"missing config", []string{"hooks", "check", "--config", filepath.Join(t.TempDir(), "none.yaml")}, "none.yaml"},
	}
	for _, tt := range tests {
		out, err := b.gantry(tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || out != "" {
			t.Errorf("%s: gantry %v = %q, %v; want no output and an error about %s", tt.name, tt.args, out, err, tt.want)
		} else if strings.Contains(err.Error(), appSecret) || strings.Contains(err.Error(), b.gl.Token) {
			t.Errorf("%s: error %q shows a secret", tt.name, err)
		}
	}
	if n := len(b.gl.Calls()); n != 0 {
		t.Errorf("%d GitLab calls, want none", n)
	}
}

func TestHooksCheck(t *testing.T) {
	t.Parallel()
	b := setupHooks(t)
	cfg := b.defaultConfig(t)
	for _, p := range []gitlabtest.Project{b.app, b.lib} {
		if _, err := b.gantry("hooks", "register", "--config", cfg, "--project", p.PathWithNamespace); err != nil {
			t.Fatal(err)
		}
	}
	other := b.gl.AddHook(b.lib.ID, gitlabtest.Hook{URL: "https://chat.example.com/gitlab"})
	out, err := b.gantry("hooks", "check", "--config", cfg)
	if want := "all 3 hooks of 2 projects are executable\n"; err != nil || out != want {
		t.Fatalf("gantry hooks check = %q, %v; want %q", out, err, want)
	}

	until := time.Now().Add(2 * time.Minute).UTC().Truncate(time.Second)
	b.gl.SetHookAlert(b.app.ID, b.gl.Hooks(b.app.ID)[0].ID, "temporarily_disabled", &until)
	b.gl.SetHookAlert(b.lib.ID, other.ID, "disabled", nil)
	out, err = b.gantry("hooks", "check", "--config", cfg)
	want := fmt.Sprintf("group/app hook 1 https://gantry.example.com/webhooks/gitlab temporarily_disabled until %s\n"+
		"group/lib hook %d https://chat.example.com/gitlab disabled\n", until.Format(time.RFC3339), other.ID)
	if out != want {
		t.Errorf("gantry hooks check output:\n%s\nwant:\n%s", out, want)
	}
	if err == nil || !strings.Contains(err.Error(), "2 of 3 hooks are disabled") {
		t.Errorf("gantry hooks check error = %v, want 2 of 3 hooks disabled", err)
	}
}
