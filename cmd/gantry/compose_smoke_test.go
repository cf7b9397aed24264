package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// TestComposeSmoke drives one pipeline through the production stack of docker-compose.yml (Redis,
// `gantry server`, `gantry worker` in containers) as scripts/compose-smoke.sh brought it: the
// script builds the images, exports COMPOSE_FILE, COMPOSE_PROJECT_NAME, DOCKER_GID and the
// GANTRY_COMPOSE_SMOKE_* variables, and tears the stack down afterwards. This test writes the
// config and the .env the stack reads, runs `docker-compose up`, sends a push webhook to the
// server's published port, and waits for success statuses in the GitLab double and the image
// in the test registry; it also checks what the compose file promises: the socket on the worker
// only, nothing published by the worker, uid 10001, AOF on, every service healthy.
func TestComposeSmoke(t *testing.T) {
	if os.Getenv("GANTRY_COMPOSE_SMOKE") != "1" {
		t.Skip("GANTRY_COMPOSE_SMOKE is not 1: run scripts/compose-smoke.sh, which builds the images this test " +
			"brings up with docker-compose and tears the stack down afterwards")
	}
	dir := testenv.Need(t, "GANTRY_COMPOSE_SMOKE_DIR")
	hostIP := testenv.Need(t, "GANTRY_COMPOSE_SMOKE_HOST_IP")
	project := testenv.Need(t, "COMPOSE_PROJECT_NAME") // never the default project of the working directory
	testenv.Need(t, "COMPOSE_FILE")
	gid := testenv.Need(t, "DOCKER_GID")
	busybox := testenv.Need(t, "GANTRY_TEST_BUSYBOX_IMAGE")
	reg := testenv.NeedRegistry(t)

	// The busybox project of startBusyboxProjectWith, whose gantry runs in containers here.
	gl := gitlabtest.New(t)
	repo := gitlabtest.NewRepo(t)
	sha := repo.Commit("busybox app", map[string]string{"Dockerfile": "FROM " + busybox + "\nCOPY . /app\n", "test.sh": "true\n"})
	// The GitLab project and the image are named after the compose project: the script removes
	// the job containers and images an interrupted run leaves by those names.
	proj := gl.AddProject("group/"+project, repo.Dir)
	image := reg.Host + "/" + project + "/bb"
	t.Cleanup(func() { removeImages(t, image) })
	gitlabURL := forwardToContainers(t, hostIP, gl.URL)
	publish := testenv.FreeAddr(t) // 127.0.0.1:port, published by the server container
	g := &gantryProc{url: "http://" + publish, secret: testHookSecret, apiToken: testAPIToken, gitlab: gl,
		project: proj, registry: reg, image: image}

	// Secrets only as ${VAR}: they come from the .env below through the services' environment.
	// Readable by all: the container's uid 10001 reads it.
	cfg := fmt.Sprintf(`
server: {listen: ":8080", public_url: %q}
gitlab: {url: %q, token: "${GITLAB_TOKEN}"}
workers: {concurrency: 2, job_retries: 0}
api: {tokens: ["${GANTRY_API_TOKEN}"]}
registries:
  - {host: %q, username: %q, password: "${REGISTRY_PASSWORD}"}
projects:
  - path: %s
    webhook_secret: "${APP_HOOK_SECRET}"
    image: %s
    tests:
      - {name: check, command: ["sh", "/app/test.sh"], timeout: 1m}
    release: {branches: [main]}
`, g.url, gitlabURL, reg.Host, reg.User, proj.PathWithNamespace, image)
	config := filepath.Join(dir, "gantry.yaml")
	must(t, os.WriteFile(config, []byte(cfg), 0o644))
	must(t, os.Chmod(config, 0o644)) // whatever the umask
	env := strings.Join([]string{
		"GANTRY_CONFIG_FILE=" + config,
		"GANTRY_PUBLISH=" + publish,
		"DOCKER_GID=" + gid,
		"GITLAB_TOKEN=" + gl.Token,
		"GANTRY_API_TOKEN=" + testAPIToken,
		"APP_HOOK_SECRET=" + testHookSecret,
		"REGISTRY_PASSWORD=" + reg.Password,
	}, "\n") + "\n"
	must(t, os.WriteFile(filepath.Join(dir, "smoke.env"), []byte(env), 0o600))

	start := time.Now()
	compose(t, dir, "up", "-d", "--no-build")
	waitReady(t, g.url+"/readyz", time.Minute)
	t.Logf("stack up and ready in %s", time.Since(start).Round(100*time.Millisecond))

	start = time.Now()
	id := g.push(t, "main", zero, sha)
	if p := g.waitFinished(t, id, 3*time.Minute); p.State != "success" {
		t.Fatalf("pipeline %d = %s: %+v", id, p.State, p.Jobs)
	}
	waitStatuses(t, g, sha, map[string][]string{
		"gantry/build": {"pending", "running", "success"}, "gantry/test/check": {"pending", "running", "success"},
		"gantry/release": {"pending", "running", "success"},
	})
	rc := registryClient{host: reg.Host, user: reg.User, password: reg.Password}
	imageRepo := repoPath(image, reg.Host)
	if tags := rc.tags(t, imageRepo); !slices.Equal(tags, []string{sha[:8], "latest"}) {
		t.Errorf("registry tags of %s = %v, want [%s latest]", imageRepo, tags, sha[:8])
	}
	if labels, _ := rc.labels(t, imageRepo, "latest"); labels["org.opencontainers.image.revision"] != sha {
		t.Errorf("latest's revision label = %q, want %s", labels["org.opencontainers.image.revision"], sha)
	}
	t.Logf("push to released image in %s", time.Since(start).Round(100*time.Millisecond))
	assertNoContainers(t, id, proj.PathWithNamespace, 10*time.Second)

	// What the compose file promises.
	server, worker := inspectService(t, dir, "server"), inspectService(t, dir, "worker")
	for _, c := range []composeContainer{server, worker} {
		if c.Config.User != "10001:10001" {
			t.Errorf("%s runs as %q, want 10001:10001", c.Name, c.Config.User)
		}
		if !c.HostConfig.ReadonlyRootfs {
			t.Errorf("%s: root filesystem writable, want read_only", c.Name)
		}
	}
	if server.mounts("/var/run/docker.sock") {
		t.Errorf("%s has the Docker socket; only the worker may", server.Name)
	}
	if !worker.mounts("/var/run/docker.sock") {
		t.Errorf("%s has no Docker socket", worker.Name)
	}
	if !slices.Contains(worker.HostConfig.GroupAdd, gid) {
		t.Errorf("%s groups = %v, want the socket's group %s", worker.Name, worker.HostConfig.GroupAdd, gid)
	}
	if n := len(worker.HostConfig.PortBindings); n != 0 {
		t.Errorf("%s publishes %d ports, want none", worker.Name, n)
	}
	if b := server.HostConfig.PortBindings["8080/tcp"]; len(b) != 1 || net.JoinHostPort(b[0].HostIP, b[0].HostPort) != publish {
		t.Errorf("%s publishes 8080 as %+v, want %s", server.Name, b, publish)
	}
	if out := compose(t, dir, "exec", "-T", "redis", "redis-cli", "config", "get", "appendonly"); !strings.Contains(out, "yes") {
		t.Errorf("redis appendonly = %q, want yes", out)
	}
	waitServicesHealthy(t, dir, []string{"redis", "server", "worker"}, time.Minute)
}

// forwardToContainers makes target, an httptest server on the host's 127.0.0.1, reachable from
// containers on bridge networks: a reverse proxy on the default bridge's gateway address (what
// host-gateway resolves to), for as long as the test runs. It returns the proxy's URL as the
// containers name it.
func forwardToContainers(t *testing.T, hostIP, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	must(t, err)
	ln, err := net.Listen("tcp", net.JoinHostPort(hostIP, "0"))
	must(t, err)
	srv := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(u))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return "http://host.docker.internal:" + port
}

// compose runs docker-compose with the smoke's .env (COMPOSE_FILE and COMPOSE_PROJECT_NAME come
// from the script) and returns its output.
func compose(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("docker-compose", append([]string{"--env-file", filepath.Join(dir, "smoke.env")}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// waitReady polls url until it answers 200.
func waitReady(t *testing.T, url string, limit time.Duration) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
		last = resp.Status
	}
	t.Fatalf("%s not ready after %s: %s", url, limit, last)
}

// composeContainer is what the test reads of `docker inspect`.
type composeContainer struct {
	Name   string
	Config struct{ User string }
	State  struct {
		Health *struct{ Status string }
	}
	HostConfig struct {
		ReadonlyRootfs bool
		GroupAdd       []string
		PortBindings   map[string][]struct{ HostIP, HostPort string }
	}
	Mounts []struct{ Destination string }
}

func (c composeContainer) mounts(dest string) bool {
	return slices.ContainsFunc(c.Mounts, func(m struct{ Destination string }) bool { return m.Destination == dest })
}

// inspectService inspects the one container of a compose service.
func inspectService(t *testing.T, dir, service string) composeContainer {
	t.Helper()
	id := strings.TrimSpace(compose(t, dir, "ps", "-q", service))
	if id == "" || strings.Contains(id, "\n") {
		t.Fatalf("service %s: containers %q, want one", service, id)
	}
	out, err := exec.Command("docker", "inspect", id).Output()
	must(t, err)
	var cs []composeContainer
	must(t, json.Unmarshal(out, &cs))
	if len(cs) != 1 {
		t.Fatalf("docker inspect %s: %d containers", id, len(cs))
	}
	return cs[0]
}

// waitServicesHealthy waits until the services' health checks pass (Docker runs the first one an
// interval after the start).
func waitServicesHealthy(t *testing.T, dir string, services []string, limit time.Duration) {
	t.Helper()
	start := time.Now()
	for deadline := start.Add(limit); ; time.Sleep(time.Second) {
		var pending []string
		for _, s := range services {
			c := inspectService(t, dir, s)
			if c.State.Health == nil {
				t.Fatalf("%s has no health check", c.Name)
			}
			if c.State.Health.Status != "healthy" {
				pending = append(pending, s+": "+c.State.Health.Status)
			}
		}
		if len(pending) == 0 {
			t.Logf("every service healthy %s after the checks began", time.Since(start).Round(time.Second))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healthy after %s: %v", limit, pending)
		}
	}
}

// TestHealthcheck: `gantry healthcheck` passes on a 200 from /readyz, fails on anything else
// and when nothing answers; a wildcard listen address is reached on the loopback address.
func TestHealthcheck(t *testing.T) {
	code := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(code)
		fmt.Fprint(w, `{"redis":"ok"}`)
	}))
	defer srv.Close()
	check := func(args ...string) error {
		return run(t.Context(), append([]string{"healthcheck"}, args...), func(string) string { return "" }, new(strings.Builder), new(strings.Builder))
	}
	if err := check("--url", srv.URL+"/readyz"); err != nil {
		t.Errorf("200: %v", err)
	}
	code = http.StatusServiceUnavailable
	if err := check("--url", srv.URL+"/readyz"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("503: err = %v, want the status", err)
	}
	srv.Close()
	if err := check("--url", srv.URL+"/readyz", "--timeout", "2s"); err == nil {
		t.Error("nothing listening: no error")
	}
	for listen, want := range map[string]string{
		":8080":          "http://127.0.0.1:8080/readyz",
		"0.0.0.0:9000":   "http://127.0.0.1:9000/readyz",
		"[::]:8080":      "http://127.0.0.1:8080/readyz",
		"10.1.2.3:8080":  "http://10.1.2.3:8080/readyz",
		"localhost:8081": "http://localhost:8081/readyz",
	} {
		if got, err := readyzURL(listen); err != nil || got != want {
			t.Errorf("readyzURL(%q) = %q, %v; want %q", listen, got, err, want)
		}
	}
}
