package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/redis/go-redis/v9"
)

// swapJob stores a job only if its state and attempt are still the expected ones, and then
// appends its commit status to the pipeline's outbox, so a status is queued exactly when its
// transition happens. The attempt is part of the check because a state alone repeats: a worker
// of an attempt given up on, still running, must not finish the retried attempt that runs now.
//
//	KEYS[1] pipeline hash   KEYS[2] status outbox
//	ARGV[1] job name        ARGV[2] expected state   ARGV[3] new state   ARGV[4] job JSON
//	ARGV[5] status entry JSON, or "" for none
//	ARGV[6] expected attempt   ARGV[7] new attempt
//	KEYS[3] set of pipelines with a waiting outbox   ARGV[8] now (unix ms)   ARGV[9] pipeline id
//	returns {1, outbox seq (0 without entry)} when stored, {0, 0} when the job was in another
//	state or attempt
//
// A pipeline stored before attempts were kept has no attempt field: its state alone decides
// until its first swap writes one.
//
// Outbox elements are "<seq> <entry JSON>", so the seq is readable without decoding.
var swapJob = redis.NewScript(`
if redis.call("HGET", KEYS[1], "state:" .. ARGV[1]) ~= ARGV[2] then
  return {0, 0}
end
local attempt = redis.call("HGET", KEYS[1], "attempt:" .. ARGV[1])
if attempt and attempt ~= ARGV[6] then
  return {0, 0}
end
redis.call("HSET", KEYS[1], "state:" .. ARGV[1], ARGV[3], "attempt:" .. ARGV[1], ARGV[7], "job:" .. ARGV[1], ARGV[4])
if ARGV[5] == "" then return {1, 0} end
local seq = redis.call("HINCRBY", KEYS[1], "status_seq", 1)
redis.call("RPUSH", KEYS[2], seq .. " " .. ARGV[5])
redis.call("ZADD", KEYS[3], ARGV[8], ARGV[9])
return {1, seq}
`)

// SwapJob implements orchestrator.Store.
func (s *Store) SwapJob(ctx context.Context, pipelineID int64, from orchestrator.State, fromAttempt int, j orchestrator.Job, post *orchestrator.StatusEntry) (bool, int64, error) {
	b, err := json.Marshal(j)
	if err != nil {
		return false, 0, err
	}
	entry := ""
	if post != nil {
		e, err := json.Marshal(post)
		if err != nil {
			return false, 0, err
		}
		entry = string(e)
	}
	res, err := s.runReplicated(ctx, swapJob, []string{s.keyPipeline(pipelineID), s.keyOutbox(pipelineID), s.keyOutboxes()},
		j.Name, string(from), string(j.State), b, entry, fromAttempt, j.Attempt, time.Now().UnixMilli(), pipelineID).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("swap job %s of pipeline %d: %w", j.Name, pipelineID, err)
	}
	return res[0] == 1, res[1], nil
}

// NextStatus implements orchestrator.Store.
func (s *Store) NextStatus(ctx context.Context, pipelineID int64) (*orchestrator.StatusEntry, error) {
	raw, err := s.rdb.LIndex(ctx, s.keyOutbox(pipelineID), 0).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	seq, body, _ := strings.Cut(raw, " ")
	var e orchestrator.StatusEntry
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		return nil, fmt.Errorf("outbox of pipeline %d: %w", pipelineID, err)
	}
	e.Seq, _ = strconv.ParseInt(seq, 10, 64)
	return &e, nil
}

// ackStatus pops the outbox's head if it is the given entry, and takes the pipeline off the
// set of waiting outboxes once its outbox is empty.
//
//	KEYS[1] status outbox; KEYS[2] set of pipelines with a waiting outbox
//	ARGV[1] "<seq> " prefix of the entry; ARGV[2] pipeline id
//	returns 1 when popped, 0 when the head is another entry (or there is none)
var ackStatus = redis.NewScript(`
local head = redis.call("LINDEX", KEYS[1], 0)
if head and string.sub(head, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call("LPOP", KEYS[1])
  if redis.call("LLEN", KEYS[1]) == 0 then redis.call("ZREM", KEYS[2], ARGV[2]) end
  return 1
end
return 0
`)

// AckStatus implements orchestrator.Store.
func (s *Store) AckStatus(ctx context.Context, pipelineID, seq int64) error {
	return ackStatus.Run(ctx, s.rdb, []string{s.keyOutbox(pipelineID), s.keyOutboxes()}, strconv.FormatInt(seq, 10)+" ", pipelineID).Err()
}

// WaitingOutboxes implements orchestrator.Store.
func (s *Store) WaitingOutboxes(ctx context.Context, before time.Time) ([]int64, error) {
	return s.idsBefore(ctx, s.keyOutboxes(), before)
}

// statusLockTTL frees the lock of a worker that died while posting.
const statusLockTTL = time.Minute

// unlock deletes a lock only if it still holds this holder's token.
//
//	KEYS[1] lock; ARGV[1] token; returns 1 when deleted
var unlock = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0
`)

// LockStatuses implements orchestrator.Store.
func (s *Store) LockStatuses(ctx context.Context, pipelineID int64) (func(), error) {
	return s.lock(ctx, s.keyStatusLock(pipelineID), statusLockTTL)
}
