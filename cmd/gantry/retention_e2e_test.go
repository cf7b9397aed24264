package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// TestRetentionEndToEnd: with the retention shortened, a finished pipeline's logs go first and
// then, once the sweep (every 30 s) removed its image, the pipeline itself, through `gantry
// serve`'s own housekeeping: the API answers 404 and Redis holds nothing of it.
func TestRetentionEndToEnd(t *testing.T) {
	t.Parallel()
	redisURL := testenv.RedisURL(t)
	g, repo := startBusyboxProjectWith(t, redisURL, settings{
		redis: ", pipeline_retention: 4s, log_retention: 1s, housekeeping_every: 1s", top: "workers: {image_retention: 1s}\n",
	}, "")
	// The test Redis keeps nothing on disk (scripts/testenv.sh): gantry says so at start.
	if !strings.Contains(g.logs.String(), "REDIS KEEPS NOTHING ON DISK") {
		t.Error("no warning about a Redis without persistence")
	}
	sha := repo.Git("rev-parse", "HEAD")
	id := g.push(t, "main", zero, sha)
	if p := g.waitFinished(t, id, 2*time.Minute); p.State != "success" {
		t.Fatalf("pipeline = %s", p.State)
	}
	opt, err := redis.ParseURL(redisURL)
	must(t, err)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	record := "gantry:pipeline:" + strconv.FormatInt(id, 10)
	keysOf := func() []string {
		keys, err := rdb.Keys(context.Background(), record+":*").Result()
		must(t, err)
		if n, _ := rdb.Exists(context.Background(), record).Result(); n == 1 {
			keys = append(keys, record)
		}
		return keys
	}
	get := func(path string) int {
		req, _ := http.NewRequest(http.MethodGet, g.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+g.apiToken)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	logsGone, gone := false, false
	for deadline := time.Now().Add(90 * time.Second); !gone; time.Sleep(200 * time.Millisecond) {
		code := get("/api/v1/pipelines/" + strconv.FormatInt(id, 10))
		logsGone = logsGone || (code == http.StatusOK && len(keysOf()) == 1) // the record alone
		gone = code == http.StatusNotFound
		if time.Now().After(deadline) {
			t.Fatalf("pipeline %d still kept 90 s after it ended (keys %v)", id, keysOf())
		}
	}
	if !logsGone {
		t.Error("the logs were not removed before the pipeline")
	}
	if keys := keysOf(); len(keys) != 0 {
		t.Errorf("keys of the expired pipeline left: %v", keys)
	}
	for _, set := range []string{"gantry:pipelines", "gantry:ended", "gantry:logged", "gantry:finished"} { // finished: the image is gone
		if _, err := rdb.ZScore(context.Background(), set, strconv.FormatInt(id, 10)).Result(); err == nil {
			t.Errorf("the expired pipeline is still in %s", set)
		}
	}
}
