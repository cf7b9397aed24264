package orchestrator

import (
	"errors"
	"fmt"
)

// ErrRefused matches every Refusal: an action the pipeline's (or job's) state, or its review,
// does not allow now. The API answers it 409 with the Refusal's words.
var ErrRefused = errors.New("not allowed now")

// Refusal says in words why an action on a pipeline cannot be done now: "pipeline 3 is already
// canceled", "job build of pipeline 4 is still running". Its message is for the person who
// asked; the state machine's ErrInvalidTransition ("cancel on success") is not, so the actions
// people call (cancel, retry, approve, decline) answer with a Refusal. It matches both
// ErrRefused and ErrInvalidTransition, so callers inside the engine that only ask "was it
// refused by the state" keep working.
type Refusal struct {
	Pipeline int64
	// Job is the job refused, "" when the pipeline as a whole is.
	Job string
	// Why completes "pipeline N …": "is already canceled", "does not wait for approval".
	Why string
}

func (r *Refusal) Error() string {
	if r.Job != "" {
		return fmt.Sprintf("job %s of pipeline %d %s", r.Job, r.Pipeline, r.Why)
	}
	return fmt.Sprintf("pipeline %d %s", r.Pipeline, r.Why)
}

// Is makes errors.Is(err, ErrRefused) and errors.Is(err, ErrInvalidTransition) hold.
func (r *Refusal) Is(target error) bool {
	return target == ErrRefused || target == ErrInvalidTransition
}

// refuse is a pipeline's Refusal.
func refuse(id int64, format string, args ...any) error {
	return &Refusal{Pipeline: id, Why: fmt.Sprintf(format, args...)}
}

// finishedWhy is the Why of an action refused because the pipeline is over.
func finishedWhy(s State) string {
	return "is already " + string(s)
}
