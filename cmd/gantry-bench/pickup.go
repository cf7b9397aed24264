package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// The targets for the pickup latency; GitLab Runner polls for jobs every 3 s.
const (
	maxPickupP50 = 20 * time.Millisecond
	maxPickupP99 = 100 * time.Millisecond
)

// pickupCommand runs the pickup benchmark; see the usage.
func pickupCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pickup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := addCommon(fs, getenv, 1002)
	n := fs.Int("pipelines", 200, "pipelines to post, one at a time")
	inflight := fs.Int("inflight", 2, "post the next pipeline only while fewer than this many are unfinished")
	concurrency := fs.Int("concurrency", 4, "the worker's workers.concurrency")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *inflight < 1 || *concurrency < 1 {
		return errors.New("--pipelines, --inflight and --concurrency must be at least 1")
	}
	e, err := newEnv(ctx, c, needs{busybox: true}, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	defer e.close(ctx)
	proxy, err := startEngineProxy(e.dir, getenv("DOCKER_HOST"))
	if err != nil {
		return err
	}
	defer proxy.stop() // after the fleet's stop below: the workers' streams end first
	t, err := e.setupTiny(ctx, *concurrency, proxy.host)
	if err != nil {
		return err
	}
	defer t.gitlab.Close()
	f, err := e.startFleet(ctx, t.config, t.url, "server", "worker")
	if err != nil {
		return err
	}
	defer f.stop()

	fmt.Fprintf(stdout, "pickup: webhook 202 read by the client → the pipeline's build request reaching the engine (a logging\n"+
		"proxy on the worker's docker.host), %d busybox pipelines, `gantry server` + 1 `gantry worker` (concurrency %d);\n"+
		"each posted once the last one's build request arrived and fewer than %d pipelines are unfinished, so a\n"+
		"worker slot is free: queueing behind busy workers is throughput's subject, not this one's.\n", *n, *concurrency, *inflight)
	e.note("posting %d pipelines", *n)
	var pickups, answers []time.Duration
	var unfinished []int64
	var done outcomes
	for i := 1; i <= *n; i++ {
		for len(unfinished) >= *inflight {
			if unfinished, err = t.reap(ctx, unfinished, &done); err != nil {
				return err
			}
			time.Sleep(20 * time.Millisecond)
		}
		sha, err := t.commit(ctx, i)
		if err != nil {
			return err
		}
		d, err := t.push(ctx, sha)
		if err != nil {
			return fmt.Errorf("pipeline %d: %w", i, err)
		}
		at, err := proxy.waitBuild(ctx, d.pipeline, time.Minute)
		if err != nil {
			return fmt.Errorf("%w\n%s", err, f.logs())
		}
		pickups, answers = append(pickups, at.Sub(d.answered)), append(answers, d.answered.Sub(d.sent))
		unfinished = append(unfinished, d.pipeline)
		if i%50 == 0 && i < *n {
			e.note("%d pipelines posted, pickup p50 so far %s", i, ms(percentile(pickups, 50)))
		}
	}
	if err := t.drain(ctx, unfinished, &done, 5*time.Minute); err != nil {
		return err
	}
	if err := f.stop(); err != nil {
		return err
	}

	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tn\tmin\tp50\tp90\tp99\tmax\t")
	for _, row := range []struct {
		name string
		ds   []time.Duration
	}{{"pickup (202 read → build request at the engine)", pickups}, {"webhook answer (sent → 202 read)", answers}} {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", row.name, len(row.ds), ms(percentile(row.ds, 0)),
			ms(percentile(row.ds, 50)), ms(percentile(row.ds, 90)), ms(percentile(row.ds, 99)), ms(percentile(row.ds, 100)))
	}
	tw.Flush()
	p50, p99 := percentile(pickups, 50), percentile(pickups, 99)
	var v verdicts
	v.check("pickup p50 ≤ 20ms", fmt.Sprintf("%s (%d pipelines)", ms(p50), len(pickups)), p50 <= maxPickupP50)
	v.check("pickup p99 ≤ 100ms", fmt.Sprintf("%s (p90 %s, max %s)", ms(p99), ms(percentile(pickups, 90)), ms(percentile(pickups, 100))), p99 <= maxPickupP99)
	v.check("every pipeline succeeded", done.String(), done.states["success"] == *n)
	if done.failed != "" {
		fmt.Fprintf(stdout, "\nfirst pipeline that did not succeed: %s\n", done.failed)
	}
	return v.print(stdout)
}
