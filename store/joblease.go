package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/redis/go-redis/v9"
)

// DefaultJobLeaseTTL is how long a job's lease outlives its worker's last renewal. A live worker
// renews it every third of that for as long as the job runs; a dead worker's lease runs out
// within it, and the engine's takeover check (every few seconds) hands the job to another
// worker. asynq's own lease (30 s) and recovery interval (a minute) are fixed inside asynq, so
// they could not give a takeover in seconds (docs/style.md: a queue's settings first; here
// they do not reach).
const DefaultJobLeaseTTL = 8 * time.Second

// keyJobLease is held by the worker running a job attempt.
func (s *Store) keyJobLease(id int64, job string, attempt int) string {
	return s.keyPipeline(id) + ":lease:" + job + ":" + strconv.Itoa(attempt)
}

// keyLeases is the sorted set of held job leases (member "<pipeline>|<attempt>|<token>|<job>",
// score = when the lease runs out unless renewed, unix milliseconds).
func (s *Store) keyLeases() string { return s.prefix + ":leases" }

// takeJobLease takes a job's lease for a new holder and lists it in the leases set, or does
// nothing when someone holds it.
//
//	KEYS[1] lease  KEYS[2] leases set
//	ARGV[1] token  ARGV[2] ttl (ms)  ARGV[3] member  ARGV[4] expiry (unix ms)
//	returns 1 when taken, 0 when held
var takeJobLease = redis.NewScript(`
if not redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then return 0 end
redis.call("ZADD", KEYS[2], ARGV[4], ARGV[3])
return 1
`)

// renewJobLease extends a job's lease and its entry in the leases set while it is the holder's.
//
//	KEYS[1] lease  KEYS[2] leases set
//	ARGV[1] token  ARGV[2] ttl (ms)  ARGV[3] member  ARGV[4] expiry (unix ms)
var renewJobLease = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("PEXPIRE", KEYS[1], ARGV[2])
redis.call("ZADD", KEYS[2], ARGV[4], ARGV[3])
return 1
`)

// HoldJob implements orchestrator.Store.
func (s *Store) HoldJob(ctx context.Context, id int64, job string, attempt int) (context.Context, func(), error) {
	key, ttl := s.keyJobLease(id, job, attempt), s.jobLeaseTTL
	token := newToken()
	member := fmt.Sprintf("%d|%d|%s|%s", id, attempt, token, job)
	took, err := s.runReplicated(ctx, takeJobLease, []string{key, s.keyLeases()}, token, ttl.Milliseconds(), member,
		time.Now().Add(ttl).UnixMilli()).Int()
	if err != nil {
		unlock.Run(context.WithoutCancel(ctx), s.rdb, []string{key}, token)
		return nil, nil, err
	}
	if took == 0 {
		return nil, nil, orchestrator.ErrLocked
	}
	return s.hold(ctx, key, token, ttl, func(ctx context.Context) (bool, error) {
		n, err := renewJobLease.Run(ctx, s.rdb, []string{key, s.keyLeases()}, token, ttl.Milliseconds(), member,
			time.Now().Add(ttl).UnixMilli()).Int()
		return n == 1, err
	}, func(ctx context.Context) {
		s.rdb.ZRem(ctx, s.keyLeases(), member)
	})
}

// ExpiredLeases implements orchestrator.Store.
func (s *Store) ExpiredLeases(ctx context.Context, before time.Time) ([]orchestrator.Lease, error) {
	members, err := s.rdb.ZRangeByScore(ctx, s.keyLeases(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(before.UnixMilli(), 10), Count: 100,
	}).Result()
	if err != nil {
		return nil, err
	}
	out := make([]orchestrator.Lease, 0, len(members))
	for _, m := range members {
		parts := strings.SplitN(m, "|", 4)
		if len(parts) != 4 {
			s.rdb.ZRem(ctx, s.keyLeases(), m) // not ours to read: nothing can take it over
			continue
		}
		id, err1 := strconv.ParseInt(parts[0], 10, 64)
		attempt, err2 := strconv.Atoi(parts[1])
		if err1 != nil || err2 != nil {
			s.rdb.ZRem(ctx, s.keyLeases(), m)
			continue
		}
		out = append(out, orchestrator.Lease{ID: m, Holder: parts[2],
			Task: orchestrator.Task{Kind: orchestrator.TaskJob, PipelineID: id, Job: parts[3], Attempt: attempt}})
	}
	return out, nil
}

// DropLease implements orchestrator.Store.
func (s *Store) DropLease(ctx context.Context, leaseID string) error {
	return s.rdb.ZRem(ctx, s.keyLeases(), leaseID).Err()
}
