package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/gantry-ci/gantry/orchestrator"
)

const usage = `gantry — GitLab webhook pipeline orchestrator

Usage:
  gantry serve   [--config FILE]   HTTP, workers and scheduler in one process
  gantry server  [--config FILE]   the HTTP side alone (webhooks, API, pages)
  gantry worker  [--config FILE]   the worker side alone (runs jobs on the Docker engine)
  gantry hooks register --project <path> [--config FILE] [--url URL]
                                   create or update the project's GitLab webhook
  gantry hooks check [--config FILE] [--url URL] [--json]
                                   per project, gantry's hook (its URL: --url, else
                                   server.public_url + /webhooks/gitlab; others are ignored);
                                   fails unless every project has one GitLab delivers to
  gantry pipelines list [--project P] [--ref R] [--sha S] [--status S] [--limit N] [--json]
  gantry pipelines show ID [--json]   exit status 2 when the pipeline failed, 3 when canceled
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
  gantry exec [DIR] [--config FILE] [--project P] [--keep]
                                   run the pipeline on a local working tree (no GitLab, no
                                   Redis, never releases); flags may follow DIR; the images it
                                   built are removed at the end unless --keep; exit status is
                                   the pipeline's (see below)
  gantry healthcheck [--worker] [--config FILE] [--url URL]
                                   a container's health check: exit 0 when the HTTP side answers
                                   /readyz (at server.listen), or with --worker when Redis and
                                   the Docker engine answer
  gantry version                   the module version, the VCS revision and time it was built from
  gantry help [COMMAND]            this text, or a command's part of it (also -h, --help)

The config file is --config, else $GANTRY_CONFIG, else configs/gantry.yaml; without one
gantry starts with embedded defaults (an in-memory Redis, no projects).

Exit status: 0 done (for pipelines show and exec: the pipeline succeeded, or is still going);
1 an error (arguments, config, GitLab, the API or the engine); 2 the pipeline failed;
3 the pipeline was canceled.
`

// run is the whole program; main only adds the process's signals, arguments and environment,
// so tests can run gantry in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	if cmd == "help" || cmd == "-h" || cmd == "--help" || cmd == "-help" {
		if len(rest) == 0 {
			fmt.Fprint(stdout, usage)
			return nil
		}
		cmd, rest = rest[0], []string{"--help"}
	}
	if wantsHelp(rest) {
		text, ok := commandUsage(cmd)
		if !ok {
			fmt.Fprint(stderr, usage)
			return fmt.Errorf("unknown command %q", cmd)
		}
		fmt.Fprint(stdout, text)
		return nil
	}
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
		fmt.Fprint(stdout, version())
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

// version reads what the Go toolchain recorded in the binary: the module version ("(devel)"
// for a build from a checkout), and with -buildvcs (go build's default in a git checkout) the
// commit, its time and whether the tree had uncommitted changes. No -ldflags variable to keep
// in step: the toolchain has it already.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "gantry (unknown build: no build information in the binary)\n"
	}
	return versionText(info)
}

// versionText writes a build's information one fact a line.
func versionText(info *debug.BuildInfo) string {
	vcs := map[string]string{}
	for _, s := range info.Settings {
		vcs[s.Key] = s.Value
	}
	var b strings.Builder
	fmt.Fprintf(&b, "gantry %s\n", cmp.Or(info.Main.Version, "(devel)"))
	if rev := vcs["vcs.revision"]; rev != "" {
		if vcs["vcs.modified"] == "true" {
			rev += " (with uncommitted changes)"
		}
		fmt.Fprintf(&b, "revision %s\n", rev)
		if t := vcs["vcs.time"]; t != "" {
			fmt.Fprintf(&b, "time     %s\n", t)
		}
	} else {
		b.WriteString("revision unknown: built without VCS information (outside a git checkout, or with -buildvcs=false)\n")
	}
	fmt.Fprintf(&b, "go       %s %s/%s\n", info.GoVersion, cmp.Or(vcs["GOOS"], runtime.GOOS), cmp.Or(vcs["GOARCH"], runtime.GOARCH))
	return b.String()
}

// wantsHelp reports whether a command's arguments ask for help, before a "--" that ends the
// flags.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// commandUsage is the part of the usage about cmd (its lines and their continuations), with
// the notes that end the usage; false when there is no such command.
func commandUsage(cmd string) (string, bool) {
	lines := strings.Split(usage, "\n")
	var b strings.Builder
	b.WriteString("Usage:\n")
	in, found := false, false
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "  gantry "+cmd+" ") || l == "  gantry "+cmd:
			in, found = true, true
		case strings.HasPrefix(l, "  gantry "), l == "":
			in = false
		}
		if in {
			b.WriteString(l + "\n")
		}
		if l == "" && i > 0 && found && !in && strings.HasPrefix(lines[i-1], "  ") {
			b.WriteString("\n" + strings.Join(lines[i+1:], "\n"))
			break
		}
	}
	return b.String(), found
}

// exitStatus is an error that asks main for an exit status other than 1.
type exitStatus struct {
	code int
	err  error
}

func (e exitStatus) Error() string { return e.err.Error() }
func (e exitStatus) Unwrap() error { return e.err }

// Exit statuses beyond 0 and 1, as the usage documents them.
const (
	exitPipelineFailed   = 2
	exitPipelineCanceled = 3
)

// pipelineExit is the exit status of a command that shows a pipeline: nil while it succeeded
// or still goes, exitPipelineFailed or exitPipelineCanceled once it ended so.
func pipelineExit(id int64, s orchestrator.State) error {
	switch s {
	case orchestrator.StateFailed:
		return exitStatus{exitPipelineFailed, fmt.Errorf("pipeline %d failed", id)}
	case orchestrator.StateCanceled:
		return exitStatus{exitPipelineCanceled, fmt.Errorf("pipeline %d was canceled", id)}
	}
	return nil
}

// exitCode is the process's exit status for run's error.
func exitCode(err error) int {
	var e exitStatus
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}
