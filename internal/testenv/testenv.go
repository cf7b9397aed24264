// Package testenv gives tests the real services that scripts/testenv.sh starts: Redis, the
// registry with a login, and the local base images. A missing service skips the test on a
// developer's machine and fails it under CI=true, so CI can never pass by skipping.
package testenv

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Need returns an environment variable set by scripts/testenv.sh, or stops the test.
func Need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	msg := name + " is not set: run `eval \"$(scripts/testenv.sh env)\"` after `scripts/testenv.sh up`"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// databases is how many Redis databases scripts/testenv.sh configures; 0 is kept for the
// counter that hands them out.
const databases = 1024

// RedisURL returns the URL of a Redis database of the test's own, emptied before use, so tests
// (and asynq's fixed key names) never meet. The database is handed out by a counter in database 0.
func RedisURL(t testing.TB) string {
	t.Helper()
	base := Need(t, "GANTRY_TEST_REDIS_URL")
	opt, err := redis.ParseURL(base)
	if err != nil {
		t.Fatalf("GANTRY_TEST_REDIS_URL: %v", err)
	}
	ctx := context.Background()
	c0 := redis.NewClient(opt)
	defer c0.Close()
	n, err := c0.Incr(ctx, "gantry-test:next-db").Result()
	if err != nil {
		t.Fatalf("redis at %s: %v", base, err)
	}
	opt.DB = int(n%(databases-1)) + 1
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("flush redis db %d: %v", opt.DB, err)
	}
	return strings.TrimRight(base, "/") + "/" + strconv.Itoa(opt.DB)
}

// Redis returns a client on a database of the test's own (see RedisURL), closed at cleanup.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// Registry is the test registry and its login.
type Registry struct {
	Host, User, Password string
}

// NeedRegistry returns the test registry.
func NeedRegistry(t testing.TB) Registry {
	t.Helper()
	return Registry{
		Host:     Need(t, "GANTRY_TEST_REGISTRY"),
		User:     Need(t, "GANTRY_TEST_REGISTRY_USER"),
		Password: Need(t, "GANTRY_TEST_REGISTRY_PASSWORD"),
	}
}

// NeedBinary returns the path of a program scripts/testenv.sh installs, or stops the test the
// way Need does.
func NeedBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " is not installed: run scripts/testenv.sh up"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
