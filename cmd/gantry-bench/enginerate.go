package main

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// containerRate is the engine's own pace with nothing of gantry around it: n containers of
// busybox running `true`, each created, started, waited for and removed through the Engine API,
// parallel at a time. The containers have no network, like gantry's test containers. It returns
// containers per minute.
func (e *benchEnv) containerRate(ctx context.Context, n, parallel int) (float64, time.Duration, error) {
	cfg := &container.Config{Image: e.busybox, Cmd: []string{"true"},
		Labels: map[string]string{"gantry.project": e.ns + "/engine-rate"}} // found again by cleanup
	host := &container.HostConfig{NetworkMode: "none"}
	next := make(chan struct{})
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	start := time.Now()
	for range parallel {
		wg.Go(func() { // ends when next is closed
			for range next {
				if err := e.oneContainer(ctx, cfg, host); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for range n {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	took := time.Since(start)
	if first != nil {
		return 0, took, fmt.Errorf("engine rate: %w", first)
	}
	return float64(n) / took.Minutes(), took, nil
}

// oneContainer runs one container to its end and removes it; the removal is part of the work,
// as it is for a gantry test job.
func (e *benchEnv) oneContainer(ctx context.Context, cfg *container.Config, host *container.HostConfig) error {
	created, err := e.docker.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: host})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	defer func() {
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		e.docker.ContainerRemove(rmCtx, created.ID, client.ContainerRemoveOptions{Force: true})
	}()
	// Registered before the start, so that it sees this run's exit (docs/docker.md §5, gotcha 7).
	wait := e.docker.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := e.docker.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	select {
	case r := <-wait.Result:
		if r.StatusCode != 0 {
			return fmt.Errorf("exit %d", r.StatusCode)
		}
		return nil
	case err := <-wait.Error:
		return fmt.Errorf("wait: %w", err)
	}
}
