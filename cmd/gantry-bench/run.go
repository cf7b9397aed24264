package main

import (
	"context"
	"errors"
	"fmt"
	"io"
)

const usage = `gantry-bench — benchmark figures of gantry on this machine

Usage:
  gantry-bench ingest [--redis URL] [--db N] [--duration 10s] [--connections 32] [--rounds 3] [--cpuprofile FILE]
      the full webhook intake against a floor handler (Echo + one Redis write), same payload
      and same wrk load, alternately for each round; exits 1 when a target is missed

  gantry-bench overhead [--rounds 5] [--sample testdata/sample]
      the sample project's master pipeline (build on a reused base, unit and lint tests, release to
      the test registry) through ` + "`gantry serve`" + `, against the same jobs.Build/Test/Release calls
      made directly; gantry and direct alternate, one round each, after one warm-up pipeline.
      Wall time: hook sent → last job's end (gantry); first call → release done (direct).
      Target: median gantry / median direct ≤ 1.10

  gantry-bench pickup [--pipelines 200] [--inflight 2] [--concurrency 4]
      webhook 202 read by the client → that pipeline's build request reaching the engine, seen by a
      logging proxy put on the worker's docker.host; busybox pipelines posted one at a time to
      ` + "`gantry server`" + ` + one ` + "`gantry worker`" + `. Targets: p50 ≤ 20ms, p99 ≤ 100ms

  gantry-bench codeonly [--rounds 3] [--sample testdata/sample]
      the sample project's master pipeline, cold (changed dependencies: the base is built and
      pushed to a new repository) and after a code-only change (base reused); wall time and the
      build job's time. Checks: the code-only build reuses the base and is faster than cold

  gantry-bench throughput [--pipelines 200] [--workers 2] [--concurrency 4] [--containers 200]
      busybox pipelines (build + one ` + "`true`" + ` test, no release) posted at once to ` + "`gantry server`" + `
      and run by --workers ` + "`gantry worker`" + ` processes: pipelines per minute, first 202 → last job's end,
      against the engine's own rate of ` + "`busybox true`" + ` containers (create, start, wait, remove,
      workers×concurrency at a time) measured before and after in the same run

  gantry-bench soak [--pipelines 100000] [--window 2000] [--concurrency 8]
      pushes through the real intake, each pipeline run to its end by the real engine and store
      (jobs succeed at once) and expired by gantry's housekeeping with the retention at 2 s:
      Redis memory after the first window and at the end (target within 10%), the intake's p99
      and the supersede step's cost in the first and last windows (targets within 20%)

Redis defaults to $GANTRY_TEST_REDIS_URL (scripts/testenv.sh up; eval "$(scripts/testenv.sh env)").
The database --db (ingest 1000, overhead 1001, pickup 1002, codeonly 1003, throughput 1004) is
emptied before every run: run the benchmark while no test suite uses the same Redis, since tests
take its databases in turn. ingest needs wrk on PATH. The pipeline benchmarks need the rest of the
test environment (engine, registry, GANTRY_TEST_* images), build gantry with go build unless given
--gantry BINARY, run it as separate processes against the GitLab double, print the load average
before each step, and remove their images, containers and Redis data at the end.
`

// run is the whole program; main only adds the process's signals, arguments and environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "soak":
		return soakCommand(ctx, args[1:], getenv, stdout, stderr)
	case "ingest":
		return ingestCommand(ctx, args[1:], getenv, stdout, stderr)
	case "overhead":
		return overheadCommand(ctx, args[1:], getenv, stdout, stderr)
	case "pickup":
		return pickupCommand(ctx, args[1:], getenv, stdout, stderr)
	case "codeonly":
		return codeonlyCommand(ctx, args[1:], getenv, stdout, stderr)
	case "throughput":
		return throughputCommand(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
