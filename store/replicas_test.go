package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/redis/go-redis/v9"
)

// TestMinReplicas: with Options.MinReplicas, CreatePipeline succeeds only once a replica holds
// what it answers for — a new pipeline, a duplicate that another connection stored, a batch
// sent again after Redis lost its scripts — and otherwise fails with
// orchestrator.ErrNotReplicated, the pipeline kept on the master for the resend to find.
func TestMinReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	_, port := testenv.RedisServer(t, dir, "master")
	client := func(port string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port})
		t.Cleanup(func() { c.Close() })
		waitFor(t, "redis on "+port, func() bool { return c.Ping(ctx).Err() == nil })
		return c
	}
	master := client(port)
	newStore := func() *Store { // a store of its own: its own connections, as another gantry process
		s := New(client(port), Options{MinReplicas: 1, ReplicaTimeout: 300 * time.Millisecond})
		t.Cleanup(func() { s.Close() })
		return s
	}
	dedup := func(delivery string) orchestrator.Dedup {
		return orchestrator.Dedup{Delivery: delivery, DeliveryTTL: time.Hour, Commit: "content " + delivery, CommitTTL: time.Hour}
	}
	create := func(s *Store, d orchestrator.Dedup) (*orchestrator.Pipeline, int64, error) {
		p := samplePipeline()
		existing, _, err := s.CreatePipeline(ctx, p, d)
		return p, existing, err
	}
	s := newStore()

	// No replica: stored on the master, not acknowledged.
	if _, _, err := create(s, dedup("a")); !errors.Is(err, orchestrator.ErrNotReplicated) {
		t.Fatalf("CreatePipeline with no replica = %v, want ErrNotReplicated", err)
	}
	stored, _ := master.ZRange(ctx, s.keyIndex(), 0, -1).Result()
	if len(stored) != 1 {
		t.Fatalf("pipelines on the master after ErrNotReplicated = %v, want one", stored)
	}

	// A replica joins: the resend is the duplicate, now acknowledged; a new event is too, and
	// the replica has it.
	replicaProc, replicaPort := testenv.RedisServer(t, dir, "replica", "--replicaof", "127.0.0.1", port)
	replica := client(replicaPort)
	// WAIT counts a replica for the calling connection's own last write: a connection that
	// wrote nothing counts a replica still loading its first copy, which then acknowledges
	// nothing for a while. A write of the probe's own makes WAIT mean "in sync".
	waitFor(t, "the replica in sync", func() bool {
		must(t, master.Incr(ctx, "sync-probe").Err())
		n, _ := master.Do(ctx, "WAIT", 1, 100).Int()
		return n == 1
	})
	if _, existing, err := create(s, dedup("a")); err != nil || fmt.Sprint(existing) != stored[0] {
		t.Fatalf("resend with a replica = %d, %v, want pipeline %s, no error", existing, err, stored[0])
	}
	b, existing, err := create(s, dedup("b"))
	if err != nil || existing != 0 {
		t.Fatalf("new event with a replica = %d, %v, want a new pipeline", existing, err)
	}
	onReplica := func(p *orchestrator.Pipeline) {
		t.Helper()
		if n, _ := replica.Exists(ctx, s.keyPipeline(p.ID)).Result(); n != 1 {
			t.Errorf("pipeline %d acknowledged but not on the replica", p.ID)
		}
	}
	onReplica(b)
	// Scripts lost: the batch goes again as EVAL, and is waited for again.
	must(t, master.ScriptFlush(ctx).Err())
	c, _, err := create(s, dedup("c"))
	if err != nil {
		t.Fatalf("new event after SCRIPT FLUSH = %v", err)
	}
	onReplica(c)

	// The replica stops acknowledging but stays connected. A duplicate's answer must still wait
	// for the pipeline it names, by delivery and by content alike, on another process's fresh
	// connection too. (Redis 7.0 would make it wait even if the duplicate's script wrote
	// nothing, docs/redis.md §1; the script writes because the documented contract is narrower.)
	must(t, replicaProc.Process.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { replicaProc.Process.Signal(syscall.SIGCONT) })
	for name, d := range map[string]orchestrator.Dedup{
		"same delivery": dedup("b"),
		"same content":  {Commit: "content b", CommitTTL: time.Hour},
	} {
		if _, existing, err := create(newStore(), d); !errors.Is(err, orchestrator.ErrNotReplicated) {
			t.Errorf("duplicate (%s) while the replica is stopped = %d, %v, want ErrNotReplicated", name, existing, err)
		}
	}
	must(t, master.ScriptFlush(ctx).Err())
	if _, _, err := create(s, dedup("d")); !errors.Is(err, orchestrator.ErrNotReplicated) {
		t.Errorf("new event after SCRIPT FLUSH while the replica is stopped = %v, want ErrNotReplicated", err)
	}
	must(t, replicaProc.Process.Signal(syscall.SIGCONT))
	if _, existing, err := create(newStore(), dedup("d")); err != nil || existing == 0 {
		t.Errorf("resend once the replica is back = %d, %v, want the stored pipeline", existing, err)
	}

	// Off (0), no WAIT is sent at all: the intake's round trip stays as it was.
	must(t, master.ConfigResetStat(ctx).Err())
	off := New(client(port), Options{})
	t.Cleanup(func() { off.Close() })
	if _, _, err := create(off, dedup("e")); err != nil {
		t.Fatal(err)
	}
	if stats := master.Info(ctx, "commandstats").Val(); strings.Contains(stats, "cmdstat_wait:") {
		t.Errorf("a store without MinReplicas sent WAIT:\n%s", stats)
	}

	// A job's claim (its lease) and its moves wait for the replicas as well, each on the
	// connection that wrote it; without MinReplicas they send no WAIT either.
	p, _, err := create(off, dedup("f"))
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*Store{s, off} {
		must(t, master.ConfigResetStat(ctx).Err())
		j := p.Jobs[0]
		from := j.State
		j.State = orchestrator.StatePending
		if ok, _, err := st.SwapJob(ctx, p.ID, from, j.Attempt, j, nil); !ok || err != nil {
			t.Fatalf("SwapJob = %t, %v", ok, err)
		}
		_, release, err := st.HoldJob(ctx, p.ID, j.Name, j.Attempt)
		if err != nil {
			t.Fatalf("HoldJob = %v", err)
		}
		release()
		stats := master.Info(ctx, "commandstats").Val()
		if want := st == s; strings.Contains(stats, "cmdstat_wait:calls=2,") != want {
			t.Errorf("store with MinReplicas %t: a job's swap and lease sent two WAITs = %t, want %t:\n%s", want, !want, want, stats)
		}
		p.Jobs[0].State = from // the other store moves it from the start again
		must(t, master.HSet(ctx, s.keyPipeline(p.ID), statePrefix+j.Name, string(from)).Err())
	}
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 30 s", what)
		}
	}
}

// TestReplicatedWaitFails: a script that ran but whose WAIT Redis refused is an error naming the
// wait, never a success: with min_replicas gantry must not answer for a write it could not see
// replicated. Here the user may run scripts but not WAIT (an ACL a managed Redis might set).
func TestReplicatedWaitFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, port := testenv.RedisServer(t, t.TempDir(), "master")
	admin := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port})
	t.Cleanup(func() { admin.Close() })
	waitFor(t, "redis on "+port, func() bool { return admin.Ping(ctx).Err() == nil })
	if err := admin.Do(ctx, "ACL", "SETUSER", "nowait", "on", ">pw", "~*", "&*", "+@all", "-wait").Err(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port, Username: "nowait", Password: "pw"})
	s := New(rdb, Options{MinReplicas: 1, ReplicaTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { s.Close() })
	err := s.runReplicated(ctx, redis.NewScript(`return redis.call('SET', KEYS[1], '1')`), []string{"k"}).Err()
	if err == nil || !strings.Contains(err.Error(), "wait for 1 replicas") || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("script run with its WAIT refused = %v, want the wait's error", err)
	}
	if v, _ := admin.Get(ctx, "k").Result(); v != "1" {
		t.Errorf("the script's write = %q, want it done: only the wait failed", v)
	}
}
