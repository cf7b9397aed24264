package jobs

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/gantry-ci/gantry/orchestrator"
)

func TestContainerConfig(t *testing.T) {
	t.Parallel()
	pids := int64(64)
	defaultPids := int64(defaultTestPids)
	tests := []struct {
		name     string
		req      orchestrator.TestRequest
		wantCfg  *container.Config
		wantHost *container.HostConfig
	}{{
		name: "everything set",
		req: orchestrator.TestRequest{PipelineID: 42, Project: "group/app", ImageID: "sha256:abc",
			Test: orchestrator.TestSpec{Name: "unit", Command: []string{"python", "-m", "pytest"},
				Env:    map[string]string{"B": "2", "A": "1"},
				Memory: 256 << 20, CPUs: 1.5, Pids: 64, Network: "bridge", Timeout: time.Minute}},
		wantCfg: &container.Config{Image: "sha256:abc", Cmd: []string{"python", "-m", "pytest"},
			Env:    []string{"A=1", "B=2"},
			Labels: map[string]string{"gantry.pipeline": "42", "gantry.job": "test/unit", "gantry.project": "group/app"}},
		wantHost: &container.HostConfig{NetworkMode: "bridge", CapDrop: []string{"ALL"},
			SecurityOpt: []string{"no-new-privileges"},
			LogConfig:   container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1048576", "max-file": "2"}},
			Resources:   container.Resources{Memory: 256 << 20, MemorySwap: 256 << 20, NanoCPUs: 1.5e9, PidsLimit: &pids}},
	}, {
		name: "defaults",
		req:  orchestrator.TestRequest{PipelineID: 7, Project: "p", ImageID: "sha256:def", Test: orchestrator.TestSpec{Name: "lint"}},
		wantCfg: &container.Config{Image: "sha256:def", Env: []string{},
			Labels: map[string]string{"gantry.pipeline": "7", "gantry.job": "test/lint", "gantry.project": "p"}},
		wantHost: &container.HostConfig{NetworkMode: "none", CapDrop: []string{"ALL"},
			SecurityOpt: []string{"no-new-privileges"},
			LogConfig:   container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1048576", "max-file": "2"}},
			Resources:   container.Resources{Memory: defaultTestMemory, MemorySwap: defaultTestMemory, PidsLimit: &defaultPids}},
	}}
	for _, tt := range tests {
		cfg, host := containerConfig(tt.req, 1<<20)
		if diff := cmp.Diff(tt.wantCfg, cfg); diff != "" {
			t.Errorf("containerConfig(%s) config (-want +got):\n%s", tt.name, diff)
		}
		if diff := cmp.Diff(tt.wantHost, host); diff != "" {
			t.Errorf("containerConfig(%s) host config (-want +got):\n%s", tt.name, diff)
		}
	}
}

// testRun is the outcome of one Test call.
type testRun struct {
	res orchestrator.TestResult
	log string
	err error
}

// runTest runs spec in a container of image, as pipeline b.pipeline.
func (b *testBundle) runTest(t *testing.T, image string, spec orchestrator.TestSpec) testRun {
	t.Helper()
	return b.runTestCtx(t.Context(), image, spec)
}

func (b *testBundle) runTestCtx(ctx context.Context, image string, spec orchestrator.TestSpec) testRun {
	var log bytes.Buffer
	res, err := b.d.Test(ctx, orchestrator.TestRequest{
		PipelineID: b.pipeline, Project: "gantry-tests/" + b.image, ImageID: image, Test: spec,
	}, &log)
	return testRun{res, log.String(), err}
}

// containers lists the test's containers that are left.
func (b *testBundle) containers(t *testing.T) []string {
	t.Helper()
	return b.jobContainers(t, "")
}

// jobContainers lists the test's containers of one test job ("" for all). A job's own is
// found by its job label: other containers of the pipeline may be listed beside it, such as a
// build's intermediate ones, which carry the pipeline label from the image.
func (b *testBundle) jobContainers(t *testing.T, test string) []string {
	t.Helper()
	// Also called from cleanups, where the test's context is over.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	filters := make(client.Filters).Add("label", LabelPipeline+"="+b.pipelineLabel())
	if test != "" {
		filters.Add("label", LabelJob+"="+orchestrator.TestJobPrefix+test)
	}
	list, err := b.d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		t.Fatalf("ContainerList() error = %v", err)
	}
	var ids []string
	for _, c := range list.Items {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestTestBusybox(t *testing.T) {
	t.Parallel()
	b := setup(t)
	image := b.env.busybox
	tests := []struct {
		spec    orchestrator.TestSpec
		want    orchestrator.TestResult // Duration is not compared
		wantLog []string
	}{
		{orchestrator.TestSpec{Name: "pass", Command: []string{"sh", "-c", "echo out; echo err >&2"}},
			orchestrator.TestResult{}, []string{"out\n", "err\n", "exit 0 after "}}, // the two streams have no order between them
		{orchestrator.TestSpec{Name: "fail", Command: []string{"sh", "-c", "echo failing; exit 3"}},
			orchestrator.TestResult{ExitCode: 3}, []string{"failing\nexit 3 after "}},
		{orchestrator.TestSpec{Name: "timeout", Command: []string{"sh", "-c", "echo started; sleep 300"}, Timeout: 2 * time.Second},
			orchestrator.TestResult{ExitCode: 137, TimedOut: true}, []string{"started\nexit 137 after 2.", "(timed out after 2s)"}},
		// tail keeps everything after the last newline, and /dev/zero has none.
		{orchestrator.TestSpec{Name: "oom", Command: []string{"sh", "-c", "head -c 200m /dev/zero | tail"}, Memory: 16 << 20},
			orchestrator.TestResult{ExitCode: 137, OOMKilled: true}, []string{"(out of memory)"}},
		{orchestrator.TestSpec{Name: "env", Command: []string{"sh", "-c", `echo "$A-$B"`}, Env: map[string]string{"A": "1", "B": "2"}},
			orchestrator.TestResult{}, []string{"1-2\n"}},
		{orchestrator.TestSpec{Name: "pids", Command: []string{"sh", "-c", "for i in $(seq 40); do sleep 5 & done; wait"}, Pids: 16},
			orchestrator.TestResult{ExitCode: 2}, []string{"can't fork"}},
		{orchestrator.TestSpec{Name: "no-network", Command: []string{"sh", "-c", "ls /sys/class/net"}},
			orchestrator.TestResult{}, []string{"lo\nexit 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec.Name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			got := b.runTest(t, image, tt.spec)
			if got.err != nil {
				t.Fatalf("Test(%s) error = %v\nlog:\n%s", tt.spec.Name, got.err, got.log)
			}
			t.Logf("Test(%s) = %+v in %s", tt.spec.Name, got.res, time.Since(start))
			got.res.Duration = 0
			if got.res != tt.want {
				t.Errorf("Test(%s) = %+v, want %+v\nlog:\n%s", tt.spec.Name, got.res, tt.want, got.log)
			}
			for _, want := range tt.wantLog {
				if !strings.Contains(got.log, want) {
					t.Errorf("Test(%s) log = %q, want it to contain %q", tt.spec.Name, got.log, want)
				}
			}
		})
	}
	t.Cleanup(func() {
		if ids := b.containers(t); len(ids) != 0 {
			t.Errorf("containers left after the tests: %v", ids)
		}
	})
}

func TestTestIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// What the test sees from inside: its limits, its capabilities, and no Docker socket.
	got := b.runTest(t, b.env.busybox, orchestrator.TestSpec{Name: "inside", Memory: 64 << 20, Pids: 50, CPUs: 0.5,
		Command: []string{"sh", "-c", `cd /sys/fs/cgroup
			if [ -d memory ]; then echo v1 $(cat memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes pids/pids.max cpu/cpu.cfs_quota_us)
			else echo v2 $(cat memory.max memory.swap.max pids.max cpu.max); fi
			grep -E '^(CapEff|NoNewPrivs)' /proc/self/status
			ls /var/run/docker.sock /run/docker.sock 2>&1; echo sockets mounted: $(grep -c docker.sock /proc/mounts)`}})
	limits := "v1 67108864 67108864 50 50000\n"
	if strings.HasPrefix(got.log, "v2") {
		limits = "v2 67108864 0 50 50000 100000\n"
	}
	for _, want := range []string{limits, "CapEff:\t0000000000000000", "NoNewPrivs:\t1",
		"/var/run/docker.sock: No such file", "/run/docker.sock: No such file", "sockets mounted: 0\n"} {
		if !strings.Contains(got.log, want) {
			t.Errorf("Test(inside) log lacks %q:\n%s", want, got.log)
		}
	}

	// What the engine holds, inspected while the test runs; then a cancel ends the job.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan testRun, 1)
	go func() {
		done <- b.runTestCtx(ctx, b.env.busybox, orchestrator.TestSpec{Name: "running", Command: []string{"sleep", "300"}, Memory: 32 << 20})
	}()
	// Polled until the listed container is inspected running: under load the engine was seen to
	// list a container it no longer knew a moment later. A run that ended meanwhile says why.
	var inspect client.ContainerInspectResult
	found := false
	for deadline := time.Now().Add(30 * time.Second); !found && time.Now().Before(deadline); {
		select {
		case r := <-done:
			t.Fatalf("Test(running) ended before it was inspected: %+v, error %v, log %q", r.res, r.err, r.log)
		case <-time.After(100 * time.Millisecond):
		}
		for _, id := range b.jobContainers(t, "running") {
			if r, err := b.d.cli.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{}); err == nil && r.Container.State != nil && r.Container.State.Running {
				inspect, found = r, true
			}
		}
	}
	if !found {
		cancel()
		t.Fatalf("no running container of the running test within 30 s")
	}
	hc := inspect.Container.HostConfig
	if hc.Privileged || len(hc.Binds) != 0 || len(hc.Mounts) != 0 || len(inspect.Container.Mounts) != 0 ||
		hc.NetworkMode != "none" || hc.Memory != 32<<20 || hc.MemorySwap != 32<<20 || hc.PidsLimit == nil ||
		!cmp.Equal(hc.CapDrop, []string{"ALL"}) || !cmp.Equal(hc.SecurityOpt, []string{"no-new-privileges"}) {
		t.Errorf("running test container's host config = %+v, mounts %v", hc, inspect.Container.Mounts)
	}
	start := time.Now()
	cancel()
	got = <-done
	if !errors.Is(got.err, context.Canceled) {
		t.Errorf("Test(cancelled) error = %v, want context.Canceled", got.err)
	}
	t.Logf("Test(cancelled) returned %s after the cancel", time.Since(start))
	if _, err := b.d.cli.ContainerInspect(t.Context(), inspect.Container.ID, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("ContainerInspect(cancelled test's container) error = %v, want not found", err)
	}
}

func TestTestStartFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	got := b.runTest(t, b.env.busybox, orchestrator.TestSpec{Name: "missing", Command: []string{"/no/such/binary"}})
	t.Logf("Test(missing command) = %+v, %v", got.res, got.err)
	if !isProjectFault(got.err) || !strings.Contains(got.err.Error(), "/no/such/binary") {
		t.Errorf("Test(missing command) error = %v, want a project fault naming the command", got.err)
	}
	if _, err := b.d.Test(t.Context(), orchestrator.TestRequest{ImageID: b.env.busybox,
		Test: orchestrator.TestSpec{Name: "host", Network: "host"}}, &bytes.Buffer{}); !isProjectFault(err) {
		t.Errorf("Test(network host) error = %v, want a project fault", err)
	}
	if ids := b.containers(t); len(ids) != 0 {
		t.Errorf("containers left: %v", ids)
	}
}

func TestTestPytest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res, log, err := b.build(t, b.project(), map[string]string{
		"Dockerfile":  "FROM " + b.env.python + "\nWORKDIR /app\nCOPY . .\n",
		"test_app.py": "import os\n\ndef test_ok():\n    assert os.environ['GANTRY'] == 'yes'\n\ndef test_tmp(tmp_path):\n    (tmp_path / 'x').write_text('x')\n",
		"test_bad.py": "def test_bad():\n    assert 1 == 2, 'deliberately " + randomHex(4) + "'\n",
	})
	if err != nil {
		t.Fatalf("Build() error = %v\nlog:\n%s", err, log)
	}
	cmd := []string{"python3", "-m", "pytest", "-q", "-p", "no:cacheprovider"}
	pass := b.runTest(t, res.ImageID, orchestrator.TestSpec{Name: "unit", Command: append(cmd, "test_app.py"),
		Env: map[string]string{"GANTRY": "yes"}, Memory: 256 << 20, CPUs: 1, Pids: 128})
	if pass.err != nil || pass.res.ExitCode != 0 || !strings.Contains(pass.log, "2 passed") {
		t.Errorf("Test(pytest, passing) = %+v, %v\nlog:\n%s", pass.res, pass.err, pass.log)
	}
	t.Logf("passing pytest took %s", pass.res.Duration)
	fail := b.runTest(t, res.ImageID, orchestrator.TestSpec{Name: "unit", Command: cmd,
		Env: map[string]string{"GANTRY": "yes"}, Memory: 256 << 20, CPUs: 1, Pids: 128})
	if fail.err != nil || fail.res.ExitCode != 1 || !strings.Contains(fail.log, "1 failed, 2 passed") ||
		!strings.Contains(fail.log, "deliberately") {
		t.Errorf("Test(pytest, failing) = %+v, %v\nlog:\n%s", fail.res, fail.err, fail.log)
	}
}
