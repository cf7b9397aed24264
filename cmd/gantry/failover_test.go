package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// TestSentinelURL: redis+sentinel:// and rediss+sentinel:// URLs become go-redis failover
// options — every sentinel of the host list (26379 when no port is given), the master and the
// database of the path, the servers' credentials from the userinfo, the sentinels' from
// sentinel_username/sentinel_password, go-redis's own query options — and no error quotes the
// password.
func TestSentinelURL(t *testing.T) {
	t.Parallel()
	opt, err := sentinelOptions("redis+sentinel://:pw@10.0.0.1:26380,10.0.0.2,[::1]:26381/my%20master/3?dial_timeout=2s&pool_size=7")
	must(t, err)
	if got, want := strings.Join(opt.SentinelAddrs, " "), "10.0.0.1:26380 10.0.0.2:26379 [::1]:26381"; got != want {
		t.Errorf("sentinels = %s, want %s", got, want)
	}
	if opt.MasterName != "my master" || opt.DB != 3 || opt.Username != "" || opt.Password != "pw" ||
		opt.SentinelPassword != "" || opt.DialTimeout != 2*time.Second || opt.PoolSize != 7 || opt.TLSConfig != nil {
		t.Errorf("options = master %q db %d user %q password %q sentinel password %q dial %s pool %d tls %v",
			opt.MasterName, opt.DB, opt.Username, opt.Password, opt.SentinelPassword, opt.DialTimeout, opt.PoolSize, opt.TLSConfig != nil)
	}

	opt, err = sentinelOptions("rediss+sentinel://ci:p%40ss@s1.example.com/gantry?sentinel_password=sp&skip_verify=true")
	must(t, err)
	if opt.TLSConfig == nil || opt.TLSConfig.ServerName != "" || !opt.TLSConfig.InsecureSkipVerify {
		t.Errorf("TLS config = %+v, want TLS, each host checked by its own name, skip_verify honoured", opt.TLSConfig)
	}
	if opt.Username != "ci" || opt.Password != "p@ss" || opt.SentinelPassword != "sp" || opt.DB != 0 ||
		strings.Join(opt.SentinelAddrs, " ") != "s1.example.com:26379" {
		t.Errorf("options = user %q password %q sentinel password %q db %d sentinels %v", opt.Username, opt.Password, opt.SentinelPassword, opt.DB, opt.SentinelAddrs)
	}

	const secret = "hunter2-redis"
	for _, u := range []string{
		"redis+sentinel://:" + secret + "@h1:26379",
		"redis+sentinel://:" + secret + "@h1:26379/",
		"redis+sentinel://:" + secret + "@h1,,h2/m",
		"redis+sentinel://:" + secret + "@h1/m/1/2",
		"redis+sentinel://:" + secret + "@h1/m/x",
		"redis+sentinel://:" + secret + "@h1/m?password=" + secret,
		"redis+sentinel://:" + secret + "@h1/m?master_name=other",
		"redis+sentinel://h1/m?password=" + secret + "&nope=1",
		"redis+sentinel://h1/m?sentinel_password=" + secret + "&db=x",
	} {
		_, err := sentinelOptions(u)
		if err == nil {
			t.Errorf("sentinelOptions(%q) = nil error, want one", u)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("sentinelOptions(%q) error quotes the password: %v", u, err)
		}
	}
	// Nothing listens on port 1: the error names the master and the sentinels, not the password.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, _, err := openRedis(ctx, "redis+sentinel://:"+secret+"@127.0.0.1:1/gantry", zap.NewNop()); err == nil {
		t.Error("openRedis(no sentinel listening) = nil error, want one")
	} else if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), `master "gantry"`) {
		t.Errorf("openRedis(no sentinel listening) = %v, want the master and sentinels named and no password", err)
	}
}

// redisHA is Debian's redis-server and redis-sentinel on free loopback ports in a temporary
// directory: one master, two replicas, three sentinels with quorum 2, failing over after 1 s
// without an answer. Two replicas, not one: with redis.min_replicas 1 the promoted replica needs
// one of its own for any write to be acknowledged again.
type redisHA struct {
	master    *exec.Cmd
	sentinels []string
	dir       string
}

const haMaster = "gantry"

func startRedisHA(t *testing.T) *redisHA {
	t.Helper()
	sentinel := testenv.NeedBinary(t, "redis-sentinel")
	ha := &redisHA{dir: t.TempDir()}
	var masterPort string
	ha.master, masterPort = testenv.RedisServer(t, ha.dir, "master")
	for _, name := range []string{"replica-1", "replica-2"} {
		testenv.RedisServer(t, ha.dir, name, "--replicaof", "127.0.0.1", masterPort)
	}
	for i := range 3 {
		_, p, _ := net.SplitHostPort(testenv.FreeAddr(t))
		conf := filepath.Join(ha.dir, fmt.Sprintf("sentinel-%d.conf", i))
		must(t, os.WriteFile(conf, fmt.Appendf(nil, `port %s
bind 127.0.0.1
dir %s
sentinel monitor %s 127.0.0.1 %s 2
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 10000
sentinel parallel-syncs %s 2
`, p, ha.dir, haMaster, masterPort, haMaster, haMaster, haMaster), 0o600))
		testenv.Start(t, ha.dir, fmt.Sprintf("sentinel-%d", i), sentinel, conf)
		ha.sentinels = append(ha.sentinels, "127.0.0.1:"+p)
	}

	// Ready: the master has both replicas online, and every sentinel knows them and the others.
	ctx := context.Background()
	mc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + masterPort})
	defer mc.Close()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ready := false
		if info, err := mc.Info(ctx, "replication").Result(); err == nil && strings.Contains(info, "connected_slaves:2") {
			ready = true
			for _, s := range ha.sentinels {
				m, err := ha.sentinel(s).Master(ctx, haMaster).Result()
				ready = ready && err == nil && m["num-slaves"] == "2" && m["num-other-sentinels"] == "2"
			}
		}
		if ready {
			return ha
		}
		if time.Now().After(deadline) {
			t.Fatal("redis master, replicas and sentinels not ready after 60 s")
		}
	}
}

func (ha *redisHA) sentinel(addr string) *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second})
}

// masterAddr is the master the first sentinel that answers names.
func (ha *redisHA) masterAddr() string {
	for _, s := range ha.sentinels {
		c := ha.sentinel(s)
		addr, err := c.GetMasterAddrByName(context.Background(), haMaster).Result()
		c.Close()
		if err == nil {
			return strings.Join(addr, ":")
		}
	}
	return ""
}

// url is gantry's redis.url for the sentinels.
func (ha *redisHA) url() string {
	return "redis+sentinel://" + strings.Join(ha.sentinels, ",") + "/" + haMaster
}

// TestRedisFailover: gantry on Redis Sentinel. A burst of push
// webhooks (distinct commits on distinct branches) arrives while the Redis master is SIGKILLed
// midway. Every webhook answered 2xx becomes a pipeline that finishes, with every GitLab
// status terminal; no job runs twice; the same gantry process carries on after the failover
// without a restart. Answers other than 2xx during the failover are allowed (GitLab records a
// failure) and counted.
func TestRedisFailover(t *testing.T) {
	t.Parallel()
	ha := startRedisHA(t)
	// A 2xx answer only once a replica has the pipeline: what the master held alone when it
	// died is answered otherwise, never promised and lost.
	g, repo := startBusyboxProjectWith(t, ha.url(), settings{redis: ", min_replicas: 1"}, "")
	const events, spare, spacing = 60, 60, 150 * time.Millisecond
	base := repo.Git("rev-parse", "HEAD")
	branch := func(i int) string { return fmt.Sprintf("f%03d", i) }
	shas := make([]string, events+spare)
	for i := range shas {
		repo.Git("checkout", "-q", "-B", branch(i), base)
		shas[i] = repo.Commit(fmt.Sprintf("change %d", i), map[string]string{"n.txt": fmt.Sprint(i)})
	}

	type answer struct {
		code     int
		pipeline int64
		sent, at time.Time
	}
	answers := make([]answer, len(shas))
	var killed time.Time         // written before any webhook sent after it starts
	var killedAt atomic.Int64    // the same, for the goroutines already sending
	var switched atomic.Int64    // the sentinels named another master, this long after the kill
	var afterKill2xx atomic.Bool // a webhook sent after the kill was answered 2xx
	var wg sync.WaitGroup
	start := time.Now()
	sent := 0
	for ; sent < len(shas); sent++ {
		if sent >= events && afterKill2xx.Load() {
			break // the burst is over and gantry is answering 2xx again
		}
		time.Sleep(time.Until(start.Add(time.Duration(sent) * spacing)))
		if sent == events/2 {
			old := ha.masterAddr()
			must(t, ha.master.Process.Kill()) // SIGKILL
			killed = time.Now()
			killedAt.Store(killed.UnixNano())
			t.Logf("SIGKILLed the redis master %s after %d webhooks", old, sent)
			wg.Go(func() { // the sentinels' view
				for deadline := killed.Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					if now := ha.masterAddr(); now != "" && now != old {
						switched.Store(int64(time.Since(killed)))
						return
					}
				}
			})
		}
		i := sent
		wg.Go(func() {
			at := time.Now()
			code, ans, _ := g.delivery(t, "Push Hook", g.secret, fmt.Sprintf("failover-%d", i), g.pushPayload(branch(i), zero, shas[i], "change"))
			a := answer{code: code, sent: at, at: time.Now()}
			if id, ok := ans["pipeline_id"].(float64); ok {
				a.pipeline = int64(id)
			}
			answers[i] = a
			if k := killedAt.Load(); code/100 == 2 && k != 0 && at.UnixNano() > k {
				afterKill2xx.Store(true)
			}
		})
	}
	wg.Wait()
	if killed.IsZero() {
		t.Fatal("the master was never killed")
	}

	failover := time.Duration(-1)
	n2xx, codes := 0, map[int]int{}
	for i := range sent {
		a := answers[i]
		if a.code/100 != 2 {
			codes[a.code]++
			continue
		}
		n2xx++
		if a.pipeline == 0 {
			t.Errorf("webhook %d answered %d without a pipeline id", i, a.code)
		}
		if a.sent.After(killed) && (failover < 0 || a.at.Sub(killed) < failover) {
			failover = a.at.Sub(killed)
		}
	}
	if failover < 0 {
		t.Fatalf("no webhook sent after the kill was answered 2xx (%d sent, answers other than 2xx: %v)", sent, codes)
	}

	// Every 2xx answer is a pipeline that finishes, with every GitLab status terminal.
	terminal := map[string]bool{"success": true, "failed": true, "canceled": true, "skipped": true}
	for i := range sent {
		a := answers[i]
		if a.code/100 != 2 || a.pipeline == 0 {
			continue
		}
		if p := g.waitFinished(t, a.pipeline, 5*time.Minute); p.State != "success" {
			t.Errorf("pipeline %d of webhook %d = %s, want success: %+v", a.pipeline, i, p.State, p.Jobs)
		}
		var h map[string][]string
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
			h = g.gitlab.StatusHistory(g.project.ID, shas[i])
			done := last(h["gantry/build"]) == "success" && last(h["gantry/test/check"]) == "success"
			for _, states := range h {
				done = done && terminal[last(states)]
			}
			if done {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("statuses of webhook %d (%s) = %v, want build and test success, every status terminal", i, shas[i][:8], h)
				break
			}
		}
	}

	// Pipelines run: those the 2xx answers name and those stored for webhooks answered otherwise
	// (stored on the master, not acknowledged by a replica in time); each of those finishes too.
	pipelines := 0
	for i := range sent {
		code, raw := g.api(t, "GET", "/api/v1/pipelines?sha="+shas[i], g.apiToken, nil)
		if code != http.StatusOK {
			t.Fatalf("GET pipelines of %s = %d %v", shas[i][:8], code, raw)
		}
		ps, _ := raw["pipelines"].([]any)
		pipelines += len(ps)
		if len(ps) > 1 {
			t.Errorf("webhook %d (%s) made %d pipelines, want at most one", i, shas[i][:8], len(ps))
		}
		for _, p := range ps {
			if id := int64(p.(map[string]any)["id"].(float64)); id != answers[i].pipeline {
				g.waitFinished(t, id, 5*time.Minute)
			}
		}
	}

	// No job ran twice: one "job running" line per pipeline and job, one running per status.
	runs := map[string]int{}
	for line := range strings.Lines(g.logs.String()) {
		if !strings.Contains(line, `"msg":"job running"`) {
			continue
		}
		var r struct {
			Pipeline int64  `json:"pipeline"`
			Job      string `json:"job"`
		}
		if json.Unmarshal([]byte(line), &r) == nil {
			runs[fmt.Sprintf("%d %s", r.Pipeline, r.Job)]++
		}
	}
	duplicates, jobRuns := 0, 0
	for job, n := range runs {
		jobRuns += n
		if n > 1 {
			duplicates++
			t.Errorf("job %s ran %d times", job, n)
		}
	}
	for i := range sent {
		for name, states := range g.gitlab.StatusHistory(g.project.ID, shas[i]) {
			if n := strings.Count(strings.Join(states, " "), "running"); n > 1 {
				t.Errorf("GitLab got %s of %s running %d times: %v", name, shas[i][:8], n, states)
			}
		}
	}
	if rejected := g.gitlab.Rejected(); len(rejected) > 0 {
		t.Errorf("GitLab refused %d calls, first %+v", len(rejected), rejected[0])
	}
	// The same process serves on: ready, on the new master.
	if resp, err := http.Get(g.url + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz after the failover = %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}

	t.Logf("failover: %d webhooks sent, %d answered 2xx, %d answered otherwise %v, %d pipelines run, %d job runs, %d duplicates; "+
		"sentinels switched %.1f s and the first 2xx came %.1f s after the kill; all done %.1f s after the first webhook",
		sent, n2xx, sent-n2xx, codes, pipelines, jobRuns, duplicates, time.Duration(switched.Load()).Seconds(), failover.Seconds(), time.Since(start).Seconds())
}

// TestMinReplicasWithoutReplica: with redis.min_replicas 1 on a Redis that has no replica, a
// push is answered 503 naming the setting, never 2xx, and its resend likewise: gantry serve
// passes the setting to the intake.
func TestMinReplicasWithoutReplica(t *testing.T) {
	t.Parallel()
	g, repo := startBusyboxProjectWith(t, testenv.RedisURL(t), settings{redis: ", min_replicas: 1, replica_timeout: 100ms"}, "")
	sha := repo.Git("rev-parse", "HEAD")
	for _, attempt := range []string{"first", "resend"} {
		code, ans, _ := g.delivery(t, "Push Hook", g.secret, "no-replica", g.pushPayload("master", zero, sha, "change"))
		if code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(ans), "redis.min_replicas") {
			t.Errorf("%s delivery with no replica = %d %v, want 503 naming redis.min_replicas", attempt, code, ans)
		}
	}
}
