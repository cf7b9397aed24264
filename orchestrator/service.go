package orchestrator

import (
	"context"
	"errors"
	"sync"
)

// Service runs the engine's own loops on a worker process, the work no queued task drives:
// TakeNew starts the pipelines webhooks store, ListenForCancels stops this process's jobs that
// any process cancelled. Start begins both; Stop ends them and returns once both have returned,
// so nothing of the engine still runs when the process closes its Redis (river's Start/Stop and
// asynq's ordered shutdown are the models). The periodic sweep is the scheduler's, which has its
// own Stop.
type Service struct {
	engine *Engine

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewService wraps an engine's loops.
func NewService(e *Engine) *Service { return &Service{engine: e} }

// ErrStarted is returned by Start on a service that runs already.
var ErrStarted = errors.New("service already started")

// Start runs the loops until ctx ends or Stop is called.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return ErrStarted
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Go(func() { s.engine.ListenForCancels(ctx) })
	s.wg.Go(func() { s.engine.TakeNew(ctx) })
	return nil
}

// Stop ends the loops and waits for them: a pipeline TakeNew was starting is started (or left
// for the sweep) before Stop returns. It may be called more than once, and before Start.
func (s *Service) Stop() {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
}
