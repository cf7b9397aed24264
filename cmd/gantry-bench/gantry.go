package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// gantryConfig is what the generated config file of one benchmark says; the shape is the e2e
// harness's (cmd/gantry/harness_test.go).
type gantryConfig struct {
	listen      string // host:port
	redisURL    string
	gitlabURL   string
	gitlabToken string
	apiToken    string
	dockerHost  string // empty: the engine of DOCKER_HOST or the local socket
	concurrency int
	registry    *registryLogin // nil: no registry login
	projects    []string       // YAML list items, see sampleProject and tinyProject
}

// write renders the config into dir/gantry.yaml, with the registry password in a file of its own
// next to it, and returns the config's path.
func (c gantryConfig) write(dir string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "server: {listen: %q, public_url: %q}\n", c.listen, "http://"+c.listen)
	fmt.Fprintf(&b, "redis: {url: %q}\n", c.redisURL)
	fmt.Fprintf(&b, "gitlab: {url: %q, token: %q}\n", c.gitlabURL, c.gitlabToken)
	if c.dockerHost != "" {
		fmt.Fprintf(&b, "docker: {host: %q}\n", c.dockerHost)
	}
	// No retries: a job retried after an infrastructure failure would hide in a slower figure.
	fmt.Fprintf(&b, "workers: {concurrency: %d, job_retries: 0, shutdown_grace: 5s}\n", c.concurrency)
	fmt.Fprintf(&b, "api: {tokens: [%q]}\n", c.apiToken)
	if c.registry != nil {
		if err := os.WriteFile(filepath.Join(dir, "registry-password"), []byte(c.registry.password+"\n"), 0o600); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "registries:\n  - {host: %q, username: %q, password_file: registry-password}\n", c.registry.host, c.registry.user)
	}
	b.WriteString("projects:\n")
	for _, p := range c.projects {
		b.WriteString(p)
	}
	path := filepath.Join(dir, "gantry.yaml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// sampleProject is testdata/sample as the e2e test configures it: two tiers, two tests, released
// from master. The base goes to baseImage, the app to image.
func sampleProject(path, secret, image, baseImage, python string) string {
	return fmt.Sprintf(`  - path: %q
    webhook_secret: %q
    image: %q
    build: {args: {PYTHON_IMAGE: %q}}
    base: {dockerfile: Dockerfile.base, inputs: [requirements.txt, wheels], image: %q}
    tests:
      - {name: unit, command: ["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], timeout: 2m}
      - {name: lint, command: ["python3", "lint.py", "app", "tests"], timeout: 1m}
    release: {branches: [master]}
`, path, secret, image, python, baseImage)
}

// tinyProject is a busybox project with one test that does nothing: its pipelines cost the
// engine as little as a pipeline can. It is pushed to a branch that does not release, and
// supersede is off because every benchmark pipeline of it is pushed to the same branch.
func tinyProject(path, secret, image string) string {
	return fmt.Sprintf(`  - path: %q
    webhook_secret: %q
    image: %q
    supersede: false
    tests:
      - {name: quick, command: ["true"], timeout: 1m}
`, path, secret, image)
}

// freeAddr is a loopback address nothing listens on, for gantry's server.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// proc is one gantry process with its log in a file.
type proc struct {
	role string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once the process has exited
}

// fleet is the gantry processes of a benchmark.
type fleet struct {
	procs   []*proc
	stopped bool
}

// startFleet starts one process per role with the config and waits until each is ready: the
// HTTP side answers /healthz and the worker side logged that its workers started. On error the
// processes already started are stopped.
func (e *benchEnv) startFleet(ctx context.Context, config, url string, roles ...string) (*fleet, error) {
	f := &fleet{}
	for i, role := range roles {
		log := filepath.Join(e.dir, fmt.Sprintf("%s-%d.log", role, i))
		out, err := os.Create(log)
		if err != nil {
			f.stop()
			return nil, err
		}
		cmd := exec.Command(e.bin, role, "--config", config)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			out.Close()
			f.stop()
			return nil, fmt.Errorf("start gantry %s: %w", role, err)
		}
		p := &proc{role: role, cmd: cmd, log: log, done: make(chan struct{})}
		go func() { cmd.Wait(); out.Close(); close(p.done) }() // ends when the process does; stop ends it
		f.procs = append(f.procs, p)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, p := range f.procs {
		for !p.ready(url) {
			select {
			case <-p.done:
				f.stop()
				return nil, fmt.Errorf("gantry %s exited before it was ready:\n%s", p.role, tail(p.log, 20))
			case <-ctx.Done():
				f.stop()
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				f.stop()
				return nil, fmt.Errorf("gantry %s not ready after 60s:\n%s", p.role, tail(p.log, 20))
			}
		}
	}
	return f, nil
}

func (p *proc) ready(url string) bool {
	if p.role == "server" || p.role == "serve" {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
	}
	if p.role == "worker" || p.role == "serve" {
		b, _ := os.ReadFile(p.log)
		return strings.Contains(string(b), "workers started")
	}
	return true
}

// stop ends every process by its PID: SIGTERM, then SIGKILL for one that is still there after
// its shutdown grace. It reports the processes that had exited on their own before.
func (f *fleet) stop() error {
	if f.stopped {
		return nil
	}
	f.stopped = true
	var errs []error
	for _, p := range f.procs {
		select {
		case <-p.done:
			errs = append(errs, fmt.Errorf("gantry %s had exited during the run:\n%s", p.role, tail(p.log, 20)))
			continue
		default:
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	return errors.Join(errs...)
}

// logs is the tail of every process's log, for an error message.
func (f *fleet) logs() string {
	var b strings.Builder
	for _, p := range f.procs {
		fmt.Fprintf(&b, "--- gantry %s (%s):\n%s\n", p.role, p.log, tail(p.log, 15))
	}
	return b.String()
}
