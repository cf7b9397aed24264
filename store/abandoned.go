package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/hibiken/asynq"
)

// Abandoned returns the tasks the queue gave up on: it archives a task whose retries ran out,
// including one whose worker died (lease expired) on its last try, and then nobody runs our
// handler for it. The engine ends their jobs as infrastructure failures.
func (s *Store) Abandoned(ctx context.Context) ([]orchestrator.Task, error) {
	infos, err := s.inspector.ListArchivedTasks(queueName, asynq.PageSize(100))
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list archived tasks: %w", err)
	}
	out := make([]orchestrator.Task, 0, len(infos))
	for _, info := range infos {
		var t orchestrator.Task
		if json.Unmarshal(info.Payload, &t) != nil {
			continue
		}
		t.LastError = info.LastErr
		out = append(out, t)
	}
	return out, nil
}

// Forget deletes an abandoned task once the engine has dealt with it.
func (s *Store) Forget(ctx context.Context, t orchestrator.Task) error {
	err := s.inspector.DeleteTask(queueName, taskID(t))
	if errors.Is(err, asynq.ErrTaskNotFound) {
		return nil
	}
	return err
}
