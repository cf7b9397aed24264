package jobs

import (
	"context"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/gantry-ci/gantry/orchestrator"
)

// volumesOf names the volumes mounted in a container.
func (b *testBundle) volumesOf(t *testing.T, id string) []string {
	t.Helper()
	inspect, err := b.d.cli.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("ContainerInspect(%s) error = %v", id, err)
	}
	var names []string
	for _, m := range inspect.Container.Mounts {
		if m.Type == mount.TypeVolume {
			names = append(names, m.Name)
		}
	}
	return names
}

// assertVolumesGone fails for every volume that still exists, and removes it.
func (b *testBundle) assertVolumesGone(t *testing.T, names []string) {
	t.Helper()
	for _, v := range names {
		_, err := b.d.cli.VolumeInspect(t.Context(), v, client.VolumeInspectOptions{})
		if !cerrdefs.IsNotFound(err) {
			t.Errorf("VolumeInspect(%s) error = %v, want not found: the container's anonymous volume outlived it", v, err)
			b.d.cli.VolumeRemove(context.Background(), v, client.VolumeRemoveOptions{Force: true})
		}
	}
}

// TestTestRemovesVolumes: an image that declares a VOLUME gives each container an anonymous
// volume, which a test can fill; it goes with the container, or every test run leaks one.
func TestTestRemovesVolumes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res, log, err := b.build(t, b.project(), map[string]string{"Dockerfile": "FROM " + b.env.busybox + "\nVOLUME /data\n"})
	if err != nil {
		t.Fatalf("Build() error = %v\nlog:\n%s", err, log)
	}
	done := make(chan testRun, 1)
	go func() {
		done <- b.runTest(t, res.ImageID, orchestrator.TestSpec{Name: "volume", Command: []string{"sh", "-c", "echo x > /data/x; sleep 3"}})
	}()
	// Polled until a listed container can be inspected: under load the engine was seen to list
	// a container it no longer knew a moment later.
	var inspect client.ContainerInspectResult
	found := false
	for deadline := time.Now().Add(10 * time.Second); !found && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		for _, id := range b.jobContainers(t, "volume") {
			if r, err := b.d.cli.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{}); err == nil && r.Container.State != nil && r.Container.State.Running {
				inspect, found = r, true
			}
		}
	}
	if !found {
		t.Fatalf("no running container of the test found")
	}
	var volumes []string
	for _, m := range inspect.Container.Mounts {
		if m.Type == mount.TypeVolume {
			volumes = append(volumes, m.Name)
		}
	}
	if len(volumes) != 1 {
		t.Fatalf("volumes of the running test = %v, want one", volumes)
	}
	// The engine's own copy of the output is bounded as well (see containerConfig).
	if lc := inspect.Container.HostConfig.LogConfig; lc.Type != "json-file" || lc.Config["max-size"] != "4194304" || lc.Config["max-file"] != "2" {
		t.Errorf("running test container's log config = %+v, want json-file rotated at 4 MiB once", lc)
	}
	if got := <-done; got.err != nil || got.res.ExitCode != 0 {
		t.Fatalf("Test(volume) = %+v, %v\nlog:\n%s", got.res, got.err, got.log)
	}
	b.assertVolumesGone(t, volumes)
}

// TestCleanupRemovesVolumes: the containers a lost attempt left go with their volumes too.
func TestCleanupRemovesVolumes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := orchestrator.TestJobPrefix + "lost"
	created, err := b.d.cli.ContainerCreate(t.Context(), client.ContainerCreateOptions{
		Config: &container.Config{Image: b.env.busybox, Cmd: []string{"true"}, Volumes: map[string]struct{}{"/data": {}},
			Labels: map[string]string{LabelPipeline: b.pipelineLabel(), LabelJob: job, LabelProject: "group/volumes"}},
	})
	if err != nil {
		t.Fatalf("ContainerCreate() error = %v", err)
	}
	volumes := b.volumesOf(t, created.ID)
	if len(volumes) != 1 {
		t.Fatalf("volumes of the container = %v, want one", volumes)
	}
	if err := b.d.Cleanup(t.Context(), "group/volumes", b.pipeline, job); err != nil {
		t.Fatalf("Cleanup() error = %v", err)
	}
	b.assertVolumesGone(t, volumes)
}

// TestCleanupOnlyItsProject: two projects' pipelines can have the same id and job name (two
// installations on one engine, or two test processes): cleaning up after one's lost attempt
// never touches the other's running container.
func TestCleanupOnlyItsProject(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := orchestrator.TestJobPrefix + "shared"
	ids := map[string]string{}
	for _, project := range []string{"group/lost-" + b.pipelineLabel(), "group/alive-" + b.pipelineLabel()} {
		created, err := b.d.cli.ContainerCreate(t.Context(), client.ContainerCreateOptions{
			Config: &container.Config{Image: b.env.busybox, Cmd: []string{"sleep", "30"},
				Labels: map[string]string{LabelPipeline: b.pipelineLabel(), LabelJob: job, LabelProject: project}},
		})
		if err != nil {
			t.Fatalf("ContainerCreate() error = %v", err)
		}
		ids[project] = created.ID
		t.Cleanup(func() {
			b.d.cli.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true})
		})
	}
	if err := b.d.Cleanup(t.Context(), "group/lost-"+b.pipelineLabel(), b.pipeline, job); err != nil {
		t.Fatalf("Cleanup() error = %v", err)
	}
	if _, err := b.d.cli.ContainerInspect(t.Context(), ids["group/lost-"+b.pipelineLabel()], client.ContainerInspectOptions{}); err == nil {
		t.Error("the lost attempt's container is still there")
	}
	if _, err := b.d.cli.ContainerInspect(t.Context(), ids["group/alive-"+b.pipelineLabel()], client.ContainerInspectOptions{}); err != nil {
		t.Errorf("the other project's container was removed: %v", err)
	}
}
