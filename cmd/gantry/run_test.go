package main

import (
	"bytes"
	"context"
	"runtime/debug"
	"strings"
	"testing"
)

// TestHelp: every way of asking for help exits 0 with the usage on stdout, a command's own part
// for `<cmd> --help` and `help <cmd>`; nothing runs.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string // a line the answer has
	}{
		{[]string{"--help"}, "  gantry serve   [--config FILE]"},
		{[]string{"-h"}, "  gantry version"},
		{[]string{"help"}, "  gantry hooks check"},
		{[]string{"help", "exec"}, "  gantry exec [DIR]"},
		{[]string{"exec", "--help"}, "  gantry exec [DIR]"},
		{[]string{"exec", "somedir", "-h"}, "  gantry exec [DIR]"},
		{[]string{"serve", "--help"}, "  gantry serve   [--config FILE]"},
		{[]string{"hooks", "check", "-help"}, "  gantry hooks check"},
		{[]string{"pipelines", "show", "4", "--help"}, "  gantry pipelines show ID"},
		{[]string{"version", "--help"}, "  gantry version"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tt.args, func(string) string { return "" }, &stdout, &stderr)
		if err != nil || !strings.Contains(stdout.String(), tt.want) || !strings.Contains(stdout.String(), "Exit status:") || stderr.Len() != 0 {
			t.Errorf("gantry %v = %v, stdout:\n%s\nstderr: %q\nwant usage with %q on stdout, nothing on stderr", tt.args, err, stdout.String(), stderr.String(), tt.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"nope", "--help"}, nil, &stdout, &stderr); err == nil || stdout.Len() != 0 {
		t.Errorf("gantry nope --help = %v, stdout %q; want an unknown command", err, stdout.String())
	}
	if one, _ := commandUsage("exec"); strings.Contains(one, "gantry serve") || strings.Contains(one, "gantry pipelines") {
		t.Errorf("exec's usage shows other commands:\n%s", one)
	}
}

// TestVersionText: the version names the module version, the commit and its time, as the Go
// toolchain records them (the settings of a build in a git checkout, as `go version -m` lists them), and says so
// when a build has no VCS information rather than printing a bare "(devel)".
func TestVersionText(t *testing.T) {
	t.Parallel()
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Path: "github.com/gantry-ci/gantry/cmd/gantry",
		Main: debug.Module{Path: "github.com/gantry-ci/gantry", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "GOARCH", Value: "amd64"}, {Key: "GOOS", Value: "linux"}, {Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "793d256c896f4fa75c8e2ddeb50b5b18a4c2a7bc"}, {Key: "vcs.time", Value: "2026-12-04T04:43:58Z"},
			{Key: "vcs.modified", Value: "true"}}}
	want := "gantry v1.4.0\nrevision 793d256c896f4fa75c8e2ddeb50b5b18a4c2a7bc (with uncommitted changes)\ntime     2026-12-04T04:43:58Z\ngo       go1.26.8 linux/amd64\n"
	if got := versionText(stamped); got != want {
		t.Errorf("versionText(stamped build) =\n%s\nwant\n%s", got, want)
	}
	bare := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}
	if got := versionText(bare); !strings.HasPrefix(got, "gantry (devel)\nrevision unknown: built without VCS information") {
		t.Errorf("versionText(no VCS) = %q, want it to say the revision is unknown and why", got)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, nil, &out, &out); err != nil || !strings.HasPrefix(out.String(), "gantry ") || !strings.Contains(out.String(), "\ngo       go1.") {
		t.Errorf("gantry version = %q, %v", out.String(), err)
	}
}
