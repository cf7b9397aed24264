package store

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// runReplicated runs a script, and when the store waits for replicas (Options.MinReplicas),
// WAITs for them on the same connection before it returns (docs/redis.md §1). It is how a job's
// claim and its moves reach the replicas before the engine acts on them — starts a container,
// posts a status: Redis replicates asynchronously, and a failover to a replica that had not yet
// taken a claim would let another worker make it again and run the job twice. Too few replicas
// within the wait is not an error: the intake already refuses webhooks then, and work under way
// goes on as it would with no replicas asked for. A WAIT that fails (the connection went with
// the master) is, since what the script did is then unknown.
//
// The script goes as EVAL, not EVALSHA: in a pipeline a NOSCRIPT could not be answered by
// loading it and sending it again before the WAIT.
func (s *Store) runReplicated(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	if s.creates.replicas == 0 {
		return script.Run(ctx, s.rdb, keys, args...)
	}
	var cmd, wait *redis.Cmd
	s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { // errors are read per command below
		cmd = script.Eval(ctx, p, keys, args...)
		wait = p.Do(ctx, "WAIT", s.creates.replicas, s.creates.replicaWait.Milliseconds())
		return nil
	})
	if cmd.Err() == nil && wait.Err() != nil {
		cmd.SetErr(fmt.Errorf("wait for %d replicas: %w", s.creates.replicas, wait.Err()))
	}
	return cmd
}
