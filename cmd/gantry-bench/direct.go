package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/gantry-ci/gantry/configs"
	"github.com/gantry-ci/gantry/gitlab"
	"github.com/gantry-ci/gantry/internal/wire"
	"github.com/gantry-ci/gantry/jobs"
	"github.com/gantry-ci/gantry/orchestrator"
)

// direct issues a pipeline's engine work without gantry around it: the archive from the GitLab
// double, then jobs.Build, every test through jobs.Test at once, and jobs.Release — the calls
// a gantry worker makes, with the same project and the same logins, read from the same config
// file, but with no webhook, Redis, queue, job log or commit status in between.
type direct struct {
	docker    *jobs.Docker
	source    *gitlab.Client
	project   orchestrator.Project
	projectID int64
}

// newDirect reads the project at path from the config gantry runs with.
func newDirect(ctx context.Context, configPath, path string, projectID int64, getenv func(string) string) (*direct, error) {
	cfg, err := configs.Load(configPath, getenv)
	if err != nil {
		return nil, err
	}
	p, ok := cfg.Project(path)
	if !ok {
		return nil, fmt.Errorf("project %s is not in %s", path, configPath)
	}
	var logins []jobs.Registry
	for _, r := range cfg.Registries {
		logins = append(logins, jobs.Registry{Host: r.Host, Username: r.Username, Password: r.Password.Value()})
	}
	docker, err := jobs.Connect(ctx, jobs.Options{Host: cfg.Docker.Host, Registries: logins, Templates: configs.Templates})
	if err != nil {
		return nil, err
	}
	source, err := gitlab.New(cfg.GitLab.URL, cfg.GitLab.Token.Value(), zap.NewNop())
	if err != nil {
		docker.Close()
		return nil, err
	}
	return &direct{docker: docker, source: source, project: wire.Project(p), projectID: projectID}, nil
}

func (d *direct) close() { d.docker.Close() }

// directTimes is how long a direct pipeline took, and its steps.
type directTimes struct {
	total, build, tests, release time.Duration
}

func (t directTimes) String() string {
	return fmt.Sprintf("archive+build %.2fs, tests %.2fs, release %.2fs", t.build.Seconds(), t.tests.Seconds(), t.release.Seconds())
}

// run does the work of one master pipeline for sha under pipeline id id, its release only when
// release is set, and returns how long it took. Logs go nowhere: keeping them is part of what
// gantry adds.
func (d *direct) run(ctx context.Context, id int64, sha string, release bool) (directTimes, error) {
	trig := orchestrator.Trigger{Project: d.project.Path, ProjectID: d.projectID, Kind: orchestrator.TriggerPush,
		ProjectURL: "https://gitlab.example.com/" + d.project.Path, Ref: "master", SHA: sha}
	var t directTimes
	start := time.Now()
	src, err := d.source.Archive(ctx, d.projectID, sha)
	if err != nil {
		return directTimes{}, fmt.Errorf("direct: archive: %w", err)
	}
	built, err := d.docker.Build(ctx, orchestrator.BuildRequest{PipelineID: id, Project: d.project, Trigger: trig, Source: src}, io.Discard)
	src.Close()
	if err != nil {
		return directTimes{}, fmt.Errorf("direct: %w", err)
	}
	t.build = time.Since(start)
	errs := make([]error, len(d.project.Tests))
	var wg sync.WaitGroup
	for i, spec := range d.project.Tests {
		wg.Go(func() {
			res, err := d.docker.Test(ctx, orchestrator.TestRequest{PipelineID: id, Project: d.project.Path, ImageID: built.ImageID, Test: spec}, io.Discard)
			if err == nil && res.ExitCode != 0 {
				err = fmt.Errorf("exit %d", res.ExitCode)
			}
			if err != nil {
				errs[i] = fmt.Errorf("direct: test %s: %w", spec.Name, err)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return directTimes{}, err
		}
	}
	t.tests = time.Since(start) - t.build
	if !release {
		t.total = time.Since(start)
		return t, nil
	}
	tags, err := orchestrator.ReleaseTags(d.project.Release.Tags, &orchestrator.Pipeline{ID: id, Trigger: trig})
	if err != nil {
		return directTimes{}, fmt.Errorf("direct: release tags: %w", err)
	}
	_, err = d.docker.Release(ctx, orchestrator.ReleaseRequest{PipelineID: id, ImageID: built.ImageID, Repository: d.project.Image, Tags: tags}, io.Discard)
	if err != nil {
		return directTimes{}, fmt.Errorf("direct: %w", err)
	}
	t.total = time.Since(start)
	t.release = t.total - t.build - t.tests
	return t, nil
}
