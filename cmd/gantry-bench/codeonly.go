package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// codeonlyCommand runs the code-only benchmark; see the usage.
func codeonlyCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("codeonly", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := addCommon(fs, getenv, 1003)
	rounds := fs.Int("rounds", 3, "cold/code-only pairs")
	sample := fs.String("sample", "testdata/sample", "the sample project's directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rounds < 1 {
		return errors.New("--rounds must be at least 1")
	}
	requirements, err := os.ReadFile(filepath.Join(*sample, "requirements.txt"))
	if err != nil {
		return fmt.Errorf("the sample project: %w", err)
	}
	e, err := newEnv(ctx, c, needs{registry: true, python: true}, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	defer e.close(ctx)
	// One project per round, each with a base image repository of its own, so that every cold
	// pipeline meets an empty repository as a new project would.
	projects := map[string]string{}
	for i := 1; i <= *rounds; i++ {
		projects[fmt.Sprintf("%s/sample-%d", e.ns, i)] = fmt.Sprintf("%s/%s/sample-base-%d", e.registry.host, e.ns, i)
	}
	s, hooks, err := e.setupSample(ctx, *sample, projects)
	if err != nil {
		return err
	}
	defer s.gitlab.Close()
	f, err := e.startFleet(ctx, s.config, s.url, "serve")
	if err != nil {
		return err
	}
	defer f.stop()

	fmt.Fprintf(stdout, "codeonly: %s's master pipeline through `gantry serve`, cold (new dependencies: the base is built,\n"+
		"pushed to a new repository, the app built on it) and then after a code-only change (base reused), %d rounds.\n",
		*sample, *rounds)
	var coldWalls, coldBuilds, warmWalls, warmBuilds []time.Duration
	var lines []string
	reused := true
	for i := 1; i <= *rounds; i++ {
		hp := hooks[fmt.Sprintf("%s/sample-%d", e.ns, i)]
		// A comment is enough to change the base's content hash and the layer that installs the
		// dependencies, so the install really runs.
		cold, err := s.repo.commit(ctx, fmt.Sprintf("round %d: dependencies", i), map[string]string{
			"requirements.txt": string(requirements) + fmt.Sprintf("# bench round %d %s\n", i, randomHex(4))})
		if err != nil {
			return err
		}
		e.note("round %d: cold pipeline of %s", i, cold[:8])
		cw, cp, err := runPipeline(ctx, s.api, hp, zeroSHA, cold, "dependencies")
		if err != nil {
			return fmt.Errorf("round %d, cold: %w\n%s", i, err, f.logs())
		}
		if b := cp.job("build"); strings.Contains(b.Description, "base reused") {
			return fmt.Errorf("round %d: the cold build reused a base (%q): it was not cold", i, b.Description)
		}
		warm, err := s.repo.commit(ctx, fmt.Sprintf("round %d: code", i),
			map[string]string{"app/version.py": fmt.Sprintf("VERSION = '0.%d'\n", i)})
		if err != nil {
			return err
		}
		e.note("round %d: code-only pipeline of %s", i, warm[:8])
		ww, wp, err := runPipeline(ctx, s.api, hp, cold, warm, "code")
		if err != nil {
			return fmt.Errorf("round %d, code-only: %w\n%s", i, err, f.logs())
		}
		wb := wp.job("build")
		reused = reused && strings.Contains(wb.Description, "base reused")
		cb := cp.job("build").duration()
		coldWalls, coldBuilds = append(coldWalls, cw), append(coldBuilds, cb)
		warmWalls, warmBuilds = append(warmWalls, ww), append(warmBuilds, wb.duration())
		lines = append(lines, fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%.1f×\t%s\t", i, secs(cw), secs(cb), secs(ww),
			secs(wb.duration()), cw.Seconds()/ww.Seconds(), wb.Description))
	}
	if err := f.stop(); err != nil {
		return err
	}

	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "round\tcold wall\tcold build\tcode-only wall\tcode-only build\tcold/code-only\tcode-only build says\t")
	for _, l := range lines {
		fmt.Fprintln(tw, l)
	}
	mcw, mww := medianDuration(coldWalls), medianDuration(warmWalls)
	fmt.Fprintf(tw, "median\t%s\t%s\t%s\t%s\t%.1f×\t\t\n", secs(mcw), secs(medianDuration(coldBuilds)), secs(mww),
		secs(medianDuration(warmBuilds)), mcw.Seconds()/mww.Seconds())
	tw.Flush()
	fmt.Fprintln(stdout, "\nwall: webhook sent → the pipeline's last job finished; build: the build job's own run time.")
	var v verdicts
	v.figure("cold pipeline wall time (median)", fmt.Sprintf("%s, build job %s", secs(mcw), secs(medianDuration(coldBuilds))))
	v.figure("code-only pipeline wall time (median)", fmt.Sprintf("%s, build job %s", secs(mww), secs(medianDuration(warmBuilds))))
	v.check("every code-only build reuses the base", fmt.Sprintf("%d rounds", *rounds), reused)
	v.check("code-only pipeline faster than cold (medians)", fmt.Sprintf("%.1f× faster", mcw.Seconds()/mww.Seconds()), mww < mcw)
	return v.print(stdout)
}
