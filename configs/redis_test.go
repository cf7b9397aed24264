package configs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/configs"
)

// TestRedisHighAvailability: redis.url takes Sentinel URLs (plain and TLS) besides redis://,
// rediss:// and unix://; a sentinel URL must name its master; min_replicas and replica_timeout
// are checked, and an unset or zero replica_timeout is 1s, never WAIT's "forever". No message
// quotes the URL, which may hold a password.
func TestRedisHighAvailability(t *testing.T) {
	t.Parallel()
	const password = "s3cret-redis-password"
	for _, tt := range []struct {
		name, redis string
		key, msg    string // the one error expected; "" for none
	}{
		{"redis", `url: "redis://:` + password + `@127.0.0.1:6379/0"`, "", ""},
		{"rediss", `url: "rediss://127.0.0.1:6380"`, "", ""},
		{"sentinel", `url: "redis+sentinel://:` + password + `@10.0.0.1:26379,10.0.0.2:26379,10.0.0.3/mymaster/2?dial_timeout=2s"`, "", ""},
		{"sentinel over TLS", `url: "rediss+sentinel://s1.example.com:26379/mymaster"`, "", ""},
		{"sentinel, master missing", `url: "redis+sentinel://:` + password + `@10.0.0.1:26379,10.0.0.2:26379"`, "redis.url", "names the master"},
		{"sentinel, master missing, query", `url: "redis+sentinel://10.0.0.1:26379/?password=` + password + `"`, "redis.url", "names the master"},
		{"other scheme", `url: "http://:` + password + `@127.0.0.1:6379"`, "redis.url", "redis+sentinel://"},
		{"min_replicas", `min_replicas: 1, replica_timeout: 250ms`, "", ""},
		{"negative min_replicas", `min_replicas: -1`, "redis.min_replicas", "must not be negative"},
		{"replica_timeout at its least", `replica_timeout: 1ms`, "", ""},
		{"replica_timeout at its most", `replica_timeout: 2s`, "", ""},
		{"negative replica_timeout", `replica_timeout: -1s`, "redis.replica_timeout", "from 1ms to 2s"},
		{"sub-millisecond replica_timeout", `replica_timeout: 10us`, "redis.replica_timeout", "from 1ms to 2s"},
		{"replica_timeout over the read timeout", `replica_timeout: 3s`, "redis.replica_timeout", "from 1ms to 2s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			yaml := "redis: {" + tt.redis + "}\n"
			if tt.key == "" {
				mustLoad(t, yaml, nil)
				return
			}
			_, err := configs.Load(writeConfig(t, yaml), nil)
			errs := fieldErrors(t, err)
			if len(errs) != 1 || errs[0].Key != tt.key || !strings.Contains(errs[0].Message, tt.msg) {
				t.Errorf("Load(%s) = %v, want one error %s: …%s…", yaml, err, tt.key, tt.msg)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("Load(%s) error quotes the password: %v", yaml, err)
			}
		})
	}

	for _, tt := range []struct {
		yaml string
		min  int
		wait time.Duration
	}{
		{"", 0, time.Second},
		{"redis: {min_replicas: 2}\n", 2, time.Second},
		{"redis: {min_replicas: 1, replica_timeout: 0s}\n", 1, time.Second},
		{"redis: {min_replicas: 1, replica_timeout: 300ms}\n", 1, 300 * time.Millisecond},
	} {
		cfg := mustLoad(t, tt.yaml, nil)
		if cfg.Redis.MinReplicas != tt.min || cfg.Redis.ReplicaWait() != tt.wait {
			t.Errorf("Load(%q): min_replicas %d, replica wait %s; want %d, %s", tt.yaml, cfg.Redis.MinReplicas, cfg.Redis.ReplicaWait(), tt.min, tt.wait)
		}
	}
}
