package jobs

import (
	"context"
	"fmt"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"go.uber.org/zap"
)

// Cleanup removes the containers a lost attempt of a job left on this engine, found by the
// labels every test container carries. Build containers need nothing: the engine kills a
// classic build's container when the client goes away.
func (d *Docker) Cleanup(ctx context.Context, project string, pipelineID int64, job string) error {
	// The project is part of the match: pipeline ids are per installation (per Redis), and two
	// installations, or two test processes, may share one engine.
	n, err := d.RemoveContainers(ctx, map[string]string{LabelProject: project, LabelPipeline: strconv.FormatInt(pipelineID, 10), LabelJob: job})
	if err != nil {
		return fmt.Errorf("remove containers of %s: %w", job, err)
	}
	if n > 0 {
		d.log.Info("removed containers of a lost attempt", zap.Int64("pipeline", pipelineID), zap.String("job", job), zap.Int("containers", n))
	}
	return nil
}

// Discard removes a finished pipeline's image with every local tag of it (the test tag and the
// release tags; the registry keeps what was pushed). An image already gone is not an error.
func (d *Docker) Discard(ctx context.Context, imageID string) error {
	_, err := d.cli.ImageRemove(ctx, imageID, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove image %s: %w", imageID, err)
	}
	return nil
}

// SweepDangling removes the untagged images that builds left since this process started: a
// failed classic build leaves its intermediate layers, which carry none of gantry's labels.
// Older dangling images are not gantry's to judge. It returns how many it removed.
func (d *Docker) SweepDangling(ctx context.Context, since time.Time) (int, error) {
	list, err := d.cli.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("dangling", "true")})
	if err != nil {
		return 0, fmt.Errorf("list dangling images: %w", err)
	}
	removed := 0
	for _, img := range list.Items {
		if time.Unix(img.Created, 0).Before(since) {
			continue
		}
		if _, err := d.cli.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{PruneChildren: true}); err == nil {
			removed++
		}
	}
	return removed, nil
}
