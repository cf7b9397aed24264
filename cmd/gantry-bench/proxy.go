package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// engineProxy stands between a gantry worker and the Docker engine and notes when each
// pipeline's build request arrives, so that the pickup latency is measured where it ends —
// at the engine — without a line of gantry changed. Everything else passes through untouched,
// streamed both ways (build contexts, log streams, waits).
type engineProxy struct {
	// host is the proxy's address in docker.host's form: unix:///…/docker.sock.
	host string
	srv  *http.Server
	done chan error

	mu      sync.Mutex
	builds  map[int64]time.Time // pipeline id → arrival of its app build request
	changed chan struct{}       // closed and replaced on every arrival
}

// startEngineProxy listens on a Unix socket in dir and forwards to the engine at engineHost
// (DOCKER_HOST's form; empty means the local socket).
func startEngineProxy(dir, engineHost string) (*engineProxy, error) {
	network, addr, err := engineAddr(engineHost)
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("engine proxy: %w", err)
	}
	p := &engineProxy{host: "unix://" + sock, done: make(chan error, 1), builds: map[int64]time.Time{}, changed: make(chan struct{})}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 64,
	}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker" },
		Transport: tr,
		// Build output, logs and waits are streams: every byte goes on at once.
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0), // a worker that hangs up mid-stream is not news
	}
	p.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := buildPipeline(r.Method, r.URL); ok {
			p.record(id, time.Now())
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { // ends with Shutdown in stop
		err := p.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		p.done <- err
	}()
	return p, nil
}

// engineAddr turns DOCKER_HOST's form into a network and address to dial.
func engineAddr(host string) (network, addr string, err error) {
	switch {
	case host == "":
		return "unix", "/var/run/docker.sock", nil
	case strings.HasPrefix(host, "unix://"):
		return "unix", strings.TrimPrefix(host, "unix://"), nil
	case strings.HasPrefix(host, "tcp://"):
		return "tcp", strings.TrimPrefix(host, "tcp://"), nil
	}
	return "", "", fmt.Errorf("engine proxy: DOCKER_HOST %q is neither unix:// nor tcp://", host)
}

// buildPath is the Engine API's build endpoint, with or without its version prefix.
var buildPath = regexp.MustCompile(`^(/v[0-9.]+)?/build$`)

// buildPipeline recognises a pipeline's app build request by the tag gantry gives the test
// image, <image>:test-<pipeline id> (jobs.Build); the base tier's build is tagged by a content
// hash and is not one.
func buildPipeline(method string, u *url.URL) (int64, bool) {
	if method != http.MethodPost || !buildPath.MatchString(u.Path) {
		return 0, false
	}
	for _, ref := range u.Query()["t"] {
		i := strings.LastIndex(ref, ":")
		if i < 0 || strings.Contains(ref[i:], "/") {
			continue // no tag, or the colon belongs to a registry's port
		}
		if n, ok := strings.CutPrefix(ref[i+1:], "test-"); ok {
			if id, err := strconv.ParseInt(n, 10, 64); err == nil {
				return id, true
			}
		}
	}
	return 0, false
}

// record keeps the first arrival: a retried build is not a pickup.
func (p *engineProxy) record(id int64, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, seen := p.builds[id]; !seen {
		p.builds[id] = at
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// waitBuild returns when the build request of pipeline id arrived, waiting up to limit for it.
func (p *engineProxy) waitBuild(ctx context.Context, id int64, limit time.Duration) (time.Time, error) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		p.mu.Lock()
		at, ok := p.builds[id]
		changed := p.changed
		p.mu.Unlock()
		if ok {
			return at, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return time.Time{}, fmt.Errorf("no build request of pipeline %d reached the engine within %s", id, limit)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// stop closes the proxy. Shutdown waits for open streams, which the workers end when they stop,
// so the caller stops the workers first.
func (p *engineProxy) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	if err != nil {
		p.srv.Close()
	}
	if serveErr := <-p.done; err == nil {
		err = serveErr
	}
	return err
}
