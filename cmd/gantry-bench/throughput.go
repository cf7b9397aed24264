package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"
	"time"
)

// throughputCommand runs the throughput benchmark; see the usage.
func throughputCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("throughput", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := addCommon(fs, getenv, 1004)
	n := fs.Int("pipelines", 200, "pipelines to post, as fast as one client can")
	workers := fs.Int("workers", 2, "`gantry worker` processes")
	concurrency := fs.Int("concurrency", 4, "workers.concurrency of each worker process")
	containers := fs.Int("containers", 200, "containers of each engine-rate measurement")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *workers < 1 || *concurrency < 1 || *containers < 1 {
		return errors.New("--pipelines, --workers, --concurrency and --containers must be at least 1")
	}
	parallel := *workers * *concurrency
	e, err := newEnv(ctx, c, needs{busybox: true}, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	defer e.close(ctx)
	t, err := e.setupTiny(ctx, *concurrency, "")
	if err != nil {
		return err
	}
	defer t.gitlab.Close()
	roles := []string{"server"}
	for range *workers {
		roles = append(roles, "worker")
	}
	f, err := e.startFleet(ctx, t.config, t.url, roles...)
	if err != nil {
		return err
	}
	defer f.stop()

	fmt.Fprintf(stdout, "throughput: %d busybox pipelines (build: COPY + LABEL on busybox; one test container running `true`;\n"+
		"no release: pushed to branch %q) posted as fast as one client can to `gantry server`, run by %d `gantry worker`\n"+
		"processes of concurrency %d; against the engine's own rate: %d `busybox true` containers created, started,\n"+
		"waited for and removed through the Engine API, %d at a time, measured before and after the pipelines.\n",
		*n, tinyBranch, *workers, *concurrency, *containers, parallel)
	// The commits come first, so that posting is only posting.
	shas := make([]string, *n)
	for i := range shas {
		if shas[i], err = t.commit(ctx, i+1); err != nil {
			return err
		}
	}
	e.note("engine rate, before")
	before, beforeTook, err := e.containerRate(ctx, *containers, parallel)
	if err != nil {
		return err
	}
	e.note("posting %d pipelines", *n)
	ids := make([]int64, 0, *n)
	var first, posted time.Time
	for i, sha := range shas {
		d, err := t.push(ctx, sha)
		if err != nil {
			return fmt.Errorf("pipeline %d: %w", i+1, err)
		}
		if i == 0 {
			first = d.answered
		}
		posted = d.answered
		ids = append(ids, d.pipeline)
	}
	e.note("%d pipelines posted in %s; waiting for them", *n, secs(posted.Sub(first)))
	var done outcomes
	if err := t.drain(ctx, ids, &done, 30*time.Minute); err != nil {
		return fmt.Errorf("%w\n%s", err, f.logs())
	}
	wall := done.last.Sub(first)
	e.note("engine rate, after")
	after, afterTook, err := e.containerRate(ctx, *containers, parallel)
	if err != nil {
		return err
	}
	if err := f.stop(); err != nil {
		return err
	}
	e.note("the same work directly: %d pipelines' builds and tests, %d at a time", *n, parallel)
	directWall, err := runDirect(ctx, t, *n, parallel, getenv)
	if err != nil {
		return err
	}

	ppm := float64(*n) / wall.Minutes()
	dpm := float64(*n) / directWall.Minutes()
	cpm := (before + after) / 2
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tcount\twall\tper minute\t")
	fmt.Fprintf(tw, "engine: busybox true containers, before\t%d\t%s\t%.0f\t\n", *containers, secs(beforeTook), before)
	fmt.Fprintf(tw, "gantry: pipelines (first 202 → last job's end)\t%d\t%s\t%.0f\t\n", *n, secs(wall), ppm)
	fmt.Fprintf(tw, "engine: busybox true containers, after\t%d\t%s\t%.0f\t\n", *containers, secs(afterTook), after)
	fmt.Fprintf(tw, "direct: the same builds and tests through jobs.Docker\t%d\t%s\t%.0f\t\n", *n, secs(directWall), dpm)
	tw.Flush()
	fmt.Fprintf(stdout, "\nThe direct run makes the calls a worker makes (archive, jobs.Build, jobs.Test) for as many new\n"+
		"commits, as many at a time as the workers' slots, with no webhook, Redis, queue, log or status.\n")
	fmt.Fprintf(stdout, "\nEach pipeline is a build (archive fetch, two layer commits) plus one test container, so a pipeline\n"+
		"costs the engine more than one container: the ratio is the share of the engine's bare container rate\n"+
		"that gantry turns into whole pipelines.\n")
	var v verdicts
	v.figure("pipelines per minute", fmt.Sprintf("%.0f (%d in %s)", ppm, *n, secs(wall)))
	v.figure("engine containers per minute", fmt.Sprintf("%.0f (mean of %.0f before, %.0f after)", cpm, before, after))
	v.figure("pipelines/min ÷ containers/min", fmt.Sprintf("%.2f", ppm/cpm))
	v.figure("the same work done directly, per minute", fmt.Sprintf("%.0f (%d in %s)", dpm, *n, secs(directWall)))
	v.check("gantry ÷ direct (target ≥ 0.90)", fmt.Sprintf("%.2f", ppm/dpm), ppm/dpm >= 0.90)
	v.check("every pipeline succeeded", done.String(), done.states["success"] == *n)
	if done.failed != "" {
		fmt.Fprintf(stdout, "\nfirst pipeline that did not succeed: %s\n", done.failed)
	}
	return v.print(stdout)
}

// runDirect does the work of n tiny pipelines (new commits, so no build is cached) through
// jobs.Docker directly, parallel at a time, and returns the wall time from the first start to
// the last end.
func runDirect(ctx context.Context, t *tinySetup, n, parallel int, getenv func(string) string) (time.Duration, error) {
	d, err := newDirect(ctx, t.config, t.hook.path, t.hook.id, getenv)
	if err != nil {
		return 0, err
	}
	defer d.close()
	shas := make([]string, n)
	for i := range shas {
		if shas[i], err = t.commit(ctx, 1_000_000+i); err != nil {
			return 0, err
		}
	}
	next := make(chan int)
	errs := make(chan error, parallel)
	var wg sync.WaitGroup
	start := time.Now()
	for range parallel {
		wg.Go(func() {
			for i := range next {
				if _, err := d.run(ctx, 2_000_000+int64(i), shas[i], false); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range shas {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			return 0, err
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return time.Since(start), nil
}
