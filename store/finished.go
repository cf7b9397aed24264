package store

import (
	"context"
	"strconv"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/redis/go-redis/v9"
)

// keyFinished is the sorted set of finished pipelines whose image is still kept (score = when
// the pipeline ended, unix milliseconds).
func (s *Store) keyFinished() string { return s.prefix + ":finished" }

// MarkFinished implements orchestrator.Store: the pipeline goes into the finished set (a
// pipeline retried later is marked again when it ends again), its end is recorded for the
// retention (the first end counts), and a push (or a pipeline a push added its release to)
// leaves its branch's set of unfinished pipelines, in one step.
func (s *Store) MarkFinished(ctx context.Context, p *orchestrator.Pipeline, at time.Time) error {
	_, err := s.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		tx.ZAdd(ctx, s.keyFinished(), redis.Z{Score: float64(at.UnixMilli()), Member: p.ID})
		s.recordEnd(ctx, tx, p.ID, at) // queued in the MULTI; its errors come with Exec
		tx.ZRem(ctx, s.keyOpen(), p.ID)
		if t := p.ReleaseBy(); t.Kind == orchestrator.TriggerPush {
			tx.ZRem(ctx, s.keyBranch(t.Project, t.Ref), p.ID)
		}
		return nil
	})
	return err
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
