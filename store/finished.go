package store

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// keyFinished is the sorted set of finished pipelines whose image is still kept (score = when
// the pipeline ended, unix milliseconds).
func (s *Store) keyFinished() string { return s.prefix + ":finished" }

// MarkFinished implements orchestrator.Store. The first end counts: a pipeline retried later
// is marked again when it ends again.
func (s *Store) MarkFinished(ctx context.Context, pipelineID int64, at time.Time) error {
	return s.rdb.ZAdd(ctx, s.keyFinished(), redis.Z{Score: float64(at.UnixMilli()), Member: pipelineID}).Err()
}

// FinishedBefore implements orchestrator.Store.
func (s *Store) FinishedBefore(ctx context.Context, t time.Time) ([]int64, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, s.keyFinished(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(t.UnixMilli(), 10), Count: 100,
	}).Result()
	if err != nil {
		return nil, err
	}
	return parseIDs(ids), nil
}

// Discarded implements orchestrator.Store.
func (s *Store) Discarded(ctx context.Context, pipelineID int64) error {
	return s.rdb.ZRem(ctx, s.keyFinished(), pipelineID).Err()
}
