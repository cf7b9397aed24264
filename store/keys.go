package store

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Every Redis key gantry writes is built here, under one prefix, so that a test or a second
// installation can share a Redis without touching anything else. (asynq keeps its own keys under
// "asynq:"; those are separated by database number, not prefix.)

func (s *Store) keySeq() string { return s.prefix + ":pipeline:seq" }

// keyPipeline is the hash of one pipeline: its trigger, its own fields, and one field per job.
func (s *Store) keyPipeline(id int64) string {
	return s.keyPipelinePrefix() + strconv.FormatInt(id, 10)
}

// keyPipelinePrefix is keyPipeline without the id, for the script that makes up the id.
func (s *Store) keyPipelinePrefix() string { return s.prefix + ":pipeline:" }

// keyIndex is the sorted set of all pipeline ids (score = id), newest last.
func (s *Store) keyIndex() string { return s.prefix + ":pipelines" }

// keyLog is a job attempt's log text: the tail of its output, at most the log cap.
func (s *Store) keyLog(id int64, job string, attempt int) string {
	return s.keyPipeline(id) + ":log:" + job + ":" + strconv.Itoa(attempt)
}

// keyLogDropped counts the bytes cut from the head of a job attempt's log to keep it under the
// cap; with the length of keyLog it gives each byte an offset that never moves backwards.
func (s *Store) keyLogDropped(id int64, job string, attempt int) string {
	return s.keyLog(id, job, attempt) + ":dropped"
}

// keyOutbox is the list of commit statuses of a pipeline waiting to be posted, oldest first.
func (s *Store) keyOutbox(id int64) string { return s.keyPipeline(id) + ":outbox" }

// keyStatusLock is held by the one worker posting a pipeline's statuses.
func (s *Store) keyStatusLock(id int64) string { return s.keyPipeline(id) + ":status-lock" }

// keyUnstarted is the sorted set of pipelines whose first task has not run (score = stored at,
// unix milliseconds).
func (s *Store) keyUnstarted() string { return s.prefix + ":unstarted" }

// keyWaiting is the sorted set of pipelines waiting for approval (score = when the wait expires,
// unix milliseconds; 0 once decided, until the decision is carried out).
func (s *Store) keyWaiting() string { return s.prefix + ":waiting" }

// keyOpen is the sorted set of unfinished pipelines (score = stored at, unix milliseconds):
// what the sweep drives on when a step between two states was lost. MarkFinished takes a
// pipeline off it.
func (s *Store) keyOpen() string { return s.prefix + ":open" }

// keyOutboxes is the sorted set of pipelines whose status outbox is not empty (score = when an
// entry was last added, unix milliseconds), so the sweep can queue the posting of an outbox
// whose task was lost.
func (s *Store) keyOutboxes() string { return s.prefix + ":outboxes" }

// keyNew is the list of stored pipelines no process has taken yet (see WaitNew).
func (s *Store) keyNew() string { return s.prefix + ":new" }

// keyDedup remembers the pipeline of a delivery or of a commit (orchestrator.Dedup); the value is
// hashed so any text makes a tidy key.
func (s *Store) keyDedup(kind, value string) string {
	sum := sha256.Sum256([]byte(value))
	return s.prefix + ":dedup:" + kind + ":" + hex.EncodeToString(sum[:16])
}

// keyBranch is the sorted set of a project branch's unfinished push pipelines (score = id), for
// superseding: a pipeline leaves it when it finishes (MarkFinished), so a push's supersede costs
// what is still running on the branch, not the branch's history.
func (s *Store) keyBranch(project, branch string) string {
	return s.prefix + ":branch:" + strings.ToLower(project) + ":" + branch
}

// keyHead is the commit of a project branch's newest push (or reconcile) pipeline, which
// Reconcile compares with GitLab's head; one key per branch ever pushed.
func (s *Store) keyHead(project, branch string) string {
	return s.prefix + ":head:" + strings.ToLower(project) + ":" + branch
}

// keyReleaseLock is held while a release of a project branch runs.
func (s *Store) keyReleaseLock(project, branch string) string {
	return s.prefix + ":release-lock:" + strings.ToLower(project) + ":" + branch
}

// channelCancel is the pub/sub channel announcing pipelines whose jobs were cancelled. Channels
// are shared by all databases of a Redis server, so the database number is part of the name.
func (s *Store) channelCancel() string {
	db := 0
	if c, ok := s.rdb.(*redis.Client); ok {
		db = c.Options().DB
	}
	return s.prefix + ":cancel:" + strconv.Itoa(db)
}

// keyReleasedCommit holds the commit a project's branch last released.
func (s *Store) keyReleasedCommit(project, branch string) string {
	return s.prefix + ":released-commit:" + strings.ToLower(project) + ":" + branch
}

// keyReleased is the legacy release mark: the id of the newest pipeline released from a
// project's branch, written before releases were kept as commits. It is only read (Released).
func (s *Store) keyReleased(project, branch string) string {
	return s.prefix + ":released:" + strings.ToLower(project) + ":" + branch
}

// Fields of a pipeline hash.
const (
	fieldTrigger   = "trigger"
	fieldCreatedAt = "created_at"
	fieldJobs      = "jobs" // job names in pipeline order, comma separated
	fieldGitLabID  = "gitlab_pipeline_id"
	fieldImage     = "image"
	fieldImageRef  = "image_ref"
	fieldDigest    = "digest"
	fieldStatusSeq = "status_seq" // last outbox sequence number given out
	fieldApproval  = "approval"   // the wait for approval, JSON, without its verdict
	fieldVerdict   = "verdict"    // the decision on it, JSON, written once
	// fieldMergeRequest is the merge request attached to a pipeline by a later event for its commit.
	fieldMergeRequest = "merge_request"
	// fieldTestsPlanned marks a pipeline whose test jobs were planned from its commit's
	// pipeline file; fieldRepoFile holds that file as read, absent when there was none.
	fieldTestsPlanned = "tests_planned"
	fieldRepoFile     = "repo_file"
	// fieldReleaseTrigger is the trigger that added the release job to a pipeline planned
	// without one (orchestrator.Pipeline.ReleaseTrigger), JSON.
	fieldReleaseTrigger = "release_trigger"
	jobPrefix           = "job:"
	statePrefix         = "state:"
	attemptPrefix       = "attempt:" // a job's attempt, checked with its state by swapJob
)
