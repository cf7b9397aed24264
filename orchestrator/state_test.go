package orchestrator

import (
	"errors"
	"testing"
)

// TestNextEveryPair walks every state × event pair, so a state or event added without its row
// in the expectations below fails here.
func TestNextEveryPair(t *testing.T) {
	t.Parallel()
	want := map[State]map[Event]State{
		StateCreated:  {EventEnqueue: StatePending, EventCancel: StateCanceled, EventSkip: StateSkipped},
		StatePending:  {EventRun: StateRunning, EventFail: StateFailed, EventCancel: StateCanceled, EventSkip: StateSkipped},
		StateRunning:  {EventResume: StateRunning, EventSucceed: StateSuccess, EventFail: StateFailed, EventCancel: StateCanceled},
		StateSuccess:  {EventRetry: StatePending},
		StateFailed:   {EventRetry: StatePending},
		StateCanceled: {EventRetry: StatePending},
		StateSkipped:  {EventRetry: StatePending},
	}
	if len(want) != len(States) {
		t.Fatalf("expectations cover %d states, there are %d", len(want), len(States))
	}
	for _, s := range States {
		for _, e := range Events {
			got, err := Next(s, e)
			w, legal := want[s][e]
			switch {
			case legal && (err != nil || got != w):
				t.Errorf("Next(%s, %s) = %s, %v, want %s", s, e, got, err, w)
			case !legal && !errors.Is(err, ErrInvalidTransition):
				t.Errorf("Next(%s, %s) = %s, %v, want ErrInvalidTransition", s, e, got, err)
			}
		}
	}
}

// TestNextNeverPostsWhatGitLabRefuses checks the machine against GitLab's 400s (docs/gitlab.md §3.1):
// no posted transition goes pending→pending, running→running or running→pending/skipped.
func TestNextNeverPostsWhatGitLabRefuses(t *testing.T) {
	t.Parallel()
	refused := map[[2]State]bool{
		{StatePending, StatePending}: true,
		{StateRunning, StateRunning}: true,
		{StateRunning, StatePending}: true,
		{StateRunning, StateSkipped}: true,
	}
	for _, s := range States {
		for _, e := range Events {
			next, err := Next(s, e)
			if err == nil && e.Posted() && refused[[2]State{s, next}] {
				t.Errorf("Next(%s, %s) = %s is posted, and GitLab answers 400 to it", s, e, next)
			}
		}
	}
}

func TestPipelineState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		jobs []State
		want State
	}{
		{[]State{StateCreated, StateCreated}, StateCreated},
		{[]State{StatePending, StatePending}, StatePending},
		{[]State{StateSuccess, StatePending}, StateRunning},
		{[]State{StateSuccess, StateRunning, StateFailed}, StateRunning},
		{[]State{StateSuccess, StateFailed, StateSkipped}, StateFailed},
		{[]State{StateSuccess, StateCanceled}, StateCanceled},
		{[]State{StateSuccess, StateSuccess, StateSkipped}, StateSuccess},
		{[]State{StateSkipped}, StateSkipped},
	}
	for _, tt := range tests {
		p := &Pipeline{}
		for i, s := range tt.jobs {
			p.Jobs = append(p.Jobs, Job{Name: string(rune('a' + i)), State: s})
		}
		if got := p.State(); got != tt.want {
			t.Errorf("Pipeline%v.State() = %s, want %s", tt.jobs, got, tt.want)
		}
	}
}
