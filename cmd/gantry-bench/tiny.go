package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
)

// tinyBranch is where the busybox project's pipelines are pushed: not a release branch, so no
// pipeline of it pushes anything.
const tinyBranch = "bench"

// tinySetup is the busybox project (tinyProject) served by the GitLab double, in a config for
// gantry processes; pickup and throughput share it.
type tinySetup struct {
	gitlab *gitlabtest.Server
	repo   *repo
	head   string // the SHA last pushed or committed
	config string
	url    string
	api    *gantryAPI
	hook   hookProject
}

// setupTiny creates the project's repository and config; dockerHost is the engine the workers
// use (empty: the default one). The caller closes t.gitlab.
func (e *benchEnv) setupTiny(ctx context.Context, concurrency int, dockerHost string) (*tinySetup, error) {
	r, head, err := newRepo(ctx, filepath.Join(e.dir, "tiny"), "", map[string]string{
		"Dockerfile": "FROM " + e.busybox + "\nCOPY . /app\n", "n.txt": "0\n"})
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	t := &tinySetup{gitlab: gitlabtest.Start(), repo: r, head: head, url: "http://" + addr}
	path := e.ns + "/tiny"
	proj := t.gitlab.AddProject(path, r.dir)
	t.hook = hookProject{id: proj.ID, path: path, secret: randomHex(12)}
	cfg := gantryConfig{listen: addr, redisURL: e.redisURL, gitlabURL: t.gitlab.URL, gitlabToken: t.gitlab.Token,
		apiToken: randomHex(16), dockerHost: dockerHost, concurrency: concurrency,
		projects: []string{tinyProject(path, t.hook.secret, e.ns+"/tiny")}}
	if t.config, err = cfg.write(e.dir); err != nil {
		t.gitlab.Close()
		return nil, err
	}
	t.api = newGantryAPI(t.url, cfg.apiToken)
	return t, nil
}

// commit makes the n-th pipeline's commit: a file changes, so its build copies something new.
func (t *tinySetup) commit(ctx context.Context, n int) (string, error) {
	return t.repo.commit(ctx, fmt.Sprintf("pipeline %d", n), map[string]string{"n.txt": fmt.Sprintf("%d\n", n)})
}

// push sends sha to the bench branch.
func (t *tinySetup) push(ctx context.Context, sha string) (delivery, error) {
	d, err := t.api.push(ctx, t.hook, tinyBranch, t.head, sha, "bench")
	t.head = sha
	return d, err
}

// outcomes counts finished pipelines by state and remembers the first that did not succeed.
type outcomes struct {
	states map[string]int
	failed string
	last   time.Time // the latest end of a pipeline seen
}

// add records a finished pipeline.
func (o *outcomes) add(p pipelineView) {
	if o.states == nil {
		o.states = map[string]int{}
	}
	o.states[p.State]++
	if p.State != "success" && o.failed == "" {
		o.failed = p.summary()
	}
	if f := p.finished(); f.After(o.last) {
		o.last = f
	}
}

// String says how many pipelines succeeded, then how many ended in each other state.
func (o *outcomes) String() string {
	s := fmt.Sprintf("%d succeeded", o.states["success"])
	for st, n := range o.states {
		if st != "success" {
			s += fmt.Sprintf(", %d %s", n, st)
		}
	}
	return s
}

// reap polls the unfinished pipelines, records those that are over and returns the others.
func (t *tinySetup) reap(ctx context.Context, ids []int64, o *outcomes) ([]int64, error) {
	var left []int64
	for _, id := range ids {
		p, err := t.api.pipeline(ctx, id)
		if err != nil {
			return nil, err
		}
		if p.terminal() {
			o.add(p)
		} else {
			left = append(left, id)
		}
	}
	return left, nil
}

// drain waits until every pipeline of ids is over.
func (t *tinySetup) drain(ctx context.Context, ids []int64, o *outcomes, limit time.Duration) error {
	for _, id := range ids {
		p, err := t.api.wait(ctx, id, 100*time.Millisecond, limit)
		if err != nil {
			return err
		}
		o.add(p)
	}
	return nil
}
