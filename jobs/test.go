package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"go.uber.org/zap"

	"github.com/gantry-ci/gantry/orchestrator"
)

// Limits applied when a test does not set its own, so that no test container runs unbounded.
const (
	defaultTestTimeout = time.Hour
	defaultTestMemory  = 2 << 30
	defaultTestPids    = 1024
)

// logGrace is how long the log stream may take to end once its container is gone, before it
// is closed from our side.
const logGrace = 5 * time.Second

// Test runs one test job in a fresh container of the test image, with no network unless asked,
// no privileges, no mounts and resource limits, and removes the container afterwards. A
// non-zero exit, an OOM kill and a timeout are results, not errors.
func (d *Docker) Test(ctx context.Context, req orchestrator.TestRequest, log io.Writer) (orchestrator.TestResult, error) {
	// Another network mode would share the host's or another container's namespace.
	if n := req.Test.Network; n != "" && n != "none" && n != "bridge" {
		return orchestrator.TestResult{}, projectFault("test %s: network %q is not allowed", req.Test.Name, n)
	}
	if err := d.ensureImage(ctx, req.ImageID, req.ImageRef, log); err != nil {
		return orchestrator.TestResult{}, fmt.Errorf("test %s: %w", req.Test.Name, err)
	}
	cfg, host := containerConfig(req, d.maxLog)
	// The create is not cancelled halfway: an engine that finishes creating after the client
	// gave up leaves a container nobody knows the ID of. A cancellation is looked at right after.
	createCtx, cancelCreate := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	created, err := d.cli.ContainerCreate(createCtx, client.ContainerCreateOptions{Config: cfg, HostConfig: host})
	cancelCreate()
	if err != nil {
		return orchestrator.TestResult{}, fmt.Errorf("test %s: create container: %w", req.Test.Name, err)
	}
	if ctx.Err() != nil {
		d.removeContainer(ctx, created.ID)
		return orchestrator.TestResult{}, fmt.Errorf("test %s: %w", req.Test.Name, ctx.Err())
	}
	for _, w := range created.Warnings {
		d.log.Warn("container created with a warning", zap.String("container", created.ID), zap.String("warning", w))
	}
	defer d.removeContainer(ctx, created.ID)

	timeout := cmp.Or(req.Test.Timeout, defaultTestTimeout)
	res, err := d.run(ctx, created.ID, timeout, log)
	if err != nil {
		return orchestrator.TestResult{}, fmt.Errorf("test %s: %w", req.Test.Name, err)
	}
	switch {
	case res.TimedOut:
		fmt.Fprintf(log, "exit %d after %.1fs (timed out after %s)\n", res.ExitCode, res.Duration.Seconds(), timeout)
	case res.OOMKilled:
		fmt.Fprintf(log, "exit %d after %.1fs (out of memory)\n", res.ExitCode, res.Duration.Seconds())
	default:
		fmt.Fprintf(log, "exit %d after %.1fs\n", res.ExitCode, res.Duration.Seconds())
	}
	// Read whether the test passed or not: a failing run's report is the one worth reading. A
	// report that cannot be read is said in the result, and does not fail the job.
	if req.Test.JUnit != "" {
		res.Report, res.ReportErr = d.testReport(ctx, created.ID, req.Test.JUnit)
	}
	return res, nil
}

// run starts the created container and follows it to its end. Its log stream has always ended
// when run returns, so that nothing writes to log afterwards and the removal loses no output.
func (d *Docker) run(ctx context.Context, id string, timeout time.Duration, log io.Writer) (orchestrator.TestResult, error) {
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Registered before the start: "next-exit" then sees this run's exit, where "not-running"
	// would answer at once for a container that is only created.
	wait := d.cli.ContainerWait(runCtx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	start := time.Now()
	if _, err := d.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		if ctx.Err() == nil && cerrdefs.IsInvalidArgument(err) {
			// The engine refuses to start a command that does not exist in the image.
			return orchestrator.TestResult{}, projectFault("start: %s", err)
		}
		return orchestrator.TestResult{}, fmt.Errorf("start: %w", err)
	}
	// Logs follow the job's context, not the timeout, so that a killed container's output
	// still drains to its end.
	logs, err := d.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		return orchestrator.TestResult{}, fmt.Errorf("logs: %w", err)
	}
	defer logs.Close()
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		capped := newCappedWriter(log, d.maxLog)
		if _, err := stdcopy.StdCopy(capped, capped, logs); err != nil && ctx.Err() == nil {
			d.log.Warn("container log stream broke", zap.String("container", id), zap.Error(err))
		}
	}()
	// Ends the log goroutine above on every path.
	finishLogs := func() {
		select {
		case <-logDone:
		case <-time.After(logGrace):
			logs.Close()
			<-logDone
		}
	}

	var res orchestrator.TestResult
	select {
	case w := <-wait.Result:
		res.Duration = time.Since(start)
		if w.Error != nil {
			d.kill(ctx, id)
			finishLogs()
			return res, fmt.Errorf("wait: %s", w.Error.Message)
		}
		res.ExitCode = int(w.StatusCode)
	case err := <-wait.Error:
		res.Duration = time.Since(start)
		d.kill(ctx, id)
		if ctx.Err() != nil {
			finishLogs()
			return res, ctx.Err()
		}
		if !errors.Is(runCtx.Err(), context.DeadlineExceeded) {
			finishLogs()
			return res, fmt.Errorf("wait: %w", err)
		}
		res.TimedOut = true
	}
	finishLogs()

	if res.TimedOut {
		// A kill is only signalled when the call returns; the exit code it causes comes with
		// the container's stop.
		waitCtx, cancel := context.WithTimeout(ctx, cleanupTimeout)
		defer cancel()
		stopped := d.cli.ContainerWait(waitCtx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
		select {
		case w := <-stopped.Result:
			res.ExitCode = int(w.StatusCode)
		case err := <-stopped.Error:
			return res, fmt.Errorf("wait for the kill: %w", err)
		}
	}
	// The OOM flag exists only until the container is removed.
	inspect, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return res, fmt.Errorf("inspect: %w", err)
	}
	if st := inspect.Container.State; st != nil {
		res.OOMKilled = st.OOMKilled
	}
	return res, nil
}

// kill stops a container hard. ContainerStop's signal option is newer than API 1.41 and the
// 20.10 engine ignores it, so a kill is the only stop that does not wait out a grace period.
func (d *Docker) kill(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, err := d.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"})
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) { // conflict: not running any more
		d.log.Warn("container not killed", zap.String("container", id), zap.Error(err))
	}
}

// containerConfig is the container a test job runs in: the test image with the test's command
// and environment, gantry's labels, and a host config without privileges, capabilities, mounts
// or (by default) network, within the test's limits. The engine keeps at most about two times
// maxLog of its output on disk.
func containerConfig(req orchestrator.TestRequest, maxLog int64) (*container.Config, *container.HostConfig) {
	t := req.Test
	vars := maps.Clone(req.Env)
	if vars == nil {
		vars = map[string]string{}
	}
	maps.Copy(vars, t.Env) // the project's own settings win
	env := make([]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, k+"="+vars[k])
	}
	cfg := &container.Config{
		Image: req.ImageID,
		Cmd:   slices.Clone(t.Command),
		Env:   env,
		Labels: map[string]string{
			LabelPipeline: strconv.FormatInt(req.PipelineID, 10),
			LabelJob:      orchestrator.TestJobPrefix + t.Name,
			LabelProject:  req.Project,
		},
	}
	memory := cmp.Or(t.Memory, defaultTestMemory)
	pids := cmp.Or(t.Pids, defaultTestPids)
	host := &container.HostConfig{
		NetworkMode: container.NetworkMode(cmp.Or(t.Network, "none")),
		Privileged:  false,
		CapDrop:     []string{"ALL"},
		SecurityOpt: []string{"no-new-privileges"},
		// The job log stops at maxLog (see cappedWriter), but the engine writes everything the
		// container prints to its own log file first, which would fill the daemon's disk. One
		// rotation keeps the part the follower has not read yet. json-file by name: the
		// engine's default driver may take other options, and gantry reads the logs back.
		LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{
			"max-size": strconv.FormatInt(maxLog, 10), "max-file": "2",
		}},
		Resources: container.Resources{
			Memory: memory,
			// Equal to Memory: no swap, so a test that outgrows its limit is OOM-killed
			// instead of slowing the host down.
			MemorySwap: memory,
			NanoCPUs:   int64(t.CPUs * 1e9),
			PidsLimit:  &pids,
		},
	}
	return cfg, host
}
