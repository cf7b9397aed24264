package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/redis/go-redis/v9"
)

// lock takes a lock key for ttl and returns the function that releases it, if still ours.
func (s *Store) lock(ctx context.Context, key string, ttl time.Duration) (func(), error) {
	b := make([]byte, 12)
	rand.Read(b)
	token := hex.EncodeToString(b)
	ok, err := s.rdb.SetNX(ctx, key, token, ttl).Result()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, orchestrator.ErrLocked
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		unlock.Run(ctx, s.rdb, []string{key}, token)
	}, nil
}

// releaseLockTTL frees the release lock of a worker that died while pushing; a push of one
// image rarely takes more than a few minutes, and a second push of the same image is harmless.
const releaseLockTTL = 15 * time.Minute

// LockRelease implements orchestrator.Store.
func (s *Store) LockRelease(ctx context.Context, project, branch string) (func(), error) {
	return s.lock(ctx, s.keyReleaseLock(project, branch), releaseLockTTL)
}

// BranchPipelines implements orchestrator.Store.
func (s *Store) BranchPipelines(ctx context.Context, project, branch string, before int64) ([]int64, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, s.keyBranch(project, branch), &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(before, 10),
	}).Result()
	if err != nil {
		return nil, err
	}
	return parseIDs(ids), nil
}

func parseIDs(ids []string) []int64 {
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if n, err := strconv.ParseInt(id, 10, 64); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// PublishCancel implements orchestrator.Store.
func (s *Store) PublishCancel(ctx context.Context, pipelineID int64) error {
	return s.rdb.Publish(ctx, s.channelCancel(), pipelineID).Err()
}

// Cancellations implements orchestrator.Store. The channel closes when ctx ends. Pub/sub
// delivers only to processes listening at the time; a worker that misses an announcement
// still finds its job no longer running when it tries to finish it.
func (s *Store) Cancellations(ctx context.Context) <-chan int64 {
	out := make(chan int64)
	sub := s.rdb.Subscribe(ctx, s.channelCancel())
	go func() { // ends when ctx ends: the subscription is closed and its channel drained
		defer close(out)
		defer sub.Close()
		msgs := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-msgs:
				if !ok {
					return
				}
				if id, err := strconv.ParseInt(m.Payload, 10, 64); err == nil {
					select {
					case out <- id:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	}()
	return out
}
