package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/orchestrator"
)

// TestJobLease: one holder at a time; a live holder keeps its lease past the TTL by renewing
// it; a holder that stops renewing (its process died) is listed once the TTL has run out, with
// the task it was running and its token, and dropped on request; a released lease is free at
// once and never listed.
func TestJobLease(t *testing.T) {
	t.Parallel()
	rdb := testenv.Redis(t)
	s := New(rdb, Options{JobLeaseTTL: 300 * time.Millisecond})
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()

	_, release, err := s.HoldJob(ctx, 5, "test/unit", 2)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // three TTLs: only renewal keeps it
	if _, _, err := s.HoldJob(ctx, 5, "test/unit", 2); !errors.Is(err, orchestrator.ErrLocked) {
		t.Errorf("second HoldJob while held = %v, want ErrLocked", err)
	}
	if l, _ := s.ExpiredLeases(ctx, time.Now()); len(l) != 0 {
		t.Errorf("a renewed lease is listed as expired: %v", l)
	}
	release()
	if l, _ := s.ExpiredLeases(ctx, time.Now().Add(time.Hour)); len(l) != 0 {
		t.Errorf("a released lease is listed: %v", l)
	}

	dying, die := context.WithCancel(ctx)
	held, _, err := s.HoldJob(dying, 5, "test/unit", 2)
	if err != nil {
		t.Fatalf("HoldJob after release: %v", err)
	}
	die() // the renewal stops, as when the process dies; the lease is not given back
	<-held.Done()
	time.Sleep(400 * time.Millisecond)
	leases, err := s.ExpiredLeases(ctx, time.Now())
	if err != nil || len(leases) != 1 {
		t.Fatalf("ExpiredLeases = %v, %v, want the dead holder's", leases, err)
	}
	want := orchestrator.Task{Kind: orchestrator.TaskJob, PipelineID: 5, Job: "test/unit", Attempt: 2}
	if leases[0].Task != want || leases[0].Holder == "" {
		t.Errorf("lease = %+v, want task %+v and its holder", leases[0], want)
	}
	if _, release, err := s.HoldJob(ctx, 5, "test/unit", 2); err != nil {
		t.Errorf("HoldJob after the lease ran out: %v", err)
	} else {
		release()
	}
	if err := s.DropLease(ctx, leases[0].ID); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.ExpiredLeases(ctx, time.Now().Add(time.Hour)); len(l) != 0 {
		t.Errorf("dropped lease still listed: %v", l)
	}
}
