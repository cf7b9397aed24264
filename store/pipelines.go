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
//	KEYS[1] pipeline id counter     KEYS[2] delivery dedup key    KEYS[3] the commit's key
//	KEYS[4] index of all pipelines  KEYS[5] unstarted pipelines   KEYS[6] branch index of a push, or ""
//	KEYS[7] list of new pipelines for WaitNew   KEYS[8] open pipelines
//	KEYS[9] the branch's last head, for a push or reconcile pipeline, or ""
//	KEYS[10] finished pipelines whose image is kept
//	ARGV[1] delivery TTL (ms)       ARGV[2] commit TTL (ms)       ARGV[3] "1" when there is a delivery id
//	ARGV[4] now (unix ms)           ARGV[5] pipeline key prefix   ARGV[6] id epoch
//	ARGV[7] the commit (for KEYS[9]) ARGV[8] "1" to force a new pipeline
//	ARGV[9] a merge request iid to attach to the commit's pipeline, or "0"
//	ARGV[10] the release job's field when the new pipeline releases, or ""
//	ARGV[11] the job state fields' prefix  ARGV[12] the canceled state  ARGV[13] the attached merge request's field
//	ARGV[14] the job list's field   ARGV[15] the release job's name   ARGV[16] the approval's field
//	ARGV[17] n, the number of ARGV that follow to add the release to the commit's pipeline
//	ARGV[18…17+n] field, value, … of the release job (job, state, attempt) and the release trigger
//	ARGV[18+n…] field, value, … of the hash
//	returns {1, new id, 0}, or {0, id of the existing pipeline, 1 when the release was added to it, else 0}
//
// The commit's pipeline answers for it (orchestrator.Dedup) unless it is gone or one of its jobs
// ended canceled (it was superseded, canceled, refused, declined or expired: its work did not
// run). When the new pipeline releases and the commit's has no release job, the release is added
// to it rather than the commit built again, unless it was gated for approval (its image was built
// as untrusted code's) or it is neither open nor finished with its image kept (the image is gone,
// so there is nothing to release): then it does not answer. Adding puts the pipeline back among
// the open and unstarted ones (the sweep drives it on if the start task is lost), out of the
// finished ones (the sweep would remove its image; MarkFinished puts it back when the release
// ends), in the branch's index and head as the push's own pipeline would be, and on the list for
// WaitNew, whose start task announces the release. A second trigger that releases then finds the
// release job and is a plain duplicate.
//
// A duplicate writes too, its dedup key again unchanged: with redis.min_replicas, the WAIT after
// the script then covers the pipeline it names, stored earlier perhaps by another connection that
// no replica had acknowledged (store/batch.go, docs/redis.md §1).
//
// The pipeline's own key is built inside from ARGV[5] and the new id, which a single Redis (the
// only kind gantry supports) allows.
var createPipeline = redis.NewScript(`
local found = redis.call("MGET", KEYS[2], KEYS[3])
if ARGV[3] == "1" and found[1] then
  redis.call("SET", KEYS[2], found[1], "KEEPTTL")
  return {0, tonumber(found[1]), 0}
end
local n = tonumber(ARGV[17])
local function answers(id)
  local h = redis.call("HGETALL", ARGV[5] .. id)
  if #h == 0 then return false end
  local release, gated = ARGV[10] == "", false
  for i = 1, #h, 2 do
    if h[i] == ARGV[10] then release = true end
    if h[i] == ARGV[16] then gated = true end
    if h[i + 1] == ARGV[12] and string.sub(h[i], 1, #ARGV[11]) == ARGV[11] then return false end
  end
  if release then return "yes" end
  if gated or n == 0 then return false end
  if not redis.call("ZSCORE", KEYS[8], id) and not redis.call("ZSCORE", KEYS[10], id) then return false end
  return "add"
end
local verdict = found[2] and ARGV[8] ~= "1" and answers(found[2])
if verdict then
  local key = ARGV[5] .. found[2]
  if ARGV[9] ~= "0" then redis.call("HSETNX", key, ARGV[13], ARGV[9]) end
  local added = 0
  if verdict == "add" then
    redis.call("HSET", key, unpack(ARGV, 18, 17 + n))
    redis.call("HSET", key, ARGV[14], redis.call("HGET", key, ARGV[14]) .. "," .. ARGV[15])
    redis.call("ZADD", KEYS[5], ARGV[4], found[2])
    redis.call("ZADD", KEYS[8], ARGV[4], found[2])
    redis.call("ZREM", KEYS[10], found[2])
    if KEYS[6] ~= "" then redis.call("ZADD", KEYS[6], found[2], found[2]) end
    if KEYS[9] ~= "" then redis.call("SET", KEYS[9], ARGV[7]) end
    redis.call("LPUSH", KEYS[7], found[2])
    added = 1
  end
  if ARGV[3] == "1" then
    redis.call("SET", KEYS[2], found[2], "PX", ARGV[1])
  else
    redis.call("SET", KEYS[3], found[2], "KEEPTTL")
  end
  return {0, tonumber(found[2]), added}
end
if redis.call("EXISTS", KEYS[1]) == 0 then redis.call("SET", KEYS[1], ARGV[6]) end
local id = redis.call("INCR", KEYS[1])
redis.call("HSET", ARGV[5] .. id, unpack(ARGV, 18 + n))
if KEYS[9] ~= "" then redis.call("SET", KEYS[9], ARGV[7]) end
redis.call("ZADD", KEYS[4], id, id)
redis.call("ZADD", KEYS[5], ARGV[4], id)
redis.call("ZADD", KEYS[8], ARGV[4], id)
if KEYS[6] ~= "" then redis.call("ZADD", KEYS[6], id, id) end
redis.call("LPUSH", KEYS[7], id)
if ARGV[3] == "1" then redis.call("SET", KEYS[2], id, "PX", ARGV[1]) end
redis.call("SET", KEYS[3], id, "PX", ARGV[2])
return {1, id, 0}
`)

// CreatePipeline implements orchestrator.Store. It is one script in one Redis round trip, shared
// with the webhooks that arrive at the same moment (createBatcher), because it is on the path
// of every webhook answer.
func (s *Store) CreatePipeline(ctx context.Context, p *orchestrator.Pipeline, d orchestrator.Dedup) (int64, bool, error) {
	trig, err := json.Marshal(p.Trigger)
	if err != nil {
		return 0, false, err
	}
	now := time.Now()
	release, add, err := releaseFields(p, d, trig)
	if err != nil {
		return 0, false, err
	}
	args := []any{d.DeliveryTTL.Milliseconds(), d.CommitTTL.Milliseconds(), boolArg(d.Delivery != ""),
		now.UnixMilli(), s.keyPipelinePrefix(), idEpoch(now), p.Trigger.SHA,
		boolArg(d.Force), d.MergeRequestIID, release, statePrefix, string(orchestrator.StateCanceled), fieldMergeRequest,
		fieldJobs, orchestrator.JobRelease, fieldApproval, len(add)}
	args = append(args, add...)
	args = append(args, fieldTrigger, trig, fieldCreatedAt, p.CreatedAt.UTC().Format(time.RFC3339Nano))
	names := make([]string, 0, len(p.Jobs))
	for _, j := range p.Jobs {
		b, err := json.Marshal(j)
		if err != nil {
			return 0, false, err
		}
		args = append(args, jobPrefix+j.Name, b, statePrefix+j.Name, string(j.State), attemptPrefix+j.Name, j.Attempt)
		names = append(names, j.Name)
	}
	args = append(args, fieldJobs, strings.Join(names, ","))
	delivery, commit := s.keyDedup("delivery", d.Delivery), s.keyDedup("commit", d.Commit)
	branch, head := "", ""
	if p.Trigger.Kind == orchestrator.TriggerPush {
		branch = s.keyBranch(p.Trigger.Project, p.Trigger.Ref)
	}
	if p.Trigger.Kind == orchestrator.TriggerPush || p.Trigger.Kind == orchestrator.TriggerReconcile {
		head = s.keyHead(p.Trigger.Project, p.Trigger.Ref)
	}
	res, err := s.creates.run(ctx, []string{s.keySeq(), delivery, commit, s.keyIndex(), s.keyUnstarted(), branch, s.keyNew(), s.keyOpen(), head, s.keyFinished()}, args)
	if err != nil {
		return 0, false, fmt.Errorf("store pipeline: %w", err)
	}
	if res[0] == 0 {
		return res[1], len(res) > 2 && res[2] == 1, nil
	}
	p.ID = res[1]
	return 0, false, nil
}

// releaseFields are, for a new pipeline that releases, its release job's field (the script's
// ARGV[10]) and the fields that add the release to the commit's pipeline: the job as planned,
// its state and attempt, and the trigger, which becomes that pipeline's release trigger.
func releaseFields(p *orchestrator.Pipeline, d orchestrator.Dedup, trig []byte) (string, []any, error) {
	j, ok := p.Job(orchestrator.JobRelease)
	if !d.Releases || !ok {
		return "", nil, nil
	}
	b, err := json.Marshal(j)
	if err != nil {
		return "", nil, err
	}
	return jobPrefix + j.Name, []any{jobPrefix + j.Name, b, statePrefix + j.Name, string(j.State),
		attemptPrefix + j.Name, j.Attempt, fieldReleaseTrigger, trig}, nil
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
