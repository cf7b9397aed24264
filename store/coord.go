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
	token, err := s.take(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		unlock.Run(ctx, s.rdb, []string{key}, token)
	}, nil
}

// take sets a lock key to a new holder's token for ttl, or returns ErrLocked.
func (s *Store) take(ctx context.Context, key string, ttl time.Duration) (string, error) {
	token := newToken()
	ok, err := s.rdb.SetNX(ctx, key, token, ttl).Result()
	if err != nil {
		return "", err
	}
	if !ok {
		return "", orchestrator.ErrLocked
	}
	return token, nil
}

// newToken is a lock holder's random token.
func newToken() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// BranchPipelines implements orchestrator.Store: the unfinished ones (keyBranch).
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
