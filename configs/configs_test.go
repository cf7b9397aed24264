package configs_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gantry-ci/gantry/configs"
)

// minimal is the smallest valid project; tests append keys to it.
const minimal = `
projects:
  - path: group/app
    webhook_secret: ` + strongSecret + `
    image: registry.example.com/group/app
`

// writeConfig writes content as a config file in a fresh directory and
// returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gantry.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// env returns a getenv over a fixed map.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// mustLoad loads content and fails the test on any error.
func mustLoad(t *testing.T, content string, getenv func(string) string) *configs.Config {
	t.Helper()
	cfg, err := configs.Load(writeConfig(t, content), getenv)
	if err != nil {
		t.Fatalf("Load(%q) = %v, want no error", content, err)
	}
	return cfg
}

// fieldErrors returns the Errors inside err, failing the test if there are none.
func fieldErrors(t *testing.T, err error) configs.Errors {
	t.Helper()
	var errs configs.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load() = %v, want an error holding configs.Errors", err)
	}
	return errs
}

func TestLoadExpandsEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		get  func(*configs.Config) any
		want any
	}{
		{"set", `server: {public_url: "${URL}"}`, map[string]string{"URL": "https://ci.example.com"},
			func(c *configs.Config) any { return c.Server.PublicURL }, "https://ci.example.com"},
		{"unset without default", `server: {public_url: "${URL}"}`, nil,
			func(c *configs.Config) any { return c.Server.PublicURL }, ""},
		{"unset with default", `server: {public_url: "${URL:-https://d.example.com}"}`, nil,
			func(c *configs.Config) any { return c.Server.PublicURL }, "https://d.example.com"},
		{"set beats default", `server: {public_url: "${URL:-https://d.example.com}"}`, map[string]string{"URL": "https://e.example.com"},
			func(c *configs.Config) any { return c.Server.PublicURL }, "https://e.example.com"},
		{"inside a longer value", `server: {public_url: "https://${HOST}:8443/ci"}`, map[string]string{"HOST": "ci.example.com"},
			func(c *configs.Config) any { return c.Server.PublicURL }, "https://ci.example.com:8443/ci"},
		{"plain value becomes a number", "workers:\n  concurrency: ${W:-3}\n", nil,
			func(c *configs.Config) any { return c.Workers.Concurrency }, 3},
		{"quoted value becomes a number", `workers: {concurrency: "${W:-3}"}`, nil,
			func(c *configs.Config) any { return c.Workers.Concurrency }, 3},
		{"unset duration keeps the default", `workers: {shutdown_grace: "${GRACE}"}`, nil,
			func(c *configs.Config) any { return c.Workers.ShutdownGrace.Duration }, 30 * time.Second},
		{"unset boolean keeps the default", "api:\n  public_pages: ${PAGES}\n", nil,
			func(c *configs.Config) any { return c.API.PublicPages }, true},
		{"set boolean", "api:\n  public_pages: ${PAGES}\n  tokens: [d41f0b9c7e2a5863]\n", map[string]string{"PAGES": "false"},
			func(c *configs.Config) any { return c.API.PublicPages }, false},
		{"unset list element stays in place", minimal + `    tests: [{name: unit, command: [a, "${X}", b]}]`, nil,
			func(c *configs.Config) any { return c.Projects[0].Tests[0].Command }, []string{"a", "", "b"}},
		{"unset plain value keeps the default", "server:\n  listen: ${LISTEN}\n", nil,
			func(c *configs.Config) any { return c.Server.Listen }, ":8080"},
		{"secret", `gitlab: {token: "${TOKEN}"}`, map[string]string{"TOKEN": "glpat-123"},
			func(c *configs.Config) any { return c.GitLab.Token.Value() }, "glpat-123"},
		{"number-like secret stays text", "gitlab:\n  token: ${TOKEN}\n", map[string]string{"TOKEN": "00123"},
			func(c *configs.Config) any { return c.GitLab.Token.Value() }, "00123"},
		{"null-like secret stays text", "gitlab:\n  token: ${TOKEN}\n", map[string]string{"TOKEN": "null"},
			func(c *configs.Config) any { return c.GitLab.Token.Value() }, "null"},
		{"environment value is not expanded again", `gitlab: {token: "${TOKEN}"}`, map[string]string{"TOKEN": "a${B}c", "B": "x"},
			func(c *configs.Config) any { return c.GitLab.Token.Value() }, "a${B}c"},
		{"$${ is a literal ${", minimal + `    tests: [{name: unit, command: [sh, -c, "echo $${HOME}"]}]`, map[string]string{"HOME": "/root"},
			func(c *configs.Config) any { return c.Projects[0].Tests[0].Command[2] }, "echo ${HOME}"},
		{"list elements and map values", minimal + `    tests: [{name: unit, command: ["${PY:-python3}"], env: {A: "${A}"}}]`, map[string]string{"A": "1"},
			func(c *configs.Config) any {
				return []any{c.Projects[0].Tests[0].Command[0], c.Projects[0].Tests[0].Env["A"]}
			},
			[]any{"python3", "1"}},
		{"anchored value used twice", "server: {public_url: &u \"${U}\"}\ngitlab: {url: *u}\n", map[string]string{"U": "https://u.example.com"},
			func(c *configs.Config) any { return []string{c.Server.PublicURL, c.GitLab.URL} },
			[]string{"https://u.example.com", "https://u.example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := mustLoad(t, tt.yaml, env(tt.env))
			if diff := cmp.Diff(tt.want, tt.get(cfg)); diff != "" {
				t.Errorf("Load(%q) mismatch (-want +got):\n%s", tt.yaml, diff)
			}
		})
	}
}

func TestLoadEnvironmentOverrides(t *testing.T) {
	t.Parallel()
	const tokenA, tokenB, tokenC = "token-a-0123456789abcdef", "token-b-0123456789abcdef", "token-c-0123456789abcdef"
	tests := []struct {
		name string
		env  map[string]string
		get  func(*configs.Config) any
		want any
	}{
		{"listen", map[string]string{"GANTRY_SERVER_LISTEN": ":9090"}, func(c *configs.Config) any { return c.Server.Listen }, ":9090"},
		{"public url", map[string]string{"GANTRY_SERVER_PUBLIC_URL": "https://o.example.com"}, func(c *configs.Config) any { return c.Server.PublicURL }, "https://o.example.com"},
		{"redis", map[string]string{"GANTRY_REDIS_URL": "redis://r:6379/1"}, func(c *configs.Config) any { return c.Redis.URL.Value() }, "redis://r:6379/1"},
		{"gitlab url", map[string]string{"GANTRY_GITLAB_URL": "https://g.example.com"}, func(c *configs.Config) any { return c.GitLab.URL }, "https://g.example.com"},
		{"gitlab token", map[string]string{"GANTRY_GITLAB_TOKEN": "glpat-env"}, func(c *configs.Config) any { return c.GitLab.Token.Value() }, "glpat-env"},
		{"docker host", map[string]string{"GANTRY_DOCKER_HOST": "tcp://d:2376"}, func(c *configs.Config) any { return c.Docker.Host }, "tcp://d:2376"},
		{"concurrency", map[string]string{"GANTRY_WORKERS_CONCURRENCY": "12"}, func(c *configs.Config) any { return c.Workers.Concurrency }, 12},
		{"api tokens", map[string]string{"GANTRY_API_TOKENS": tokenA + ", " + tokenB + ",," + tokenC}, func(c *configs.Config) any {
			var out []string
			for _, s := range c.API.Tokens {
				out = append(out, s.Value())
			}
			return out
		}, []string{tokenA, tokenB, tokenC}},
		{"empty means unset", map[string]string{"GANTRY_SERVER_LISTEN": ""}, func(c *configs.Config) any { return c.Server.Listen }, ":7070"},
	}
	const file = `
server: {listen: ":7070", public_url: "https://file.example.com"}
redis: {url: "redis://file:6379/0"}
gitlab: {url: "https://file.example.com", token: file-token}
docker: {host: "unix:///file.sock"}
workers: {concurrency: 2}
api: {tokens: [` + tokenA + `]}
`
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := mustLoad(t, file, env(tt.env))
			if diff := cmp.Diff(tt.want, tt.get(cfg)); diff != "" {
				t.Errorf("Load() with %v mismatch (-want +got):\n%s", tt.env, diff)
			}
		})
	}
	t.Run("bad concurrency", func(t *testing.T) {
		t.Parallel()
		_, err := configs.Load(writeConfig(t, file), env(map[string]string{"GANTRY_WORKERS_CONCURRENCY": "many"}))
		want := configs.Errors{{Key: "GANTRY_WORKERS_CONCURRENCY", Message: `"many" is not an integer`}}
		if diff := cmp.Diff(want, fieldErrors(t, err)); diff != "" {
			t.Errorf("Load() errors mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "absent.yaml")
	if _, err := configs.Load(path, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(%s) = %v, want an error wrapping fs.ErrNotExist", path, err)
	}
}

func TestProjectLookup(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, minimal, nil)
	for _, tt := range []struct {
		path string
		ok   bool
	}{{"group/app", true}, {"Group/App", true}, {"group/other", false}, {"", false}} {
		p, ok := cfg.Project(tt.path)
		if ok != tt.ok || (ok && p != &cfg.Projects[0]) {
			t.Errorf("Project(%q) = %v, %v, want ok %v", tt.path, p, ok, tt.ok)
		}
	}
}

// defaultRedis is the redis block's defaults: retention of 30 days, logs 7, applied every 10m.
var defaultRedis = configs.Redis{PipelineRetention: configs.Duration{Duration: 30 * 24 * time.Hour},
	LogRetention: configs.Duration{Duration: 7 * 24 * time.Hour}, HousekeepingEvery: configs.Duration{Duration: 10 * time.Minute}}

// pinnedDefaults is the configuration of an empty file, spelled out value by value: a default
// changed by mistake (a retention, an interval, a limit) fails TestLoadDefaults.
func pinnedDefaults() *configs.Config {
	return &configs.Config{
		Server:  configs.Server{Listen: ":8080"},
		Redis:   defaultRedis,
		GitLab:  configs.GitLab{StatusPrefix: "gantry", ReconcileEvery: configs.Duration{Duration: 5 * time.Minute}},
		Workers: configs.Workers{Concurrency: 4, JobRetries: 2, ShutdownGrace: configs.Duration{Duration: 30 * time.Second}, ImageRetention: configs.Duration{Duration: 24 * time.Hour}},
		API:     configs.API{PublicPages: true},
	}
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	if diff := cmp.Diff(pinnedDefaults(), configs.Default()); diff != "" {
		t.Errorf("Default() mismatch (-want +got):\n%s", diff)
	}
	tests := []struct {
		name string
		yaml string
		want *configs.Config
	}{
		{"empty file", "", pinnedDefaults()},
		{"project", minimal + "    tests: [{name: unit, command: [pytest]}]\n", &configs.Config{
			Server:  configs.Server{Listen: ":8080"},
			Redis:   defaultRedis,
			GitLab:  configs.GitLab{StatusPrefix: "gantry", ReconcileEvery: configs.Duration{Duration: 5 * time.Minute}},
			Workers: configs.Workers{Concurrency: 4, JobRetries: 2, ShutdownGrace: configs.Duration{Duration: 30 * time.Second}, ImageRetention: configs.Duration{Duration: 24 * time.Hour}},
			API:     configs.API{PublicPages: true},
			Projects: []configs.Project{{
				Path:          "group/app",
				WebhookSecret: strongSecret,
				Image:         "registry.example.com/group/app",
				Build: configs.Build{Dockerfile: "Dockerfile", Context: ".", Pull: configs.PullMissing,
					Memory: 4 * configs.GiB, CPUs: 2, Network: configs.NetworkBridge},
				Supersede: new(true),
				Approval:  configs.ApprovalForks, ApprovalExpiry: configs.Duration{Duration: 7 * 24 * time.Hour},
				Tests: []configs.Test{{
					Name: "unit", Command: []string{"pytest"}, Timeout: configs.Duration{Duration: 10 * time.Minute},
					Memory: 512 * configs.MiB, CPUs: 1, Pids: 256, Network: configs.NetworkNone,
				}},
				Release: configs.Release{Branches: []string{"master"}, Tags: []string{"latest", "{{.ShortSHA}}"}},
				Limits: configs.Limits{Timeout: configs.Duration{Duration: time.Hour}, Memory: 4 * configs.GiB, CPUs: 4, Pids: 4096,
					Networks: []string{configs.NetworkNone}},
			}},
		}},
		{"explicit zero and false beat defaults", `
workers: {job_retries: 0, shutdown_grace: 0s}
api: {public_pages: false, tokens: [d41f0b9c7e2a5863]}
server: {listen: ""}
redis: {pipeline_retention: 0s, log_retention: 0s}
`, &configs.Config{
			Server:  configs.Server{Listen: ":8080"},
			Redis:   configs.Redis{HousekeepingEvery: configs.Duration{Duration: 10 * time.Minute}},
			GitLab:  configs.GitLab{StatusPrefix: "gantry", ReconcileEvery: configs.Duration{Duration: 5 * time.Minute}},
			Workers: configs.Workers{Concurrency: 4, ImageRetention: configs.Duration{Duration: 24 * time.Hour}},
			API:     configs.API{Tokens: []configs.Secret{"d41f0b9c7e2a5863"}},
		}},
		{"python generator", minimal + "    generate: {python: {setup_py: true}}\n    supersede: false\n", func() *configs.Config {
			c := configs.Default()
			c.Projects = []configs.Project{{
				Path: "group/app", WebhookSecret: strongSecret, Image: "registry.example.com/group/app",
				Build: configs.Build{Dockerfile: "Dockerfile", Context: ".", Pull: configs.PullMissing,
					Memory: 4 * configs.GiB, CPUs: 2, Network: configs.NetworkBridge},
				Generate:  configs.Generate{Python: &configs.GeneratePython{Image: "python:3.11-slim", SetupPy: true}},
				Supersede: new(false),
				Approval:  configs.ApprovalForks, ApprovalExpiry: configs.Duration{Duration: 7 * 24 * time.Hour},
				Release: configs.Release{Branches: []string{"master"}, Tags: []string{"latest", "{{.ShortSHA}}"}},
				Limits: configs.Limits{Timeout: configs.Duration{Duration: time.Hour}, Memory: 4 * configs.GiB, CPUs: 4, Pids: 4096,
					Networks: []string{configs.NetworkNone}},
			}}
			return c
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := mustLoad(t, tt.yaml, nil)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Load(%q) mismatch (-want +got):\n%s", tt.yaml, diff)
			}
		})
	}
	if !(&configs.Project{}).SupersedeEnabled() {
		t.Errorf("Project{}.SupersedeEnabled() = false, want true")
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{"GANTRY_REDIS_URL": "redis://127.0.0.1:7000/2", "GANTRY_SERVER_LISTEN": "127.0.0.1:9999"}
	cfg, err := configs.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Redis.URL.Value() != env["GANTRY_REDIS_URL"] || cfg.Server.Listen != env["GANTRY_SERVER_LISTEN"] || cfg.Workers.Concurrency != 4 {
		t.Errorf("FromEnv = %+v, want the overrides on the defaults", cfg)
	}
	if _, err := configs.FromEnv(func(k string) string { return map[string]string{"GANTRY_WORKERS_CONCURRENCY": "zero"}[k] }); err == nil {
		t.Error("FromEnv(GANTRY_WORKERS_CONCURRENCY=zero) = nil error, want one")
	}
}

// TestReleaseTagPushes: a tag push releases under the tag's own name by default, and only for
// tags the whole of whose name matches the pattern.
func TestReleaseTagPushes(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, minimal+"    release: {tag_pushes: true, tag_pattern: 'v[0-9]+\\.[0-9]+\\.[0-9]+'}\n", nil)
	r := cfg.Projects[0].Release
	if !cmp.Equal(r.TagTags, []string{"{{.Tag}}"}) {
		t.Errorf("release.tag_tags = %v, want the default [{{.Tag}}], never latest", r.TagTags)
	}
	re := r.TagRegexp()
	for tag, want := range map[string]bool{"v1.2.3": true, "v1.2.3-evil": false, "xv1.2.3": false, "latest": false} {
		if got := re != nil && re.MatchString(tag); got != want {
			t.Errorf("TagRegexp().MatchString(%q) = %v, want %v: the pattern matches whole names", tag, got, want)
		}
	}
	if re := mustLoad(t, minimal, nil).Projects[0].Release.TagRegexp(); re != nil {
		t.Errorf("TagRegexp() without tag pushes = %v, want nil: no tag releases", re)
	}
}

// TestTestReports: a test's report path is kept as written, and its coverage pattern compiles
// with or without GitLab CI's enclosing slashes, to one that finds the percentage in its group.
func TestTestReports(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, minimal+`    tests:
      - {name: unit, command: [x], junit: /out/junit.xml, coverage: '/^TOTAL.*\s(\d+%)$/'}
      - {name: lint, command: [x], coverage: 'lines: (\d+\.\d+)'}
      - {name: e2e, command: [x]}
`, nil)
	tests := cfg.Projects[0].Tests
	if tests[0].JUnit != "/out/junit.xml" || tests[1].JUnit != "" {
		t.Errorf("tests[].junit = %q, %q; want /out/junit.xml and none", tests[0].JUnit, tests[1].JUnit)
	}
	for i, line := range []string{"TOTAL    120   12   90%", "lines: 87.5 of them"} {
		re := tests[i].CoverageRegexp()
		if m := re.FindStringSubmatch(line); len(m) != 2 || !strings.ContainsAny(m[1], "0123456789") {
			t.Errorf("tests[%d].CoverageRegexp() = %v matching %q: %q, want the percentage in its group", i, re, line, m)
		}
	}
	if re := tests[2].CoverageRegexp(); re != nil {
		t.Errorf("CoverageRegexp() without coverage = %v, want nil", re)
	}
}

// TestLoadMergeKeys: a YAML merge key (<<: *anchor, or a list of anchors) fills a mapping from
// another, as YAML says, with the mapping's own keys winning; a merge of something that is not
// a mapping is refused under the mapping's key.
func TestLoadMergeKeys(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, minimal+`    tests:
      - &unit {name: unit, command: [pytest], timeout: 5m}
      - <<: *unit
        name: lint
      - <<: [*unit]
        name: slow
        timeout: 1h
`, nil)
	var got []string
	for _, tt := range cfg.Projects[0].Tests {
		got = append(got, tt.Name+" "+tt.Command[0]+" "+tt.Timeout.String())
	}
	if want := []string{"unit pytest 5m0s", "lint pytest 5m0s", "slow pytest 1h0m0s"}; !cmp.Equal(want, got) {
		t.Errorf("tests with merge keys = %q, want %q", got, want)
	}

	for _, tt := range []struct{ name, tests, key, msg string }{
		{"scalar", "      - {name: unit, command: [x], <<: 5}\n", "projects[0].tests[0]", "must be a mapping"},
		{"list of a scalar", "      - {name: unit, command: [x], <<: [5]}\n", "projects[0].tests[0]", "must be a mapping"},
		{"unknown key merged", "      - &a {name: unit, command: [x]}\n      - {<<: *a, name: b, nope: 1}\n", "projects[0].tests[1].nope", "unknown key"},
	} {
		_, err := configs.Load(writeConfig(t, minimal+"    tests:\n"+tt.tests), nil)
		errs := fieldErrors(t, err)
		if len(errs) != 1 || errs[0].Key != tt.key || !strings.Contains(errs[0].Message, tt.msg) {
			t.Errorf("%s: Load() = %v, want one error %s: …%s…", tt.name, err, tt.key, tt.msg)
		}
	}
}
