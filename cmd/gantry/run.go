package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
)

const usage = `gantry — GitLab webhook pipeline orchestrator

Usage:
  gantry serve   [--config FILE]   HTTP, workers and scheduler in one process
  gantry server  [--config FILE]   the HTTP side alone (webhooks, API, pages)
  gantry worker  [--config FILE]   the worker side alone (runs jobs on the Docker engine)
  gantry hooks register --project <path> [--config FILE] [--url URL]
                                   create or update the project's GitLab webhook
  gantry hooks check [--config FILE]
                                   report hooks GitLab has disabled; fails if there are any
  gantry pipelines list [--project P] [--ref R] [--sha S] [--status S] [--limit N] [--json]
  gantry pipelines show ID [--json]
  gantry pipelines log ID JOB [--attempt N] [--follow] [--raw]
  gantry pipelines retry ID [--job JOB] [--json]
  gantry pipelines cancel ID [--json]
  gantry pipelines approve ID [--as NAME] [--sha SHA] [--json]
  gantry pipelines decline ID [--as NAME] [--json]
                                   let a merge request's pipeline that waits for approval run,
                                   or cancel it; --sha refuses if it builds another commit
  gantry pipelines trigger PROJECT REF [--sha SHA] [--json]
                                   the REST API from a terminal: $GANTRY_URL (default
                                   http://127.0.0.1:8080) with $GANTRY_TOKEN
  gantry exec [dir] [--config FILE] [--project P]
                                   run the pipeline on a local working tree (no GitLab, no
                                   Redis, never releases); exit status is the pipeline's
  gantry healthcheck [--worker] [--config FILE] [--url URL]
                                   a container's health check: exit 0 when the HTTP side answers
                                   /readyz (at server.listen), or with --worker when Redis and
                                   the Docker engine answer
  gantry version                   version and build info

The config file is --config, else $GANTRY_CONFIG, else configs/gantry.yaml; without one
gantry starts with embedded defaults (an in-memory Redis, no projects).
`

// run is the whole program; main only adds the process's signals, arguments and environment,
// so tests can run gantry in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve", "server", "worker":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		fs.SetOutput(stderr)
		configPath := fs.String("config", "", "config file (default $GANTRY_CONFIG or configs/gantry.yaml)")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		return serve(ctx, roles[cmd], *configPath, getenv, stderr)
	case "exec":
		return execCommand(ctx, rest, getenv, stdout, stderr)
	case "hooks":
		return hooksCommand(ctx, rest, getenv, stdout, stderr)
	case "pipelines":
		return pipelinesCommand(ctx, rest, getenv, stdout, stderr)
	case "healthcheck":
		return healthcheckCommand(ctx, rest, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// role says which halves of gantry a process runs.
type role struct{ http, workers bool }

var roles = map[string]role{
	"serve":  {http: true, workers: true},
	"server": {http: true},
	"worker": {workers: true},
}

func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "gantry (unknown build)"
	}
	out := "gantry " + info.Main.Version + " " + info.GoVersion
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
			out += " " + s.Key + "=" + s.Value
		}
	}
	return out
}
