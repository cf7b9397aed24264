package orchestrator

import (
	"errors"
	"fmt"
)

// State is the state of a job or a pipeline, in GitLab's own words.
type State string

// The states, as GitLab's commit status API spells them.
const (
	StateCreated  State = "created"
	StatePending  State = "pending"
	StateRunning  State = "running"
	StateSuccess  State = "success"
	StateFailed   State = "failed"
	StateCanceled State = "canceled"
	StateSkipped  State = "skipped"
	// StateWaitingForApproval is a pipeline's, never a job's: its jobs are pending in GitLab,
	// and none runs before it is approved.
	StateWaitingForApproval State = "waiting_for_approval"
)

// States lists every state of a job; the state machine test walks it.
var States = []State{StateCreated, StatePending, StateRunning, StateSuccess, StateFailed, StateCanceled, StateSkipped}

// PipelineStates lists every state a pipeline shows: a job's, or waiting for approval.
var PipelineStates = append(States[:len(States):len(States)], StateWaitingForApproval)

// Terminal reports whether a job in this state is over.
func (s State) Terminal() bool {
	switch s {
	case StateSuccess, StateFailed, StateCanceled, StateSkipped:
		return true
	}
	return false
}

// Event is something that happens to a job.
type Event string

// The events of a job's life.
const (
	EventEnqueue Event = "enqueue" // planned job announced and waiting for its turn
	EventRun     Event = "run"     // a worker starts it
	EventResume  Event = "resume"  // a worker takes over a job whose worker was lost or retried it
	EventSucceed Event = "succeed"
	EventFail    Event = "fail"
	EventCancel  Event = "cancel"
	EventSkip    Event = "skip"  // what it depends on did not succeed, or the guard said no
	EventRetry   Event = "retry" // a finished job gets a new attempt
)

// Events lists every event; the state machine test walks it.
var Events = []Event{EventEnqueue, EventRun, EventResume, EventSucceed, EventFail, EventCancel, EventSkip, EventRetry}

// ErrInvalidTransition is returned by Next for an event the state does not allow.
var ErrInvalidTransition = errors.New("invalid transition")

// transitions is the whole state machine. It is GitLab's commit status machine
// (docs/gitlab.md §3.1) restricted to what gantry does, so that every transition gantry makes can be
// posted to GitLab without a 400: GitLab refuses pending→pending, running→running (as a post;
// EventResume posts nothing) and running→pending, and accepts any state after a terminal one as a
// new job, which is what a retry is.
var transitions = map[State]map[Event]State{
	StateCreated: {
		EventEnqueue: StatePending,
		EventCancel:  StateCanceled,
		EventSkip:    StateSkipped,
	},
	StatePending: {
		EventRun:    StateRunning,
		EventFail:   StateFailed,
		EventCancel: StateCanceled,
		EventSkip:   StateSkipped,
	},
	StateRunning: {
		EventResume:  StateRunning,
		EventSucceed: StateSuccess,
		EventFail:    StateFailed,
		EventCancel:  StateCanceled,
	},
	StateSuccess:  {EventRetry: StatePending},
	StateFailed:   {EventRetry: StatePending},
	StateCanceled: {EventRetry: StatePending},
	StateSkipped:  {EventRetry: StatePending},
}

// Next is the state a job in state s reaches on event e.
func Next(s State, e Event) (State, error) {
	if next, ok := transitions[s][e]; ok {
		return next, nil
	}
	return s, fmt.Errorf("%w: %s on %s", ErrInvalidTransition, e, s)
}

// Posted reports whether reaching a state through event e is something GitLab must be told.
// A resumed job is already running in GitLab, and posting running again would get a 400.
func (e Event) Posted() bool { return e != EventResume }
