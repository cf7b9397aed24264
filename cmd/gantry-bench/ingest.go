package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/gc"
	"github.com/redis/go-redis/v9"
)

// ingestCommand runs the ingest benchmark: floor then intake, --rounds times, in one process so
// that the ratio compares runs made on the same machine minutes apart.
func ingestCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	redisURL := fs.String("redis", getenv("GANTRY_TEST_REDIS_URL"), "Redis URL (default $GANTRY_TEST_REDIS_URL)")
	// Tests take databases 1–1023 in turn (internal/testenv), so one may land on this database
	// while a benchmark runs: the usage says to run it while no test suite shares the Redis.
	db := fs.Int("db", 1000, "Redis database to use; emptied before every run")
	duration := fs.Duration("duration", 10*time.Second, "length of each wrk run (whole seconds)")
	connections := fs.Int("connections", 32, "wrk connections")
	rounds := fs.Int("rounds", 3, "floor/intake pairs to run")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the last round's intake run to this file, and of its floor run to this file + \".floor\"")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *duration < time.Second || *connections < 1 || *rounds < 1 {
		return errors.New("--duration must be at least 1s, --connections and --rounds at least 1")
	}
	wrkPath, err := exec.LookPath("wrk")
	if err != nil {
		return errors.New("wrk is not on PATH: install it (apt-get install wrk)")
	}
	rdb, err := openRedis(ctx, *redisURL, *db)
	if err != nil {
		return err
	}
	defer rdb.Close()
	dir, err := os.MkdirTemp("", "gantry-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	b := &bench{rdb: rdb, cpuprofile: *cpuprofile, load: load{
		wrk: wrkPath, threads: min(2, *connections), connections: *connections, duration: *duration,
		dir: dir, token: randomHex(16), nonce: randomHex(4),
	}}
	if err := b.load.writeFiles(); err != nil {
		return err
	}
	// Both servers run in this process with the collector settings `gantry serve` has.
	fmt.Fprintf(stdout, "%s\nwrk %s\n", gc.Tune(getenv), strings.Join(b.load.args("URL"), " "))
	floorT := target{profileSuffix: ".floor", count: floorCount, build: func() (http.Handler, func(), error) { return floor(rdb), func() {}, nil }}
	intakeT := target{count: intakeCount, build: func() (http.Handler, func(), error) { return intake(rdb, b.load.token) }}
	var results []round
	for i := 1; i <= *rounds; i++ {
		var r round
		if r.floor, err = b.measure(ctx, floorT, i == *rounds); err != nil {
			return fmt.Errorf("round %d, floor: %w", i, err)
		}
		if r.intake, err = b.measure(ctx, intakeT, i == *rounds); err != nil {
			return fmt.Errorf("round %d, intake: %w", i, err)
		}
		results = append(results, r)
		fmt.Fprintf(stderr, "round %d: floor %.0f req/s, intake %.0f req/s\n", i, r.floor.wrk.RPS(), r.intake.wrk.RPS())
	}
	return report(stdout, results, *connections)
}

// openRedis connects to the benchmark's database and fails with what to do when it cannot.
func openRedis(ctx context.Context, url string, db int) (*redis.Client, error) {
	if url == "" {
		return nil, errors.New(`no Redis: pass --redis URL or set GANTRY_TEST_REDIS_URL (scripts/testenv.sh up; eval "$(scripts/testenv.sh env)")`)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, errors.New("--redis is not a valid Redis URL") // the URL may hold a password
	}
	opt.DB = db
	rdb := redis.NewClient(opt)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pingCtx).Err(); err != nil {
		rdb.Close()
		if strings.Contains(err.Error(), "DB index is out of range") {
			return nil, fmt.Errorf("redis at %s has no database %d (scripts/testenv.sh starts it with 1024; or pass --db): %w", opt.Addr, db, err)
		}
		return nil, fmt.Errorf("redis at %s: %w", opt.Addr, err)
	}
	return rdb, nil
}

// bench holds what every run shares.
type bench struct {
	rdb        *redis.Client
	load       load
	cpuprofile string
}

// measurement is one wrk run against one server.
type measurement struct {
	wrk wrkResult
	// answered2xx is what the server itself counted; stored is what Redis holds afterwards.
	answered2xx, stored int64
}

// round is a floor run and the intake run that followed it.
type round struct{ floor, intake measurement }

// target is one of the two servers: how to build it and how to count what it kept.
type target struct {
	// profileSuffix is appended to --cpuprofile for this target's profile.
	profileSuffix string
	build         func() (h http.Handler, release func(), err error)
	count         func(context.Context, *redis.Client) (int64, error)
}

func floorCount(ctx context.Context, rdb *redis.Client) (int64, error) {
	return rdb.LLen(ctx, floorKey).Result()
}

func intakeCount(ctx context.Context, rdb *redis.Client) (int64, error) {
	return rdb.ZCard(ctx, pipelinesKey).Result()
}

// measure empties the database, serves a fresh t, loads it with wrk, waits for the last request
// to finish and counts what was kept. With profile set, the CPU profile covers the wrk run.
func (b *bench) measure(ctx context.Context, t target, profile bool) (measurement, error) {
	if err := b.rdb.FlushDB(ctx).Err(); err != nil {
		return measurement{}, fmt.Errorf("empty redis database: %w", err)
	}
	h, release, err := t.build()
	if err != nil {
		return measurement{}, err
	}
	defer release()
	srv, err := serve(h)
	if err != nil {
		return measurement{}, err
	}
	stopProfile := func() {}
	if profile && b.cpuprofile != "" {
		if stopProfile, err = startProfile(b.cpuprofile + t.profileSuffix); err != nil {
			srv.stop(ctx)
			return measurement{}, err
		}
	}
	res, runErr := b.load.run(ctx, srv.url)
	stopProfile()
	if err := srv.stop(ctx); err != nil && runErr == nil {
		runErr = fmt.Errorf("stop server: %w", err)
	}
	if runErr != nil {
		return measurement{}, runErr
	}
	stored, err := t.count(ctx, b.rdb)
	if err != nil {
		return measurement{}, fmt.Errorf("count stored events: %w", err)
	}
	return measurement{wrk: res, answered2xx: srv.ok.Load(), stored: stored}, nil
}

func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
