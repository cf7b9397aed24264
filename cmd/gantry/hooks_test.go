package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	// Another service's hook is none of gantry's business, even when GitLab disabled it.
	other := b.gl.AddHook(b.lib.ID, gitlabtest.Hook{URL: "https://chat.example.com/gitlab"})
	b.gl.SetHookAlert(b.lib.ID, other.ID, "disabled", nil)
	out, err := b.gantry("hooks", "check", "--config", cfg)
	if want := "all 2 gantry hooks of 2 projects are executable\n"; err != nil || out != want {
		t.Fatalf("gantry hooks check = %q, %v; want %q", out, err, want)
	}

	until := time.Now().Add(2 * time.Minute).UTC().Truncate(time.Second)
	b.gl.SetHookAlert(b.app.ID, b.gl.Hooks(b.app.ID)[0].ID, "temporarily_disabled", &until)
	out, err = b.gantry("hooks", "check", "--config", cfg)
	want := fmt.Sprintf("group/app hook 1 https://gantry.example.com/webhooks/gitlab temporarily_disabled until %s\n", until.Format(time.RFC3339))
	if out != want {
		t.Errorf("gantry hooks check output:\n%s\nwant:\n%s", out, want)
	}
	if err == nil || err.Error() != "hooks check: GitLab disabled gantry's hook of group/app" {
		t.Errorf("gantry hooks check error = %v, want group/app's hook disabled", err)
	}

	out, err = b.gantry("hooks", "check", "--config", cfg, "--json")
	var got []struct {
		Project, Verdict string
		Hooks            []struct {
			ID          int64
			URL         string
			AlertStatus string `json:"alert_status"`
		}
		Others int `json:"other_hooks"`
	}
	if jerr := json.Unmarshal([]byte(out), &got); jerr != nil || err == nil {
		t.Fatalf("gantry hooks check --json = %s, %v; want JSON and an error (%v)", out, err, jerr)
	}
	if len(got) != 2 || got[0].Project != "group/app" || got[0].Verdict != "disabled" || len(got[0].Hooks) != 1 ||
		got[0].Hooks[0].AlertStatus != "temporarily_disabled" || got[1].Verdict != "ok" || len(got[1].Hooks) != 1 || got[1].Others != 1 {
		t.Errorf("gantry hooks check --json = %s, want group/app disabled, group/lib ok with one other hook", out)
	}
}

// TestHooksCheckMissing: a project with no gantry hook — none at all, or only other services' —
// is reported and fails the check; it is never "all 0 hooks are executable".
func TestHooksCheckMissing(t *testing.T) {
	t.Parallel()
	b := setupHooks(t)
	cfg := b.defaultConfig(t)
	out, err := b.gantry("hooks", "check", "--config", cfg)
	want := "group/app has no gantry hook (gantry hooks register --project group/app)\n" +
		"group/lib has no gantry hook (gantry hooks register --project group/lib)\n"
	if out != want || err == nil || err.Error() != "hooks check: no gantry hook on group/app, group/lib" {
		t.Errorf("gantry hooks check with no hooks = %q, %v; want both projects missing and an error", out, err)
	}
	if _, err := b.gantry("hooks", "register", "--config", cfg, "--project", "group/app"); err != nil {
		t.Fatal(err)
	}
	// A hook to gantry at another address is not this gantry's.
	b.gl.AddHook(b.lib.ID, gitlabtest.Hook{URL: "https://old-gantry.example.com/webhooks/gitlab"})
	out, err = b.gantry("hooks", "check", "--config", cfg)
	if want := "group/lib has no gantry hook (gantry hooks register --project group/lib)\n"; out != want || err == nil {
		t.Errorf("gantry hooks check with lib's hook elsewhere = %q, %v; want group/lib missing", out, err)
	}
	// --url names gantry's address when the config has no public URL.
	gitlab := fmt.Sprintf(`{url: %q, token: "${TEST_GITLAB_TOKEN}"}`, b.gl.URL)
	noPublic := b.config(t, "{}", gitlab)
	if _, err := b.gantry("hooks", "check", "--config", noPublic); err == nil || !strings.Contains(err.Error(), "server.public_url") {
		t.Errorf("gantry hooks check without public_url = %v, want it to ask for server.public_url or --url", err)
	}
	out, err = b.gantry("hooks", "check", "--config", noPublic, "--url", "https://old-gantry.example.com/webhooks/gitlab")
	if want := "group/app has no gantry hook (gantry hooks register --project group/app)\n"; out != want || err == nil {
		t.Errorf("gantry hooks check --url = %q, %v; want group/app missing, group/lib found", out, err)
	}
}

// TestHooksTokenRefused: GitLab's 401 is explained once, naming where the token comes from,
// never quoting it.
func TestHooksTokenRefused(t *testing.T) {
	t.Parallel()
	b := setupHooks(t)
	b.env["TEST_GITLAB_TOKEN"] = "glpat-revoked-0123456789"
	cfg := b.defaultConfig(t)
	for _, args := range [][]string{{"hooks", "check", "--config", cfg}, {"hooks", "register", "--config", cfg, "--project", "group/app"}} {
		out, err := b.gantry(args...)
		if err == nil || !strings.Contains(err.Error(), "GitLab refused the token: check gitlab.token") ||
			strings.Count(err.Error(), "refused") != 1 || strings.Contains(err.Error(), "glpat-revoked") || out != "" {
			t.Errorf("gantry %v with a revoked token = %q, %v; want one explanation naming gitlab.token", args, out, err)
		}
	}
}
