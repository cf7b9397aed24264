package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/google/go-cmp/cmp"
)

// TestApprovalRoundTrip: a gated pipeline reads back with its wait, is due only when the wait
// expires, and its verdict is read back once decided.
func TestApprovalRoundTrip(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	p := samplePipeline()
	create(t, b.store, p)
	expires := time.Date(2026, 12, 10, 10, 0, 0, 0, time.UTC)
	a := orchestrator.Approval{Reason: "merge request from a fork", Approvers: orchestrator.Approvers, ExpiresAt: expires}
	if gated, err := b.store.Gate(ctx, p.ID, a); err != nil || !gated {
		t.Fatalf("Gate = %t, %v, want gated", gated, err)
	}
	got, err := b.store.Pipeline(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(&a, got.Approval); d != "" {
		t.Errorf("approval (-want +got):\n%s", d)
	}
	if due, _ := b.store.Waiting(ctx, expires.Add(-time.Millisecond)); len(due) != 0 {
		t.Errorf("due before its expiry: %v", due)
	}
	if due, _ := b.store.Waiting(ctx, expires); !cmp.Equal(due, []int64{p.ID}) {
		t.Errorf("due at its expiry: %v, want [%d]", due, p.ID)
	}
	v := orchestrator.Verdict{Decision: orchestrator.DecisionApproved, By: "maint", Via: "API token sha256:1a2b3c4d", At: expires.Add(-time.Hour)}
	if ok, err := b.store.Decide(ctx, p.ID, v); !ok || err != nil {
		t.Fatalf("Decide = %v, %v", ok, err)
	}
	got, _ = b.store.Pipeline(ctx, p.ID)
	if d := cmp.Diff(&v, got.Approval.Verdict); d != "" {
		t.Errorf("verdict (-want +got):\n%s", d)
	}
	// Decided: due at once, so the sweep carries it out if the decider cannot.
	if due, _ := b.store.Waiting(ctx, time.Unix(1, 0)); !cmp.Equal(due, []int64{p.ID}) {
		t.Errorf("due after the decision: %v, want [%d]", due, p.ID)
	}
	if err := b.store.Unwait(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if due, _ := b.store.Waiting(ctx, expires.Add(time.Hour)); len(due) != 0 {
		t.Errorf("still listed after Unwait: %v", due)
	}
}

// TestDecideOnce: an approval and a decline racing each other: exactly one is recorded, and a
// pipeline that does not exist takes no decision (and is not created by it).
func TestDecideOnce(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	p := samplePipeline()
	create(t, b.store, p)
	if gated, err := b.store.Gate(ctx, p.ID, orchestrator.Approval{Reason: "r", ExpiresAt: time.Now().Add(time.Hour)}); err != nil || !gated {
		t.Fatalf("Gate = %t, %v, want gated", gated, err)
	}
	var wg sync.WaitGroup
	wins := make(chan orchestrator.Decision, 20)
	for i := range 20 {
		d := orchestrator.DecisionApproved
		if i%2 == 1 {
			d = orchestrator.DecisionDeclined
		}
		wg.Go(func() {
			if ok, err := b.store.Decide(ctx, p.ID, orchestrator.Verdict{Decision: d}); err != nil {
				t.Error(err)
			} else if ok {
				wins <- d
			}
		})
	}
	wg.Wait()
	close(wins)
	var won []orchestrator.Decision
	for d := range wins {
		won = append(won, d)
	}
	got, _ := b.store.Pipeline(ctx, p.ID)
	if len(won) != 1 || got.Approval.Verdict == nil || got.Approval.Verdict.Decision != won[0] {
		t.Errorf("decisions taken %v, stored %+v: want exactly one, the stored one", won, got.Approval.Verdict)
	}
	if ok, err := b.store.Decide(ctx, 1<<40, orchestrator.Verdict{Decision: orchestrator.DecisionApproved}); ok || err != nil {
		t.Errorf("Decide on a missing pipeline = %v, %v, want false", ok, err)
	}
	if n, _ := b.rdb.Exists(ctx, b.store.keyPipeline(1<<40)).Result(); n != 0 {
		t.Error("Decide created a pipeline record")
	}
}
