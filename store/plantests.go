package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/gantry-ci/gantry/orchestrator"
)

// planTests records the test jobs planned from a commit's pipeline file, once.
//
//	KEYS[1] pipeline hash
//	ARGV[1] "1" when ARGV[2] is the file's content, "0" when the commit has no file
//	ARGV[3] the job names in pipeline order, comma separated
//	ARGV[4..] per new job: its name, its JSON, its state, its attempt
//	returns 1 when recorded, 0 when the pipeline's tests were planned already, -1 when the
//	pipeline does not exist
//
// A stored job that ARGV[3] does not name goes after them: the release that a push added
// (createPipeline) after the planner read the pipeline, which comes last anyway.
var planTests = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 0 then return -1 end
if redis.call("HEXISTS", KEYS[1], "tests_planned") == 1 then return 0 end
local order, named = ARGV[3], {}
for name in string.gmatch(ARGV[3], "[^,]+") do named[name] = true end
for name in string.gmatch(redis.call("HGET", KEYS[1], "jobs") or "", "[^,]+") do
  if not named[name] then order = order .. "," .. name end
end
redis.call("HSET", KEYS[1], "tests_planned", "1", "jobs", order)
if ARGV[1] == "1" then redis.call("HSET", KEYS[1], "repo_file", ARGV[2]) end
for i = 4, #ARGV, 4 do
  redis.call("HSET", KEYS[1], "job:" .. ARGV[i], ARGV[i+1], "state:" .. ARGV[i], ARGV[i+2], "attempt:" .. ARGV[i], ARGV[i+3])
end
return 1
`)

// PlanTests implements orchestrator.Store.
func (s *Store) PlanTests(ctx context.Context, pipelineID int64, file []byte, jobs []orchestrator.Job, order []string) (bool, error) {
	hasFile := "0"
	if file != nil {
		hasFile = "1"
	}
	args := []any{hasFile, string(file), strings.Join(order, ",")}
	for _, j := range jobs {
		b, err := json.Marshal(j)
		if err != nil {
			return false, err
		}
		args = append(args, j.Name, b, string(j.State), j.Attempt)
	}
	n, err := planTests.Run(ctx, s.rdb, []string{s.keyPipeline(pipelineID)}, args...).Int()
	switch {
	case err != nil:
		return false, fmt.Errorf("plan tests of pipeline %d: %w", pipelineID, err)
	case n < 0:
		return false, fmt.Errorf("pipeline %d: %w", pipelineID, orchestrator.ErrNotFound)
	}
	return n == 1, nil
}
