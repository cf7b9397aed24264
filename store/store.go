// Package store keeps gantry's state in Redis: pipeline records, job logs, release marks, and
// the asynq work queue. It implements orchestrator.Store and orchestrator.Queue.
package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Store is gantry's Redis.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	queue  *asynq.Client
	// inspector reads what asynq archived, for Abandoned.
	inspector *asynq.Inspector
	// retries is how many times a task is retried after an infrastructure failure.
	retries int
	// logCap is how many bytes of each job attempt's log are kept.
	logCap int
	// creates sends CreatePipeline's scripts to Redis in batches.
	creates *createBatcher
	// releaseLockTTL is how long a release lock outlives its last renewal.
	releaseLockTTL time.Duration
	// jobLeaseTTL is how long a job's lease outlives its last renewal.
	jobLeaseTTL time.Duration
}

// Options configure a Store.
type Options struct {
	// Prefix starts every key gantry writes; default "gantry".
	Prefix string
	// Retries is how many times a task is retried after an infrastructure failure; default 2.
	Retries *int
	// LogCap is how many bytes of each job attempt's log are kept (the tail); default
	// DefaultLogCap.
	LogCap int
	// ReleaseLockTTL is how long a release lock outlives its holder's last renewal, which
	// comes every third of it; default DefaultReleaseLockTTL.
	ReleaseLockTTL time.Duration
	// JobLeaseTTL is how long a running job's lease outlives its worker's last renewal, which
	// comes every third of it; default DefaultJobLeaseTTL.
	JobLeaseTTL time.Duration
	// MinReplicas, when above 0, makes CreatePipeline succeed only once that many replicas
	// acknowledge its writes, waiting at most ReplicaTimeout (default 1s);
	// otherwise it fails with orchestrator.ErrNotReplicated.
	MinReplicas    int
	ReplicaTimeout time.Duration
}

// defaultReplicaTimeout is how long CreatePipeline waits for Options.MinReplicas by default:
// never 0, which WAIT takes as forever.
const defaultReplicaTimeout = time.Second

// New wraps a Redis client. The caller keeps ownership of rdb and closes it after Close.
func New(rdb redis.UniversalClient, o Options) *Store {
	s := &Store{rdb: rdb, prefix: o.Prefix, queue: asynq.NewClientFromRedisClient(rdb), inspector: asynq.NewInspectorFromRedisClient(rdb), retries: 2, logCap: cmp.Or(o.LogCap, DefaultLogCap), creates: newCreateBatcher(rdb, o.MinReplicas, cmp.Or(o.ReplicaTimeout, defaultReplicaTimeout)),
		releaseLockTTL: cmp.Or(o.ReleaseLockTTL, DefaultReleaseLockTTL), jobLeaseTTL: cmp.Or(o.JobLeaseTTL, DefaultJobLeaseTTL)}
	if s.prefix == "" {
		s.prefix = "gantry"
	}
	if o.Retries != nil {
		s.retries = *o.Retries
	}
	return s
}

// Close releases the queue client and stops creating pipelines; the Redis client stays open.
func (s *Store) Close() error {
	s.creates.close()
	return s.queue.Close()
}

// Ping checks that Redis answers, for readiness.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// Pipeline loads one pipeline with its jobs.
func (s *Store) Pipeline(ctx context.Context, id int64) (*orchestrator.Pipeline, error) {
	h, err := s.rdb.HGetAll(ctx, s.keyPipeline(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("load pipeline %d: %w", id, err)
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("pipeline %d: %w", id, orchestrator.ErrNotFound)
	}
	return decodePipeline(id, h)
}

// UpdatePipeline stores the pipeline's image, digest and GitLab pipeline id. Only fields that
// are set are written, so two workers updating different fields never undo each other.
func (s *Store) UpdatePipeline(ctx context.Context, p *orchestrator.Pipeline) error {
	fields := map[string]any{}
	for k, v := range map[string]string{fieldImage: p.Image, fieldImageRef: p.ImageRef, fieldDigest: p.Digest} {
		if v != "" {
			fields[k] = v
		}
	}
	if p.GitLabPipelineID != 0 {
		fields[fieldGitLabID] = p.GitLabPipelineID
	}
	if len(fields) == 0 {
		return nil
	}
	if err := s.rdb.HSet(ctx, s.keyPipeline(p.ID), fields).Err(); err != nil {
		return fmt.Errorf("update pipeline %d: %w", p.ID, err)
	}
	return nil
}

// Released implements orchestrator.Store. A branch last released before releases were kept as
// commits has a pipeline id under the legacy key: its commit is read from that pipeline's
// record while the record is kept; after that it is unknown ("") and the branch's next release
// sets it again. Refusing every release of such a branch instead would need an operator.
func (s *Store) Released(ctx context.Context, project, branch string) (string, error) {
	sha, err := s.rdb.Get(ctx, s.keyReleasedCommit(project, branch)).Result()
	if err == nil || !errors.Is(err, redis.Nil) {
		return sha, err
	}
	id, err := s.rdb.Get(ctx, s.keyReleased(project, branch)).Int64()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("legacy release mark of %s %s: %w", project, branch, err)
	}
	p, err := s.Pipeline(ctx, id)
	if errors.Is(err, orchestrator.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return p.Trigger.SHA, nil
}

// MarkReleased implements orchestrator.Store.
func (s *Store) MarkReleased(ctx context.Context, project, branch, sha string) error {
	return s.rdb.Set(ctx, s.keyReleasedCommit(project, branch), sha, 0).Err()
}
