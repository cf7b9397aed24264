package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/redis/go-redis/v9"
)

// common are the flags every gantry benchmark takes.
type common struct {
	redis  string
	db     int
	gantry string
}

func addCommon(fs *flag.FlagSet, getenv func(string) string, db int) *common {
	c := &common{}
	fs.StringVar(&c.redis, "redis", getenv("GANTRY_TEST_REDIS_URL"), "Redis URL (default $GANTRY_TEST_REDIS_URL)")
	// 1001–1010 are left to the benchmarks; every command has its own default, so two can run
	// side by side. The database is emptied before and after.
	fs.IntVar(&c.db, "db", db, "Redis database to use; emptied before and after the run")
	fs.StringVar(&c.gantry, "gantry", "", "gantry binary to run (default: go build ./cmd/gantry into a temporary directory)")
	return c
}

// benchEnv is what a benchmark run owns and gives back at the end: a temporary directory, a
// Redis database, a namespace for its images, projects and containers, and a gantry binary.
type benchEnv struct {
	stdout, stderr io.Writer
	dir            string
	// ns names everything the run creates: registry repositories <registry>/<ns>/…, local
	// images <ns>/…, GitLab projects <ns>/…; cleanup removes by it.
	ns       string
	rdb      *redis.Client
	redisURL string // the benchmark's database
	docker   *client.Client
	bin      string
	registry registryLogin
	busybox  string
	python   string
}

type registryLogin struct{ host, user, password string }

// needs lists what a benchmark requires from scripts/testenv.sh.
type needs struct{ registry, busybox, python bool }

// newEnv checks the environment, empties the Redis database, connects to the engine and builds
// gantry. The caller must call close, also on error paths after it returned.
func newEnv(ctx context.Context, c *common, n needs, getenv func(string) string, stdout, stderr io.Writer) (*benchEnv, error) {
	e := &benchEnv{stdout: stdout, stderr: stderr, ns: "bench-" + randomHex(4),
		busybox: getenv("GANTRY_TEST_BUSYBOX_IMAGE"), python: getenv("GANTRY_TEST_PYTHON_IMAGE"),
		registry: registryLogin{getenv("GANTRY_TEST_REGISTRY"), getenv("GANTRY_TEST_REGISTRY_USER"), getenv("GANTRY_TEST_REGISTRY_PASSWORD")}}
	var missing []string
	for name, absent := range map[string]bool{
		"GANTRY_TEST_REGISTRY(_USER, _PASSWORD)": n.registry && (e.registry.host == "" || e.registry.user == "" || e.registry.password == ""),
		"GANTRY_TEST_BUSYBOX_IMAGE":              n.busybox && e.busybox == "",
		"GANTRY_TEST_PYTHON_IMAGE":               n.python && e.python == "",
	} {
		if absent {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf(`%s not set: scripts/testenv.sh up; eval "$(scripts/testenv.sh env)"`, strings.Join(missing, ", "))
	}
	rdb, err := openRedis(ctx, c.redis, c.db)
	if err != nil {
		return nil, err
	}
	e.rdb = rdb
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("empty redis database %d: %w", c.db, err)
	}
	u, _ := url.Parse(c.redis) // openRedis parsed it already
	u.Path = "/" + strconv.Itoa(c.db)
	e.redisURL = u.String()
	if e.dir, err = os.MkdirTemp("", "gantry-bench-"); err != nil {
		rdb.Close()
		return nil, err
	}
	if e.docker, err = client.New(client.FromEnv); err != nil {
		e.close(ctx)
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if _, err := e.docker.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		e.close(ctx)
		return nil, fmt.Errorf("docker engine: %w", err)
	}
	if e.bin = c.gantry; e.bin == "" {
		if e.bin, err = buildGantry(ctx, e.dir); err != nil {
			e.close(ctx)
			return nil, err
		}
	}
	return e, nil
}

// buildGantry compiles the gantry binary of the module the command runs in.
func buildGantry(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "gantry")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/gantry-ci/gantry/cmd/gantry")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build gantry (run from inside the module, or pass --gantry): %w\n%s", err, out)
	}
	return bin, nil
}

// close removes what the run made: its containers and images on the engine, its Redis data and
// its directory. It runs on a context of its own, because a run stopped by a signal must
// still clean up.
func (e *benchEnv) close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if e.docker != nil {
		if err := e.removeLeftovers(ctx); err != nil {
			fmt.Fprintf(e.stderr, "cleanup: %v\n", err)
		}
		e.docker.Close()
	}
	if e.rdb != nil {
		e.rdb.FlushDB(ctx)
		e.rdb.Close()
	}
	if e.dir != "" {
		os.RemoveAll(e.dir)
	}
}

// removeLeftovers force-removes the run's containers, found by the gantry.project label every
// project of the run carries, then every image tagged under the run's namespace.
func (e *benchEnv) removeLeftovers(ctx context.Context) error {
	var errs []error
	list, err := e.docker.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, c := range list.Items {
		if strings.HasPrefix(c.Labels["gantry.project"], e.ns+"/") {
			if _, err := e.docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	prefixes := []string{e.ns + "/", e.registry.host + "/" + e.ns + "/"}
	images, err := e.docker.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list images: %w", err))...)
	}
	removed := 0
	for _, img := range images.Items {
		for _, tag := range img.RepoTags {
			if e.registry.host != "" && strings.HasPrefix(tag, prefixes[1]) || strings.HasPrefix(tag, prefixes[0]) {
				// PruneChildren takes the untagged layers of the build along.
				if _, err := e.docker.ImageRemove(ctx, tag, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
					errs = append(errs, err)
				} else {
					removed++
				}
			}
		}
	}
	fmt.Fprintf(e.stderr, "cleanup: removed %d image tags under %s\n", removed, strings.Join(prefixes, " and "))
	return errors.Join(errs...)
}

// loadAverage is the first three fields of /proc/loadavg: the machine is shared, so every
// figure is printed beside how busy it was.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// note prints a step of the run with the load average at its start, beside the figures.
func (e *benchEnv) note(format string, args ...any) {
	fmt.Fprintf(e.stdout, "[load %s] %s\n", loadAverage(), fmt.Sprintf(format, args...))
}

// tail is the last n lines of a file, for showing a process's log when something went wrong.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
