package jobs

import (
	"archive/tar"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"

	"github.com/gantry-ci/gantry/orchestrator"
)

// Build builds a pipeline's test image, <image>:test-<pipeline id>, from the source archive
// with the classic builder. When the project declares a base tier, the base image is built
// first unless an image for the same content hash exists, and is handed to the app build as
// build-arg BASE_IMAGE; like the app's Dockerfile, the base Dockerfile and inputs are paths in
// the build context. A project with Generate and no Dockerfile is built from generated base and
// app Dockerfiles (see generatePython). A merge request from a fork pushes nothing and tags
// its images fork-… (see forkTagPrefix). Failures caused by the project wrap
// orchestrator.ErrProjectFault.
func (d *Docker) Build(ctx context.Context, req orchestrator.BuildRequest, log io.Writer) (orchestrator.BuildResult, error) {
	p := req.Project
	limits, err := limitsOf(p.Build)
	if err != nil {
		return orchestrator.BuildResult{}, err
	}
	bc, err := readContext(req.Source, p.Build.Context, p.Base, d.maxContext)
	if err != nil {
		return orchestrator.BuildResult{}, fmt.Errorf("build: %w", err)
	}
	// Checked here as well as by the engine, to name the file the way the project configured it.
	dockerfile := relPath(cmp.Or(p.Build.Dockerfile, "Dockerfile"))
	if typ, ok := bc.names[dockerfile]; p.Generate != nil && (!ok || typ == tar.TypeDir) {
		if p, err = generatePython(d.templates, p, dockerfile, bc, log); err != nil {
			return orchestrator.BuildResult{}, err
		}
		dockerfile = p.Build.Dockerfile
	}
	if typ, ok := bc.names[dockerfile]; !ok || typ == tar.TypeDir {
		return orchestrator.BuildResult{}, projectFault("build: Dockerfile %q not found in build context %q",
			dockerfile, relPath(p.Build.Context))
	}

	if n, err := bc.applyDockerignore(dockerfile); err != nil {
		return orchestrator.BuildResult{}, fmt.Errorf("build: %w", err)
	} else if n > 0 {
		fmt.Fprintf(log, ".dockerignore left %d entries out of the build context\n", n)
	}

	fork := req.Trigger.Fork
	res := orchestrator.BuildResult{ImageRef: p.Image + ":" + testTag(req.PipelineID, fork)}
	args := buildArgs(p.Build.Args)
	pull := p.Build.PullAlways
	if p.Base != nil {
		if res.BaseImage, res.BaseBuilt, err = d.buildBase(ctx, p, bc, fork, limits, log); err != nil {
			return orchestrator.BuildResult{}, err
		}
		args["BASE_IMAGE"] = &res.BaseImage
		// The base tier pulled already (or not) as the project asked; the base image itself
		// exists only on this engine, so pulling it would fail.
		pull = false
	}

	labels := map[string]string{
		"org.opencontainers.image.revision": req.Trigger.SHA,
		LabelPipeline:                       strconv.FormatInt(req.PipelineID, 10),
		LabelProject:                        p.Path,
	}
	// An empty source label says nothing.
	if req.Trigger.ProjectURL != "" {
		labels["org.opencontainers.image.source"] = req.Trigger.ProjectURL
	}
	opts := client.ImageBuildOptions{
		Tags: []string{res.ImageRef}, Dockerfile: dockerfile, Target: p.Build.Target,
		PullParent: pull, BuildArgs: args, Labels: labels,
	}
	buildCtx := &bc.tar
	// An appended LABEL reaches only the last stage, so with a target the engine sets them.
	if p.Build.Target == "" {
		if buildCtx, err = withLabels(&bc.tar, dockerfile, labels); err != nil {
			return orchestrator.BuildResult{}, err
		}
		if dockerfile == generatedApp {
			if buildCtx, err = withoutGenerated(buildCtx); err != nil {
				return orchestrator.BuildResult{}, err
			}
		}
		opts.Dockerfile, opts.Labels = labelDockerfile, nil
	}
	start := time.Now()
	fmt.Fprintf(log, "building %s\n", res.ImageRef)
	res.ImageID, err = d.imageBuild(ctx, buildCtx, opts, limits, log)
	if err != nil {
		return orchestrator.BuildResult{}, err
	}
	fmt.Fprintf(log, "built %s (%s) in %.1fs\n", res.ImageRef, res.ImageID, time.Since(start).Seconds())
	switch {
	case d.share && fork:
		fmt.Fprintf(log, "test image %s not shared: a fork's images never go to the registry, so its tests need this engine\n", res.ImageRef)
	case d.share:
		if err := d.shareTestImage(ctx, res.ImageRef, log); err != nil {
			return orchestrator.BuildResult{}, err
		}
	}
	return res, nil
}

// buildBase returns the base tier's reference, <base image>:<content hash> with the full
// SHA-256 of baseContext (64 hex digits: a shorter tag would let two different bases collide,
// and the tag is all a reuse is decided on), and whether it had to be built now. A fork's
// build may reuse the trusted base but builds its own under a fork- tag, kept on this engine
// (see forkTagPrefix).
func (d *Docker) buildBase(ctx context.Context, p orchestrator.Project, bc *buildContext, fork bool, limits buildLimits, log io.Writer) (string, bool, error) {
	baseTar, hash, err := bc.baseContext(p.Base, p.Build.Args)
	if err != nil {
		return "", false, fmt.Errorf("build: %w", err)
	}
	trusted := p.Base.Image + ":" + baseTag(hash, false)
	ref := p.Base.Image + ":" + baseTag(hash, fork)
	// A trusted build looks up only the trusted tag; a fork also its own, after the trusted one.
	for _, r := range slices.Compact([]string{trusted, ref}) {
		_, err = d.cli.ImageInspect(ctx, r)
		if err == nil {
			fmt.Fprintf(log, "base image %s reused\n", r)
			return r, false, nil
		}
		if !cerrdefs.IsNotFound(err) {
			return "", false, fmt.Errorf("build: inspect base image %s: %w", r, err)
		}
	}
	// Another worker, maybe on another engine, may have built it already: the registry has it.
	// Only a trusted build ever put it there, so a fork may pull it as well.
	if d.pullBase(ctx, trusted, log) {
		return trusted, false, nil
	}
	start := time.Now()
	fmt.Fprintf(log, "building base image %s\n", ref)
	_, err = d.imageBuild(ctx, baseTar, client.ImageBuildOptions{
		Tags:       []string{ref},
		Dockerfile: relPath(p.Base.Dockerfile),
		PullParent: p.Build.PullAlways,
		BuildArgs:  buildArgs(p.Build.Args),
		// No pipeline label: the base outlives the pipeline that built it.
		Labels: map[string]string{LabelProject: p.Path},
	}, limits, log)
	if err != nil {
		return "", false, err
	}
	fmt.Fprintf(log, "built base image %s in %.1fs\n", ref, time.Since(start).Seconds())
	if fork {
		fmt.Fprintf(log, "base image %s not pushed: built from a fork, it stays on this engine\n", ref)
	} else {
		d.pushBase(ctx, ref, log)
	}
	return ref, true, nil
}

// imageBuild runs one classic-builder build within limits and decodes its stream to the end,
// because the engine answers 200 and reports a failing step only inside the stream.
func (d *Docker) imageBuild(ctx context.Context, buildContext io.Reader, opts client.ImageBuildOptions, limits buildLimits, log io.Writer) (string, error) {
	// BuildKit over /build works, but its log is protobuf inside aux messages.
	opts.Version = build.BuilderV1
	limits.apply(&opts)
	opts.Remove, opts.ForceRemove = true, true
	resp, err := d.cli.ImageBuild(ctx, buildContext, opts)
	if err != nil {
		return "", classifyBuildError(ctx, err)
	}
	defer resp.Body.Close()
	// The steps' output is the project's to choose, and goes to the job log within a cap.
	log = newCappedWriter(log, d.maxLog)
	pr := newProgress(log)
	dec := json.NewDecoder(resp.Body)
	var id string
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			if ctx.Err() != nil {
				return "", fmt.Errorf("build: %w", ctx.Err())
			}
			return "", fmt.Errorf("build: reading build stream: %w", err)
		}
		if m.Error != nil {
			// A failing RUN, or a FROM image that could not be pulled.
			return "", projectFault("build: %s", limits.explainKill(strings.TrimSpace(m.Error.Message)))
		}
		if m.Aux != nil {
			var aux struct{ ID string }
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
		if m.Stream != "" {
			io.WriteString(log, m.Stream)
		}
		pr.message(m)
	}
	if id == "" {
		return "", errors.New("build: stream ended without an image ID")
	}
	return id, nil
}

// classifyBuildError tells the errors the engine gives for the project's Dockerfile (one that
// does not parse, or is missing) from the engine or the connection failing.
func classifyBuildError(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("build: %w", ctx.Err())
	case client.IsErrConnectionFailed(err):
		return fmt.Errorf("build: %w", err)
	case cerrdefs.IsInvalidArgument(err), cerrdefs.IsNotFound(err):
		return projectFault("build: %s", err)
	}
	return fmt.Errorf("build: %w", err)
}

// buildArgs converts the project's args to the engine's form, where nil means "unset".
func buildArgs(args map[string]string) map[string]*string {
	out := make(map[string]*string, len(args)+1)
	for k, v := range args {
		out[k] = &v
	}
	return out
}
