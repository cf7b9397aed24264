package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
)

// maxOverhead is the target: gantry's master pipeline at most 10% slower than the same
// engine work issued directly.
const maxOverhead = 1.10

// sampleSetup is the sample project served by the GitLab double and configured in a gantry
// config written to the run's directory; overhead and codeonly share it.
type sampleSetup struct {
	gitlab *gitlabtest.Server
	repo   *repo
	first  string // SHA of the repository's first commit
	config string // path of the config file
	url    string // gantry's base URL
	api    *gantryAPI
	image  string // app image repository
}

// setupSample creates the repository from dir, starts the GitLab double and writes a config
// with one sample project per entry of projects (path → base image repository). The caller
// closes s.gitlab.
func (e *benchEnv) setupSample(ctx context.Context, dir string, projects map[string]string) (*sampleSetup, map[string]hookProject, error) {
	r, first, err := newRepo(ctx, filepath.Join(e.dir, "sample"), dir, nil)
	if err != nil {
		return nil, nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, nil, err
	}
	s := &sampleSetup{gitlab: gitlabtest.Start(), repo: r, first: first, url: "http://" + addr,
		image: e.registry.host + "/" + e.ns + "/sample"}
	cfg := gantryConfig{listen: addr, redisURL: e.redisURL, gitlabURL: s.gitlab.URL, gitlabToken: s.gitlab.Token,
		apiToken: randomHex(16), concurrency: 4, registry: &e.registry}
	hooks := map[string]hookProject{}
	for path, base := range projects {
		secret := randomHex(12)
		proj := s.gitlab.AddProject(path, r.dir)
		hooks[path] = hookProject{id: proj.ID, path: path, secret: secret}
		cfg.projects = append(cfg.projects, sampleProject(path, secret, s.image, base, e.python))
	}
	if s.config, err = cfg.write(e.dir); err != nil {
		s.gitlab.Close()
		return nil, nil, err
	}
	s.api = newGantryAPI(s.url, cfg.apiToken)
	return s, hooks, nil
}

// runPipeline pushes sha to master and waits for its pipeline, which must succeed. Its wall
// time runs from the moment the hook is sent to the end of the last job.
func runPipeline(ctx context.Context, api *gantryAPI, p hookProject, before, sha, message string) (time.Duration, pipelineView, error) {
	d, err := api.push(ctx, p, "master", before, sha, message)
	if err != nil {
		return 0, pipelineView{}, err
	}
	pl, err := api.wait(ctx, d.pipeline, 50*time.Millisecond, 10*time.Minute)
	if err != nil {
		return 0, pl, err
	}
	if pl.State != "success" {
		return 0, pl, errors.New(pl.summary())
	}
	return pl.finished().Sub(d.sent), pl, nil
}

// overheadCommand runs the overhead benchmark; see the usage.
func overheadCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("overhead", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := addCommon(fs, getenv, 1001)
	rounds := fs.Int("rounds", 5, "gantry/direct pairs to measure, after one warm-up pipeline")
	sample := fs.String("sample", "testdata/sample", "the sample project's directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rounds < 1 {
		return errors.New("--rounds must be at least 1")
	}
	e, err := newEnv(ctx, c, needs{registry: true, python: true}, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	defer e.close(ctx)
	path := e.ns + "/sample"
	s, hooks, err := e.setupSample(ctx, *sample, map[string]string{path: e.registry.host + "/" + e.ns + "/sample-base"})
	if err != nil {
		return err
	}
	defer s.gitlab.Close()
	hp := hooks[path]
	f, err := e.startFleet(ctx, s.config, s.url, "serve")
	if err != nil {
		return err
	}
	defer f.stop()
	d, err := newDirect(ctx, s.config, path, hp.id, getenv)
	if err != nil {
		return err
	}
	defer d.close()

	fmt.Fprintf(stdout, "overhead: %s's master pipeline (build with the base reused, tests unit+lint at once, release to %s)\n"+
		"through `gantry serve` (concurrency 4) against the same jobs.Build/Test/Release calls made directly, %d rounds.\n",
		*sample, e.registry.host, *rounds)
	e.note("warm-up: a gantry pipeline builds and pushes the base image, and the first release")
	warm, _, err := runPipeline(ctx, s.api, hp, zeroSHA, s.first, "initial commit")
	if err != nil {
		return fmt.Errorf("warm-up: %w\n%s", err, f.logs())
	}
	fmt.Fprintf(stdout, "warm-up pipeline: %s (not counted)\n", secs(warm))

	var viaGantry, viaDirect, gaps []time.Duration
	var ratios []float64
	var lines []string
	before := s.first
	for i := 1; i <= *rounds; i++ {
		var g, gap time.Duration
		var dt directTimes
		var jobsLine string
		// The order alternates, so that neither side always runs on a machine the other just warmed.
		for _, side := range sides(i) {
			sha, err := s.repo.commit(ctx, fmt.Sprintf("round %d, %s", i, side),
				map[string]string{"app/version.py": fmt.Sprintf("VERSION = '0.%d-%s'\n", i, side)})
			if err != nil {
				return err
			}
			e.note("round %d: %s pipeline of %s", i, side, sha[:8])
			if side == "gantry" {
				var p pipelineView
				if g, p, err = runPipeline(ctx, s.api, hp, before, sha, "round"); err != nil {
					return fmt.Errorf("round %d: %w\n%s", i, err, f.logs())
				}
				if b := p.job("build"); !strings.Contains(b.Description, "base reused") {
					return fmt.Errorf("round %d: build %q did not reuse the base, the rounds would not compare", i, b.Description)
				}
				jobsLine, gap = jobDurations(p), outsideJobs(p, g)
			} else if dt, err = d.run(ctx, 1_000_000+int64(i), sha, true); err != nil {
				return fmt.Errorf("round %d: %w", i, err)
			}
			before = sha
		}
		viaGantry, viaDirect, gaps = append(viaGantry, g), append(viaDirect, dt.total), append(gaps, gap)
		ratios = append(ratios, g.Seconds()/dt.total.Seconds())
		lines = append(lines, fmt.Sprintf("%d\t%s\t%s\t%.3f\t%s\t%s\t%s\t", i, secs(g), secs(dt.total), ratios[i-1], ms(gap), jobsLine, dt))
	}
	if err := f.stop(); err != nil {
		return err
	}

	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "round\tgantry\tdirect\tratio\toutside jobs\tgantry's jobs\tdirect's steps\t")
	for _, l := range lines {
		fmt.Fprintln(tw, l)
	}
	mg, md := medianDuration(viaGantry), medianDuration(viaDirect)
	ratio := mg.Seconds() / md.Seconds()
	fmt.Fprintf(tw, "median\t%s\t%s\t%.3f\t%s\t\t\t\n", secs(mg), secs(md), ratio, ms(medianDuration(gaps)))
	tw.Flush()
	fmt.Fprintln(stdout, "\noutside jobs: gantry's wall time less its build, longest test and release jobs — the time the\n"+
		"webhook, the queue and the hand-overs between jobs add on the pipeline's critical path.")
	var v verdicts
	v.check("gantry/direct ≤ 1.10 (medians)", fmt.Sprintf("%.3f (%s / %s, %d rounds)", ratio, secs(mg), secs(md), *rounds), ratio <= maxOverhead)
	v.figure("median of the rounds' own ratios", fmt.Sprintf("%.3f", median(ratios)))
	v.figure("gantry's time outside jobs (median)", ms(medianDuration(gaps)))
	return v.print(stdout)
}

// sides is the order of round i: gantry first in odd rounds, the direct path first in even ones.
func sides(i int) []string {
	if i%2 == 1 {
		return []string{"gantry", "direct"}
	}
	return []string{"direct", "gantry"}
}

// outsideJobs is the part of a pipeline's wall time spent in none of the jobs on its critical
// path: build, the longest test, release.
func outsideJobs(p pipelineView, wall time.Duration) time.Duration {
	var longest time.Duration
	for _, j := range p.Jobs {
		if strings.HasPrefix(j.Name, "test/") {
			longest = max(longest, j.duration())
		}
	}
	return wall - p.job("build").duration() - longest - p.job("release").duration()
}

// jobDurations lists a pipeline's jobs with their run times, e.g. "build 0.52s, test/unit 0.81s".
func jobDurations(p pipelineView) string {
	var parts []string
	for _, j := range p.Jobs {
		parts = append(parts, fmt.Sprintf("%s %.2fs", j.Name, j.duration().Seconds()))
	}
	return strings.Join(parts, ", ")
}
