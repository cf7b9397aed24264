package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/jobs"
	"go.uber.org/zap"
)

// healthcheckCommand is `gantry healthcheck`, a container's HEALTHCHECK: gantry's image has no
// curl and no shell, and no other command asks /readyz without an API token. It exits 0 when:
//
//   - (default) the HTTP side answers 200 to GET /readyz, at the address server.listen names
//     (or --url), within --timeout;
//   - (--worker) Redis and the Docker engine answer this process with the config's settings,
//     which is what a worker needs: a worker serves no HTTP to ask.
//
// What it printed last shows in `docker inspect` under State.Health.
func healthcheckCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default $GANTRY_CONFIG or configs/gantry.yaml)")
	worker := fs.Bool("worker", false, "check Redis and the Docker engine, as a worker needs them, instead of /readyz")
	rawURL := fs.String("url", "", "GET this URL instead of /readyz at server.listen")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("healthcheck: unexpected argument %q", fs.Arg(0))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	nop := zap.NewNop()

	if *worker {
		cfg, err := loadConfig(*configPath, getenv, nop)
		if err != nil {
			return err
		}
		if cfg.Redis.URL.Value() == "" {
			return errors.New("healthcheck: redis.url is empty: a worker needs the Redis its server shares")
		}
		_, closeRedis, err := openRedis(ctx, cfg.Redis.URL.Value(), nop) // pings
		if err != nil {
			return err
		}
		closeRedis()
		docker, err := jobs.Connect(ctx, dockerOptions(cfg, nop)) // pings
		if err != nil {
			return fmt.Errorf("docker engine: %w", err)
		}
		docker.Close()
		fmt.Fprintln(stdout, "redis ok, docker ok")
		return nil
	}

	target := *rawURL
	if target == "" {
		cfg, err := loadConfig(*configPath, getenv, nop)
		if err != nil {
			return err
		}
		if target, err = readyzURL(cfg.Server.Listen); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d %s", target, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(body)))
	return nil
}

// readyzURL is the /readyz URL of a process listening on listen (host:port): an empty or
// wildcard host is reached on the loopback address.
func readyzURL(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("healthcheck: server.listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}
