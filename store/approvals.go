package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/redis/go-redis/v9"
)

// gate records a pipeline's wait for approval unless a push added its release, in one step
// with the create script's check of the approval field (createPipeline).
//
//	KEYS[1] pipeline hash   KEYS[2] waiting set
//	ARGV[1] release trigger field   ARGV[2] approval field   ARGV[3] approval JSON
//	ARGV[4] when the wait expires (unix ms)   ARGV[5] pipeline id
//	returns 1 when the wait was recorded, 0 when the pipeline has a release trigger
var gate = redis.NewScript(`
if redis.call("HEXISTS", KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call("HSET", KEYS[1], ARGV[2], ARGV[3])
redis.call("ZADD", KEYS[2], ARGV[4], ARGV[5])
return 1
`)

// Gate implements orchestrator.Store: the approval goes into the pipeline's hash and the
// pipeline into the waiting set, due when the wait expires.
func (s *Store) Gate(ctx context.Context, id int64, a orchestrator.Approval) (bool, error) {
	a.Verdict = nil // kept in its own field, written once (Decide)
	b, err := json.Marshal(a)
	if err != nil {
		return false, err
	}
	n, err := gate.Run(ctx, s.rdb, []string{s.keyPipeline(id), s.keyWaiting()},
		fieldReleaseTrigger, fieldApproval, b, a.ExpiresAt.UnixMilli(), id).Int()
	if err != nil {
		return false, fmt.Errorf("gate pipeline %d: %w", id, err)
	}
	return n == 1, nil
}

// decide writes a pipeline's verdict unless it has one, and makes the pipeline due at once in
// the waiting set, so the sweep carries the decision out if its decider cannot.
//
//	KEYS[1] pipeline hash   KEYS[2] waiting set
//	ARGV[1] verdict field   ARGV[2] verdict JSON   ARGV[3] pipeline id
//	returns 1 when the verdict was written, 0 when the pipeline already had one (or is gone)
var decide = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
if redis.call("HSETNX", KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call("ZADD", KEYS[2], 0, ARGV[3])
return 1
`)

// Decide implements orchestrator.Store.
func (s *Store) Decide(ctx context.Context, id int64, v orchestrator.Verdict) (bool, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, err
	}
	n, err := decide.Run(ctx, s.rdb, []string{s.keyPipeline(id), s.keyWaiting()}, fieldVerdict, b, id).Int()
	if err != nil {
		return false, fmt.Errorf("decide on pipeline %d: %w", id, err)
	}
	return n == 1, nil
}

// Waiting implements orchestrator.Store.
func (s *Store) Waiting(ctx context.Context, before time.Time) ([]int64, error) {
	return s.idsBefore(ctx, s.keyWaiting(), before)
}

// Unwait implements orchestrator.Store.
func (s *Store) Unwait(ctx context.Context, id int64) error {
	return s.rdb.ZRem(ctx, s.keyWaiting(), id).Err()
}

// decodeApproval reads a pipeline's approval and verdict fields, nil when it never waited.
func decodeApproval(id int64, h map[string]string) (*orchestrator.Approval, error) {
	raw, ok := h[fieldApproval]
	if !ok {
		return nil, nil
	}
	var a orchestrator.Approval
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		return nil, fmt.Errorf("pipeline %d approval: %w", id, err)
	}
	if raw, ok := h[fieldVerdict]; ok {
		a.Verdict = &orchestrator.Verdict{}
		if err := json.Unmarshal([]byte(raw), a.Verdict); err != nil {
			return nil, fmt.Errorf("pipeline %d verdict: %w", id, err)
		}
	}
	return &a, nil
}
