package main

import (
	"cmp"
	"context"
	"encoding/json"
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
		hookURL := fs.String("url", "", "gantry's hook URL; hooks with another URL are not gantry's (default server.public_url + "+webhookPath+")")
		asJSON := fs.Bool("json", false, "print one JSON object per project: its gantry hooks and the verdict")
		if err := parseHookFlags(fs, rest); err != nil {
			return err
		}
		return checkHooks(ctx, *configPath, *hookURL, *asJSON, getenv, stdout, stderr)
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
	hookURL, err = ownURL(cfg.Server.PublicURL, hookURL)
	if err != nil {
		return fmt.Errorf("hooks register: %w", err)
	}
	res, err := client.RegisterHook(ctx, p.Path, gitlab.HookSpec{
		URL: hookURL, Token: p.WebhookSecret.Value(),
		PushEvents: true, TagPushEvents: true, MergeRequestsEvents: true, EnableSSLVerification: true,
	})
	if errors.Is(err, gitlab.ErrTokenRefused) {
		return errors.New("hooks register: GitLab refused the token: check gitlab.token (gitlab.token_file, GANTRY_GITLAB_TOKEN): it must exist, be unexpired and have the api scope")
	}
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

// checkHooks reports, per configured project, whether gantry's hook (the one whose URL is
// gantry's) is there and GitLab delivers to it, and fails unless every project has one that
// does, so that it can run from cron or a monitoring check: GitLab skips events for a disabled
// hook and never redelivers them (docs/gitlab.md §1.4), and a project without the hook sends
// nothing at all. Other services' hooks on the same projects are none of gantry's business.
func checkHooks(ctx context.Context, configPath, hookURL string, asJSON bool, getenv func(string) string, stdout, stderr io.Writer) error {
	log := newLogger(stderr)
	defer log.Sync()
	cfg, client, err := hooksClient(configPath, getenv, log)
	if err != nil {
		return err
	}
	if len(cfg.Projects) == 0 {
		return errors.New("hooks check: no projects configured")
	}
	own, err := ownURL(cfg.Server.PublicURL, hookURL)
	if err != nil {
		return fmt.Errorf("hooks check: %w", err)
	}
	paths := make([]string, 0, len(cfg.Projects))
	for _, p := range cfg.Projects {
		paths = append(paths, p.Path)
	}
	// Projects that could be listed are reported even when others could not.
	reports, listErr := client.CheckHooks(ctx, paths)
	if errors.Is(listErr, gitlab.ErrTokenRefused) {
		// Every project fails alike: one line that says where the token comes from.
		return errors.New("hooks check: GitLab refused the token: check gitlab.token (gitlab.token_file, GANTRY_GITLAB_TOKEN): it must exist, be unexpired and have the api scope")
	}
	verdicts := hookVerdicts(paths, reports, listErr, own)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(verdicts); err != nil {
			return err
		}
	} else {
		printVerdicts(stdout, verdicts)
	}
	return verdictsError(verdicts, listErr)
}

// ownURL is the URL of gantry's hooks: --url, else server.public_url + webhookPath. It is how
// gantry's hook is told from another service's on the same project.
func ownURL(publicURL, hookURL string) (string, error) {
	if hookURL != "" {
		if u, err := url.Parse(hookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", errors.New("--url must be an absolute http(s) URL")
		}
		return hookURL, nil
	}
	if publicURL == "" {
		return "", errors.New("set server.public_url (or GANTRY_SERVER_PUBLIC_URL) or pass --url: GitLab needs to know where gantry is, and gantry's hooks are told from other services' by their URL")
	}
	return strings.TrimSuffix(publicURL, "/") + webhookPath, nil
}

// The verdicts of `hooks check`, per project.
const (
	hookOK       = "ok"       // gantry's hook is there and GitLab delivers to it
	hookDisabled = "disabled" // GitLab stopped delivering to gantry's hook
	hookMissing  = "missing"  // no hook of the project has gantry's URL
	hookError    = "error"    // the project's hooks could not be listed
)

// projectHooks is one project's line of `hooks check --json`.
type projectHooks struct {
	Project string     `json:"project"`
	Verdict string     `json:"verdict"`
	Hooks   []hookJSON `json:"hooks"` // gantry's hooks only
	Others  int        `json:"other_hooks"`
}

type hookJSON struct {
	ID            int64      `json:"id"`
	URL           string     `json:"url"`
	AlertStatus   string     `json:"alert_status"`
	DisabledUntil *time.Time `json:"disabled_until,omitempty"`
}

// hookVerdicts judges every project from its hooks whose URL is own; a project missing from
// reports could not be listed.
func hookVerdicts(paths []string, reports []gitlab.HookReport, listErr error, own string) []projectHooks {
	byProject := map[string]gitlab.HookReport{}
	for _, r := range reports {
		byProject[r.Project] = r
	}
	out := make([]projectHooks, 0, len(paths))
	for _, path := range paths {
		r, ok := byProject[path]
		v := projectHooks{Project: path, Verdict: hookError, Hooks: []hookJSON{}}
		if !ok {
			out = append(out, v)
			continue
		}
		v.Verdict = hookMissing
		for _, h := range r.Hooks {
			if h.URL != own {
				v.Others++
				continue
			}
			v.Hooks = append(v.Hooks, hookJSON{ID: h.ID, URL: redactURL(h.URL), AlertStatus: cmp.Or(h.AlertStatus, "executable"), DisabledUntil: h.DisabledUntil})
			switch {
			case !h.Executable():
				v.Verdict = hookDisabled
			case v.Verdict == hookMissing:
				v.Verdict = hookOK
			}
		}
		out = append(out, v)
	}
	return out
}

// printVerdicts writes one line per gantry hook that is not delivered to and per project
// without one, then, when all is well, one line saying so.
func printVerdicts(w io.Writer, verdicts []projectHooks) {
	hooks, bad := 0, false
	for _, v := range verdicts {
		hooks += len(v.Hooks)
		switch v.Verdict {
		case hookMissing:
			bad = true
			fmt.Fprintf(w, "%s has no gantry hook (gantry hooks register --project %s)\n", v.Project, v.Project)
		case hookError:
			bad = true
			fmt.Fprintf(w, "%s: its hooks could not be listed\n", v.Project)
		}
		for _, h := range v.Hooks {
			if h.AlertStatus == "executable" {
				continue
			}
			bad = true
			line := fmt.Sprintf("%s hook %d %s %s", v.Project, h.ID, h.URL, h.AlertStatus)
			if h.DisabledUntil != nil {
				line += " until " + h.DisabledUntil.UTC().Format(time.RFC3339)
			}
			fmt.Fprintln(w, line)
		}
	}
	if !bad {
		fmt.Fprintf(w, "all %d gantry hooks of %d projects are executable\n", hooks, len(verdicts))
	}
}

// verdictsError is the exit status: nil only when every project has a gantry hook GitLab
// delivers to.
func verdictsError(verdicts []projectHooks, listErr error) error {
	var disabled, missing []string
	for _, v := range verdicts {
		switch v.Verdict {
		case hookDisabled:
			disabled = append(disabled, v.Project)
		case hookMissing:
			missing = append(missing, v.Project)
		}
	}
	var errs []error
	if len(disabled) > 0 {
		errs = append(errs, fmt.Errorf("hooks check: GitLab disabled gantry's hook of %s", strings.Join(disabled, ", ")))
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("hooks check: no gantry hook on %s", strings.Join(missing, ", ")))
	}
	return errors.Join(append(errs, listErr)...)
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
