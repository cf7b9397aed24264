package store

import (
	"strconv"
	"strings"
)

// Every Redis key gantry writes is built here, under one prefix, so that a test or a second
// installation can share a Redis without touching anything else. (asynq keeps its own keys under
// "asynq:"; those are separated by database number, not prefix.)

func (s *Store) keySeq() string { return s.prefix + ":pipeline:seq" }

// keyPipeline is the hash of one pipeline: its trigger, its own fields, and one field per job.
func (s *Store) keyPipeline(id int64) string {
	return s.prefix + ":pipeline:" + strconv.FormatInt(id, 10)
}

// keyIndex is the sorted set of all pipeline ids (score = id), newest last.
func (s *Store) keyIndex() string { return s.prefix + ":pipelines" }

func (s *Store) keyLog(id int64, job string, attempt int) string {
	return s.keyPipeline(id) + ":log:" + job + ":" + strconv.Itoa(attempt)
}

// keyReleased holds the id of the newest pipeline released from a project's branch.
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
	jobPrefix      = "job:"
	statePrefix    = "state:"
)
