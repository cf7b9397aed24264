package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/configs"
	"github.com/gantry-ci/gantry/gitlab"
	"go.uber.org/zap"
)

// webhookPath is where gantry serves GitLab's deliveries, under server.public_url.
const webhookPath = "/webhooks/gitlab"

// hooksCommand runs `gantry hooks register` and `gantry hooks check`. Output is one human line per
// result on stdout; log lines (retries) go to stderr.
func hooksCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("hooks: give a subcommand, register or check")
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("hooks "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default $GANTRY_CONFIG or configs/gantry.yaml)")
	switch sub {
	case "register":
		project := fs.String("project", "", "path of a configured project, e.g. group/app (required)")
		hookURL := fs.String("url", "", "where GitLab delivers (default server.public_url + "+webhookPath+")")
		if err := parseHookFlags(fs, rest); err != nil {
			return err
		}
		if *project == "" {
			return errors.New("hooks register: --project is required")
		}
		return registerHook(ctx, *configPath, *project, *hookURL, getenv, stdout, stderr)
	case "check":
		if err := parseHookFlags(fs, rest); err != nil {
			return err
		}
		return checkHooks(ctx, *configPath, getenv, stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown hooks subcommand %q (want register or check)", sub)
}

// parseHookFlags parses flags and refuses leftover arguments, which would otherwise be ignored
// silently (a misspelt "--project=a b").
func parseHookFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	return nil
}

// registerHook creates or updates the project's webhook so that GitLab delivers pushes, tag
// pushes and merge requests to gantry with the project's webhook_secret as token.
func registerHook(ctx context.Context, configPath, project, hookURL string, getenv func(string) string, stdout, stderr io.Writer) error {
	log := newLogger(stderr)
	defer log.Sync()
	cfg, client, err := hooksClient(configPath, getenv, log)
	if err != nil {
		return err
	}
	p, ok := cfg.Project(project)
	if !ok {
		return fmt.Errorf("hooks register: project %q is not configured: its webhook_secret comes from the config", project)
	}
	if hookURL == "" {
		if cfg.Server.PublicURL == "" {
			return errors.New("hooks register: set server.public_url (or GANTRY_SERVER_PUBLIC_URL) or pass --url: GitLab needs to know where gantry is")
		}
		hookURL = strings.TrimSuffix(cfg.Server.PublicURL, "/") + webhookPath
	} else if u, err := url.Parse(hookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("hooks register: --url must be an absolute http(s) URL")
	}
	res, err := client.RegisterHook(ctx, p.Path, gitlab.HookSpec{
		URL: hookURL, Token: p.WebhookSecret.Value(),
		PushEvents: true, TagPushEvents: true, MergeRequestsEvents: true, EnableSSLVerification: true,
	})
	if err != nil {
		return err
	}
	line := fmt.Sprintf("updated hook %d on %s for %s", res.ID, p.Path, redactURL(hookURL))
	if res.Created {
		line = fmt.Sprintf("created hook %d on %s for %s", res.ID, p.Path, redactURL(hookURL))
	}
	if len(res.Removed) > 0 {
		line += fmt.Sprintf(", removed duplicates %v", res.Removed)
	}
	fmt.Fprintln(stdout, line)
	return nil
}

// checkHooks prints every hook of the configured projects that GitLab has disabled, and fails
// when there is one, so that it can run from cron or a monitoring check: GitLab skips events
// for a disabled hook and never redelivers them (docs/gitlab.md §1.4).
func checkHooks(ctx context.Context, configPath string, getenv func(string) string, stdout, stderr io.Writer) error {
	log := newLogger(stderr)
	defer log.Sync()
	cfg, client, err := hooksClient(configPath, getenv, log)
	if err != nil {
		return err
	}
	if len(cfg.Projects) == 0 {
		return errors.New("hooks check: no projects configured")
	}
	paths := make([]string, 0, len(cfg.Projects))
	for _, p := range cfg.Projects {
		paths = append(paths, p.Path)
	}
	// Projects that could be listed are reported even when others could not.
	reports, listErr := client.CheckHooks(ctx, paths)
	total, disabled := 0, 0
	for _, r := range reports {
		total += r.Hooks
		for _, h := range r.Disabled {
			disabled++
			line := fmt.Sprintf("%s hook %d %s %s", r.Project, h.ID, redactURL(h.URL), h.AlertStatus)
			if h.DisabledUntil != nil {
				line += " until " + h.DisabledUntil.UTC().Format(time.RFC3339)
			}
			fmt.Fprintln(stdout, line)
		}
	}
	switch {
	case disabled > 0:
		return errors.Join(fmt.Errorf("hooks check: %d of %d hooks are disabled", disabled, total), listErr)
	case listErr != nil:
		return listErr
	}
	fmt.Fprintf(stdout, "all %d hooks of %d projects are executable\n", total, len(reports))
	return nil
}

// hooksClient loads the config as serve does and returns a GitLab client that can manage
// hooks, which needs both the instance and a token.
func hooksClient(configPath string, getenv func(string) string, log *zap.Logger) (*configs.Config, *gitlab.Client, error) {
	cfg, err := loadConfig(configPath, getenv, log)
	if err != nil {
		return nil, nil, err
	}
	if cfg.GitLab.URL == "" {
		return nil, nil, errors.New("gitlab.url (or GANTRY_GITLAB_URL) is not set: hooks are managed through GitLab's API")
	}
	if cfg.GitLab.Token.Value() == "" {
		return nil, nil, errors.New("gitlab.token (or gitlab.token_file, GANTRY_GITLAB_TOKEN) is not set: managing hooks needs a token with api scope of a project Maintainer")
	}
	client, err := gitlab.New(cfg.GitLab.URL, cfg.GitLab.Token.Value(), log)
	if err != nil {
		return nil, nil, err
	}
	return cfg, client, nil
}

// redactURL hides a password in a URL's userinfo before the URL is printed.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(a URL that does not parse)"
	}
	return u.Redacted()
}
