package jobs

import (
	"context"
	"fmt"
	"strconv"

	"go.uber.org/zap"
)

// Cleanup removes the containers a lost attempt of a job left on this engine, found by the
// labels every test container carries. Build containers need nothing: the engine kills a
// classic build's container when the client goes away.
func (d *Docker) Cleanup(ctx context.Context, pipelineID int64, job string) error {
	n, err := d.RemoveContainers(ctx, map[string]string{LabelPipeline: strconv.FormatInt(pipelineID, 10), LabelJob: job})
	if err != nil {
		return fmt.Errorf("remove containers of %s: %w", job, err)
	}
	if n > 0 {
		d.log.Info("removed containers of a lost attempt", zap.Int64("pipeline", pipelineID), zap.String("job", job), zap.Int("containers", n))
	}
	return nil
}
