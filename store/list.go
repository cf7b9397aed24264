package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/redis/go-redis/v9"
)

// Filter selects pipelines for List. Empty fields match everything.
type Filter struct {
	// Project matches the project path without regard to case, as GitLab treats paths.
	Project string
	// Ref matches the branch or tag name exactly.
	Ref string
	// SHA matches a prefix of the commit, so the short SHA GitLab shows finds its pipelines.
	SHA string
	// Status matches the pipeline's state (which follows from its jobs).
	Status orchestrator.State
	// Limit is how many pipelines to return: DefaultListLimit when 0, at most MaxListLimit.
	Limit int
}

// List limits.
const (
	DefaultListLimit = 20
	MaxListLimit     = 100
	// ListScanLimit bounds how many pipelines one List call reads, newest first, looking for
	// matches. A filter that matches nothing among the newest ListScanLimit pipelines returns
	// what it found: a listing costs at most that many records whatever the history's length,
	// and the pipelines people look for are recent ones.
	ListScanLimit = 2000
	// listBatch is how many records are read in one round trip.
	listBatch = 100
)

// List returns the pipelines that match f, newest first. It walks the index of all pipelines
// from the newest in batches, each read in one pipelined round trip, until it has f.Limit
// matches or has read ListScanLimit pipelines. A record that cannot be decoded is left out of
// the listing (Pipeline reports its error when it is asked for by id), so one bad record never
// hides all the others.
func (s *Store) List(ctx context.Context, f Filter) ([]*orchestrator.Pipeline, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	out := make([]*orchestrator.Pipeline, 0, limit)
	for start := int64(0); start < ListScanLimit && len(out) < limit; start += listBatch {
		ids, err := s.rdb.ZRevRange(ctx, s.keyIndex(), start, min(start+listBatch, ListScanLimit)-1).Result()
		if err != nil {
			return nil, fmt.Errorf("list pipelines: %w", err)
		}
		if len(ids) == 0 {
			break
		}
		batch, err := s.loadMany(ctx, parseIDs(ids))
		if err != nil {
			return nil, err
		}
		for _, p := range batch {
			if f.matches(p) && len(out) < limit {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// loadMany reads pipelines in one round trip, in the order of ids, leaving out those that are
// gone or do not decode.
func (s *Store) loadMany(ctx context.Context, ids []int64) ([]*orchestrator.Pipeline, error) {
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = pipe.HGetAll(ctx, s.keyPipeline(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load pipelines: %w", err)
	}
	out := make([]*orchestrator.Pipeline, 0, len(ids))
	for i, cmd := range cmds {
		h := cmd.Val()
		if len(h) == 0 {
			continue
		}
		if p, err := decodePipeline(ids[i], h); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

func (f Filter) matches(p *orchestrator.Pipeline) bool {
	t := p.Trigger
	return (f.Project == "" || strings.EqualFold(f.Project, t.Project)) &&
		(f.Ref == "" || f.Ref == t.Ref) &&
		(f.SHA == "" || strings.HasPrefix(t.SHA, strings.ToLower(f.SHA))) &&
		(f.Status == "" || f.Status == p.State())
}

// decodePipeline builds a pipeline from its hash, the way Pipeline does; a test keeps the two
// in agreement.
func decodePipeline(id int64, h map[string]string) (*orchestrator.Pipeline, error) {
	p := &orchestrator.Pipeline{ID: id, Image: h[fieldImage], ImageRef: h[fieldImageRef], Digest: h[fieldDigest]}
	if err := json.Unmarshal([]byte(h[fieldTrigger]), &p.Trigger); err != nil {
		return nil, fmt.Errorf("pipeline %d trigger: %w", id, err)
	}
	p.CreatedAt, _ = time.Parse(time.RFC3339Nano, h[fieldCreatedAt])
	p.GitLabPipelineID, _ = strconv.ParseInt(h[fieldGitLabID], 10, 64)
	p.AttachedMergeRequestIID, _ = strconv.ParseInt(h[fieldMergeRequest], 10, 64)
	if rt, ok := h[fieldReleaseTrigger]; ok {
		p.ReleaseTrigger = &orchestrator.Trigger{}
		if err := json.Unmarshal([]byte(rt), p.ReleaseTrigger); err != nil {
			return nil, fmt.Errorf("pipeline %d release trigger: %w", id, err)
		}
	}
	a, err := decodeApproval(id, h)
	if err != nil {
		return nil, err
	}
	p.Approval = a
	p.TestsPlanned = h[fieldTestsPlanned] != ""
	if f, ok := h[fieldRepoFile]; ok {
		p.RepoFile = []byte(f)
	}
	for _, name := range strings.Split(h[fieldJobs], ",") {
		var j orchestrator.Job
		if err := json.Unmarshal([]byte(h[jobPrefix+name]), &j); err != nil {
			return nil, fmt.Errorf("pipeline %d job %s: %w", id, name, err)
		}
		p.Jobs = append(p.Jobs, j)
	}
	return p, nil
}
