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

// createPipeline stores a new pipeline unless a duplicate exists, in one step so that two
// deliveries of the same event racing each other still make one pipeline.
//
//	KEYS[1] pipeline id counter     KEYS[2] delivery dedup key    KEYS[3] content dedup key
//	KEYS[4] index of all pipelines  KEYS[5] unstarted pipelines   KEYS[6] branch index of a push, or ""
//	KEYS[7] list of new pipelines for WaitNew   KEYS[8] open pipelines
//	KEYS[9] the branch's last head, for a push or reconcile pipeline, or ""
//	ARGV[1] delivery TTL (ms)       ARGV[2] content TTL (ms)      ARGV[3] "1" when there is a delivery id
//	ARGV[4] now (unix ms)           ARGV[5] pipeline key prefix   ARGV[6] id epoch
//	ARGV[7] the commit (for KEYS[9]) ARGV[8…] field, value, … of the hash
//	returns {1, new id} or {0, id of the existing pipeline}
//
// The pipeline's own key is built inside from ARGV[5] and the new id, which a single Redis (the
// only kind gantry supports) allows.
var createPipeline = redis.NewScript(`
local found = redis.call("MGET", KEYS[2], KEYS[3])
if ARGV[3] == "1" and found[1] then return {0, tonumber(found[1])} end
if found[2] then
  if ARGV[3] == "1" then redis.call("SET", KEYS[2], found[2], "PX", ARGV[1]) end
  return {0, tonumber(found[2])}
end
if redis.call("EXISTS", KEYS[1]) == 0 then redis.call("SET", KEYS[1], ARGV[6]) end
local id = redis.call("INCR", KEYS[1])
redis.call("HSET", ARGV[5] .. id, unpack(ARGV, 8))
if KEYS[9] ~= "" then redis.call("SET", KEYS[9], ARGV[7]) end
redis.call("ZADD", KEYS[4], id, id)
redis.call("ZADD", KEYS[5], ARGV[4], id)
redis.call("ZADD", KEYS[8], ARGV[4], id)
if KEYS[6] ~= "" then redis.call("ZADD", KEYS[6], id, id) end
redis.call("LPUSH", KEYS[7], id)
if ARGV[3] == "1" then redis.call("SET", KEYS[2], id, "PX", ARGV[1]) end
redis.call("SET", KEYS[3], id, "PX", ARGV[2])
return {1, id}
`)

// CreatePipeline implements orchestrator.Store. It is one script in one Redis round trip, shared
// with the webhooks that arrive at the same moment (createBatcher), because it is on the path
// of every webhook answer.
func (s *Store) CreatePipeline(ctx context.Context, p *orchestrator.Pipeline, d orchestrator.Dedup) (int64, error) {
	trig, err := json.Marshal(p.Trigger)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	args := []any{d.DeliveryTTL.Milliseconds(), d.ContentTTL.Milliseconds(), boolArg(d.Delivery != ""),
		now.UnixMilli(), s.keyPipelinePrefix(), idEpoch(now), p.Trigger.SHA,
		fieldTrigger, trig, fieldCreatedAt, p.CreatedAt.UTC().Format(time.RFC3339Nano)}
	names := make([]string, 0, len(p.Jobs))
	for _, j := range p.Jobs {
		b, err := json.Marshal(j)
		if err != nil {
			return 0, err
		}
		args = append(args, jobPrefix+j.Name, b, statePrefix+j.Name, string(j.State), attemptPrefix+j.Name, j.Attempt)
		names = append(names, j.Name)
	}
	args = append(args, fieldJobs, strings.Join(names, ","))
	delivery, content := s.keyDedup("delivery", d.Delivery), s.keyDedup("content", d.Content)
	branch, head := "", ""
	if p.Trigger.Kind == orchestrator.TriggerPush {
		branch = s.keyBranch(p.Trigger.Project, p.Trigger.Ref)
	}
	if p.Trigger.Kind == orchestrator.TriggerPush || p.Trigger.Kind == orchestrator.TriggerReconcile {
		head = s.keyHead(p.Trigger.Project, p.Trigger.Ref)
	}
	res, err := s.creates.run(ctx, []string{s.keySeq(), delivery, content, s.keyIndex(), s.keyUnstarted(), branch, s.keyNew(), s.keyOpen(), head}, args)
	if err != nil {
		return 0, fmt.Errorf("store pipeline: %w", err)
	}
	if res[0] == 0 {
		return res[1], nil
	}
	p.ID = res[1]
	return 0, nil
}

// epochStart is when id epochs are counted from.
var epochStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// idEpoch is where pipeline ids start when the id counter does not exist: on a new Redis, or
// one that lost its data. Commit statuses already in GitLab link to pipelines by id, so ids must
// never start again at 1 after a loss: they start at ten per second elapsed since epochStart, so
// a new epoch collides with the last one's ids only if that one made more than ten pipelines a
// second over its whole life.
func idEpoch(now time.Time) int64 { return max(int64(now.Sub(epochStart).Seconds())*10, 0) }

// WaitNew implements orchestrator.Store, waiting at most a second so the caller sees its
// context end.
func (s *Store) WaitNew(ctx context.Context) (int64, error) {
	res, err := s.rdb.BRPop(ctx, time.Second, s.keyNew()).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(res[1], 10, 64)
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Started implements orchestrator.Store.
func (s *Store) Started(ctx context.Context, id int64) error {
	return s.rdb.ZRem(ctx, s.keyUnstarted(), id).Err()
}

// Unstarted implements orchestrator.Store.
func (s *Store) Unstarted(ctx context.Context, before time.Time) ([]int64, error) {
	return s.idsBefore(ctx, s.keyUnstarted(), before)
}

// Open implements orchestrator.Store.
func (s *Store) Open(ctx context.Context, before time.Time) ([]int64, error) {
	return s.idsBefore(ctx, s.keyOpen(), before)
}

// LastHead implements orchestrator.Store.
func (s *Store) LastHead(ctx context.Context, project, branch string) (string, error) {
	sha, err := s.rdb.Get(ctx, s.keyHead(project, branch)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return sha, err
}

// SeenHead implements orchestrator.Store: the sighting is kept for ttl, and a sighting of the
// same commit within it is the second.
func (s *Store) SeenHead(ctx context.Context, project, branch, sha string, ttl time.Duration) (bool, error) {
	key := s.keyHead(project, branch) + ":seen"
	var prev *redis.StringCmd
	_, err := s.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		prev = tx.GetSet(ctx, key, sha) // GETSET rather than SET … GET: the embedded Redis has it
		tx.PExpire(ctx, key, ttl)
		return nil
	})
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil && prev.Val() == sha, err
}
