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

Redis defaults to $GANTRY_TEST_REDIS_URL (scripts/testenv.sh up; eval "$(scripts/testenv.sh env)").
The database --db (default 1000) is emptied before every run: run the benchmark while no test
suite uses the same Redis, since tests take its databases in turn. wrk must be on PATH.
`

// run is the whole program; main only adds the process's signals, arguments and environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "ingest":
		return ingestCommand(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
