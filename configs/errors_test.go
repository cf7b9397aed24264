package configs_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gantry-ci/gantry/configs"
)

func TestLoadReportsAllErrorsAtOnce(t *testing.T) {
	t.Parallel()
	const file = `
server: {public_url: "ftp://ci.example.com"}
workers: {concurrency: 0}
projects:
  - path: group/app
    webhook_secret: ` + strongSecret + `
    image: registry.example.com/group/app:v1
    release: {branches: []}
  - path: Group/App
    image: registry.example.com/group/other
    tests:
      - {name: unit, command: ["true"], timeout: ten}
      - {name: "Unit!", command: []}
    schedules: [{cron: "61 * * * *", ref: master}]
`
	_, err := configs.Load(writeConfig(t, file), nil)
	errs := fieldErrors(t, err)
	var got []string
	for _, e := range errs {
		got = append(got, e.Key)
	}
	want := []string{
		"projects[1].tests[0].timeout", // decoding problems come first, in file order
		"server.public_url",
		"workers.concurrency",
		"projects[0].image",
		"projects[0].release.branches",
		"projects[1].path",
		"projects[1].webhook_secret",
		"projects[1].tests[1].name",
		"projects[1].tests[1].command",
		"projects[1].schedules[0].cron",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load() error keys mismatch (-want +got):\n%s\nerror:\n%v", diff, err)
	}
	for _, msg := range []string{
		`projects[1].tests[0].timeout: "ten" is not a duration`,
		"projects[0].release.branches: must not be empty",
		`projects[1].path: "Group/App" is already configured in projects[0]`,
	} {
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("Load() = %v, want it to contain %q", err, msg)
		}
	}
}

func TestLoadRejectsUnknownKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		want       configs.FieldError
	}{
		{"top level", "serve: {listen: \":1\"}\n", configs.FieldError{Key: "serve", Message: "unknown key (did you mean server?)"}},
		{"nested", minimal + "    build: {dockerfil: Dockerfile}\n",
			configs.FieldError{Key: "projects[0].build.dockerfil", Message: "unknown key (did you mean dockerfile?)"}},
		{"in a list", minimal + "    tests: [{name: unit, command: [x], timout: 1m}]\n",
			configs.FieldError{Key: "projects[0].tests[0].timout", Message: "unknown key (did you mean timeout?)"}},
		{"nothing close", "workers: {colour: blue}\n", configs.FieldError{Key: "workers.colour", Message: "unknown key"}},
		// Three edits away is too far to suggest, counting the key's last letter too.
		{"three edits away", "workers: {concurrencyxyz: 1}\n", configs.FieldError{Key: "workers.concurrencyxyz", Message: "unknown key"}},
		// "bat" is two edits from base and from path: a tie goes to the first in sorted order.
		{"a tie", minimal + "    bat: x\n", configs.FieldError{Key: "projects[0].bat", Message: "unknown key (did you mean base?)"}},
		{"set twice", "server: {listen: \":1\"}\nserver: {listen: \":2\"}\n", configs.FieldError{Key: "server", Message: "set twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := configs.Load(writeConfig(t, tt.yaml), nil)
			if diff := cmp.Diff(configs.Errors{tt.want}, fieldErrors(t, err)); diff != "" {
				t.Errorf("Load(%q) errors mismatch (-want +got):\n%s", tt.yaml, diff)
			}
		})
	}
}

func TestLoadRejectsWrongTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		want       configs.FieldError
	}{
		{"integer", "workers: {concurrency: many}\n", configs.FieldError{Key: "workers.concurrency", Message: `"many" is not an integer`}},
		{"boolean", "api: {public_pages: maybe}\n", configs.FieldError{Key: "api.public_pages", Message: `"maybe" is not true or false`}},
		{"duration", "workers: {shutdown_grace: 30}\n",
			configs.FieldError{Key: "workers.shutdown_grace", Message: `"30" is not a duration (e.g. 90s, 10m, 1h30m)`}},
		{"byte size", minimal + "    tests: [{name: unit, command: [x], memory: lots}]\n",
			configs.FieldError{Key: "projects[0].tests[0].memory", Message: `"lots" is not a byte size (e.g. 512MiB, 1GiB, 256m, 1048576)`}},
		{"number", minimal + "    tests: [{name: unit, command: [x], cpus: half}]\n",
			configs.FieldError{Key: "projects[0].tests[0].cpus", Message: `"half" is not a number`}},
		{"list as value", minimal + "    tests: [{name: unit, command: pytest}]\n",
			configs.FieldError{Key: "projects[0].tests[0].command", Message: "must be a list, not a single value"}},
		{"mapping as list", "projects: {path: group/app}\n", configs.FieldError{Key: "projects", Message: "must be a list, not a mapping"}},
		{"list as string", "server: {listen: [a]}\n", configs.FieldError{Key: "server.listen", Message: "must be a string, not a list"}},
		{"bad reference", "gitlab: {token: \"pa${ss\"}\n",
			configs.FieldError{Key: "gitlab.token", Message: "unterminated ${ (write $${ for a literal ${)"}},
		{"not a mapping", "- a\n", configs.FieldError{Message: "must be a mapping, not a list"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := configs.Load(writeConfig(t, tt.yaml), nil)
			if diff := cmp.Diff(configs.Errors{tt.want}, fieldErrors(t, err)); diff != "" {
				t.Errorf("Load(%q) errors mismatch (-want +got):\n%s", tt.yaml, diff)
			}
		})
	}
}

// oauthBase is a config that sign-in with GitLab needs besides api.oauth itself, ending inside api:.
const oauthBase = "server: {public_url: \"https://gantry.example.com\"}\ngitlab: {url: \"https://gitlab.example.com\"}\napi:\n  public_pages: false\n"

// cookieSecret is a cookie secret strong enough to be accepted.
const cookieSecret = "5f0c8a1e9b7d3c2a6e4f8b0d1c3a5e7f9b2d4c6a8e0f1b3d"

func TestLoadValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		key, msg   string
	}{
		{"listen", "server: {listen: \"8080\"}\n", "server.listen", `"8080" is not a host:port address`},
		{"port too high", "server: {listen: \":65536\"}\n", "server.listen", `":65536" is not a host:port address`},
		{"no image retention", "workers: {image_retention: 0s}\nredis: {pipeline_retention: 0s}\n", "workers.image_retention", "must be positive, not 0s"},
		{"gitlab url", "gitlab: {url: gitlab.example.com}\n", "gitlab.url", "is not an absolute http(s) URL"},
		{"redis scheme", "redis: {url: \"http://:pw@r:6379\"}\n", "redis.url", "must be a redis://"},
		{"docker host", "docker: {host: \"localhost:2375\"}\n", "docker.host", "is not a Docker host"},
		{"docker tls", "docker: {tls_verify: true}\n", "docker.cert_path", "required when docker.tls_verify"},
		{"docker cert path missing", "docker: {cert_path: /nonexistent/certs}\n", "docker.cert_path", "no such file or directory"},
		{"docker cert path a file", "docker: {cert_path: /dev/null}\n", "docker.cert_path", "/dev/null is not a directory"},
		{"negative retries", "workers: {job_retries: -1}\n", "workers.job_retries", "must not be negative"},
		{"negative pipeline retention", "redis: {pipeline_retention: -1h}\n", "redis.pipeline_retention", "must not be negative"},
		{"negative log retention", "redis: {log_retention: -1h}\n", "redis.log_retention", "must not be negative"},
		{"retention below the images'", "redis: {pipeline_retention: 1h}\nworkers: {image_retention: 24h}\n", "redis.pipeline_retention", "must be at least workers.image_retention (24h0m0s)"},
		{"reconcile interval", "gitlab: {reconcile_every: 10ms}\n", "gitlab.reconcile_every", "must be at least 1s, or 0"},
		{"re-enabling hooks without a public URL", "gitlab: {reenable_hooks: true}\n", "gitlab.reenable_hooks", "needs server.public_url"},
		{"re-enabling hooks without the check", "server: {public_url: \"https://gantry.example.com\"}\ngitlab: {reenable_hooks: true, reconcile_every: 0s}\n", "gitlab.reenable_hooks", "needs server.public_url"},
		{"housekeeping interval", "redis: {housekeeping_every: 10ms}\n", "redis.housekeeping_every", "must be at least 1s"},
		{"private pages nobody can open", "api: {public_pages: false}\n", "api.public_pages", "neither api.oauth (sign-in with GitLab) nor api.tokens is set"},
		{"oauth secret without an application", "api: {public_pages: false, tokens: [d41f0b9c7e2a5863], oauth: {secret: s3cr3t-of-the-app}}\n", "api.oauth.application_id", "required when api.oauth.secret"},
		{"oauth without its secret", oauthBase + "  oauth: {application_id: app1, cookie_secret: " + cookieSecret + "}\n", "api.oauth.secret", "required with api.oauth.application_id"},
		{"oauth with a short cookie secret", oauthBase + "  oauth: {application_id: app1, secret: gloas-s3cr3t, cookie_secret: 0123456789abcdef}\n", "api.oauth.cookie_secret", "must be at least 32 characters"},
		{"oauth with a placeholder cookie secret", oauthBase + "  oauth: {application_id: app1, secret: gloas-s3cr3t, cookie_secret: change-me-change-me-change-me-change-me}\n", "api.oauth.cookie_secret", "must be at least 32 characters and random"},
		{"oauth on public pages", "server: {public_url: \"https://gantry.example.com\"}\ngitlab: {url: \"https://gitlab.example.com\"}\napi:\n  oauth: {application_id: app1, secret: gloas-s3cr3t, cookie_secret: " + cookieSecret + "}\n", "api.oauth", "only when api.public_pages is false"},
		{"oauth without a public URL", "gitlab: {url: \"https://gitlab.example.com\"}\napi:\n  public_pages: false\n  oauth: {application_id: app1, secret: gloas-s3cr3t, cookie_secret: " + cookieSecret + "}\n", "server.public_url", "<public_url>/signin/callback"},
		{"oauth without gitlab", "server: {public_url: \"https://gantry.example.com\"}\napi:\n  public_pages: false\n  oauth: {application_id: app1, secret: gloas-s3cr3t, cookie_secret: " + cookieSecret + "}\n", "gitlab.url", "required with api.oauth"},
		{"oauth session lifetime", oauthBase + "  oauth: {application_id: app1, secret: gloas-s3cr3t, cookie_secret: " + cookieSecret + ", session_lifetime: 1s}\n", "api.oauth.session_lifetime", "must be from 1m to 720h"},
		{"oauth session lifetime past 720h", oauthBase + "  oauth: {application_id: app1, secret: gloas-s3cr3t, cookie_secret: " + cookieSecret + ", session_lifetime: 720h1s}\n", "api.oauth.session_lifetime", "must be from 1m to 720h"},
		{"registry host", "registries: [{host: \"https://r.example.com\"}]\n", "registries[0].host", "is not a registry host"},
		{"registry twice", "registries: [{host: r.example.com}, {host: R.example.com}]\n", "registries[1].host", "already configured in registries[0]"},
		{"registry ca file", "registries: [{host: r.example.com, ca_file: /nonexistent/ca.pem}]\n", "registries[0].ca_file", "is not used by gantry"},
		{"project path", "projects: [{path: app, webhook_secret: " + strongSecret + ", image: r.example.com/app}]\n", "projects[0].path", "is not a GitLab project path"},
		{"numeric project id", "projects: [{path: \"42\", webhook_secret: " + strongSecret + ", image: r.example.com/app}]\n", "projects[0].path",
			"use the path_with_namespace (group/app), not the numeric id"},
		{"image reference", "projects: [{path: g/app, webhook_secret: " + strongSecret + ", image: \"r.example.com/App\"}]\n", "projects[0].image", "is not an image reference"},
		{"dockerfile outside", minimal + "    build: {dockerfile: ../Dockerfile}\n", "projects[0].build.dockerfile", "relative path inside the repository"},
		{"pull", minimal + "    build: {pull: never}\n", "projects[0].build.pull", `"never" is not one of missing, always`},
		{"base image arg", minimal + "    build: {args: {BASE_IMAGE: x}}\n", "projects[0].build.args.BASE_IMAGE", "reserved"},
		{"arg name", minimal + "    build: {args: {\"A-B\": x}}\n", "projects[0].build.args.A-B", "is not a variable name"},
		{"base inputs", minimal + "    base: {dockerfile: Dockerfile.base, image: r.example.com/base}\n", "projects[0].base.inputs", "must not be empty"},
		{"base image", minimal + "    base: {dockerfile: D, inputs: [r.txt], image: registry.example.com/group/app}\n", "projects[0].base.image", "must differ from projects[0].image"},
		{"index url credentials", minimal + "    generate: {python: {index_url: \"https://u:p@pypi.example.com/simple\"}}\n",
			"projects[0].generate.python.index_url", "must not contain credentials"},
		{"system package", minimal + "    generate: {python: {system_packages: [\"curl; rm -rf /\"]}}\n",
			"projects[0].generate.python.system_packages[0]", "is not a Debian package name"},
		{"reserved test name", minimal + "    tests: [{name: build, command: [x]}]\n", "projects[0].tests[0].name", "reserved for the build job"},
		{"test named release", minimal + "    tests: [{name: release, command: [x]}]\n", "projects[0].tests[0].name", `"release" is reserved for the release job`},
		{"negative test timeout", minimal + "    tests: [{name: unit, command: [x], timeout: -1s}]\n", "projects[0].tests[0].timeout", "must be positive, not -1s"},
		{"test name twice", minimal + "    tests: [{name: unit, command: [x]}, {name: unit, command: [y]}]\n", "projects[0].tests[1].name", "already used by projects[0].tests[0]"},
		{"memory", minimal + "    tests: [{name: unit, command: [x], memory: 1m}]\n", "projects[0].tests[0].memory", "must be at least 6MiB"},
		{"build memory", minimal + "    build: {memory: 1m}\n", "projects[0].build.memory", "must be at least 6MiB"},
		{"build cpus", minimal + "    build: {cpus: 0.001}\n", "projects[0].build.cpus", "must be at least 0.01"},
		{"build network", minimal + "    build: {network: host}\n", "projects[0].build.network", `"host" is not one of bridge, none`},
		{"network", minimal + "    tests: [{name: unit, command: [x], network: host}]\n", "projects[0].tests[0].network", `"host" is not one of none, bridge`},
		{"env name", minimal + "    tests: [{name: unit, command: [x], env: {\"1A\": x}}]\n", "projects[0].tests[0].env.1A", "is not a variable name"},
		{"junit relative", minimal + "    tests: [{name: unit, command: [x], junit: out/junit.xml}]\n", "projects[0].tests[0].junit", "must be an absolute path in the container of test \"unit\""},
		{"junit unclean", minimal + "    tests: [{name: unit, command: [x], junit: /out/../etc//junit.xml}]\n", "projects[0].tests[0].junit", "not a clean path (write /etc/junit.xml)"},
		{"junit root", minimal + "    tests: [{name: unit, command: [x], junit: /}]\n", "projects[0].tests[0].junit", "must name a file"},
		{"coverage syntax", minimal + "    tests: [{name: unit, command: [x], coverage: \"TOTAL (\\\\d+\"}]\n", "projects[0].tests[0].coverage", "is not a regular expression"},
		{"coverage without a group", minimal + "    tests: [{name: unit, command: [x], coverage: \"/TOTAL \\\\d+%/\"}]\n", "projects[0].tests[0].coverage", "exactly one group, the percentage, not 0"},
		// A lone slash is a pattern, not a pair of GitLab CI's enclosing slashes around nothing.
		{"coverage a lone slash", minimal + "    tests: [{name: unit, command: [x], coverage: /}]\n", "projects[0].tests[0].coverage", "exactly one group, the percentage, not 0"},
		{"coverage with two groups", minimal + "    tests: [{name: unit, command: [x], coverage: \"(\\\\d+)/(\\\\d+)\"}]\n", "projects[0].tests[0].coverage", "not 2"},
		{"ref as branch", minimal + "    release: {branches: [refs/heads/master]}\n", "projects[0].release.branches[0]", "is a ref"},
		{"tag template", minimal + "    release: {tags: [\"{{.Nope}}\"]}\n", "projects[0].release.tags[0]", "does not render"},
		{"tag syntax", minimal + "    release: {tags: [\"{{.SHA\"]}\n", "projects[0].release.tags[0]", "is not a template"},
		{"tag per branch", minimal + "    release: {branches: [master, release/1.x], tags: [\"{{.Ref}}\"]}\n",
			"projects[0].release.tags[0]", `renders "release/1.x" for branch release/1.x, which is not a Docker tag`},
		{"test tag", minimal + "    release: {tags: [\"test-{{.PipelineID}}\"]}\n", "projects[0].release.tags[0]", "test images"},
		{"fork tag", minimal + "    release: {tags: [\"Fork-{{.ShortSHA}}\"]}\n", "projects[0].release.tags[0]", "test images"},
		{"empty tags", minimal + "    release: {tags: []}\n", "projects[0].release.tags", "must not be empty"},
		{"tag pushes without a pattern", minimal + "    release: {tag_pushes: true}\n", "projects[0].release.tag_pattern", "required when tag_pushes is true"},
		{"tag pattern", minimal + "    release: {tag_pushes: true, tag_pattern: \"v[\"}\n", "projects[0].release.tag_pattern", "is not a regular expression"},
		{"tag push template", minimal + "    release: {tag_pushes: true, tag_pattern: \"v.*\", tag_tags: [\"{{.Nope}}\"]}\n", "projects[0].release.tag_tags[0]", "does not render"},
		{"tag in a branch template", minimal + "    release: {tags: [\"{{.Tag}}\"]}\n", "projects[0].release.tags[0]", "which is not a Docker tag"},
		{"schedule ref", minimal + "    schedules: [{cron: \"@daily\"}]\n", "projects[0].schedules[0].ref", "required"},
		{"approval", minimal + "    approval: members\n", "projects[0].approval", `"members" is not one of none, forks, non-members, all`},
		{"approval expiry", minimal + "    approval_expiry: 500ms\n", "projects[0].approval_expiry", "must be at least 1s"},
		{"untrusted network", minimal + "    untrusted: {network: host}\n", "projects[0].untrusted.network", `"host" is not one of bridge, none`},
		{"untrusted memory", minimal + "    untrusted: {memory: 1m}\n", "projects[0].untrusted.memory", "must be at least 6MiB"},
		{"untrusted cpus", minimal + "    untrusted: {cpus: 0.001}\n", "projects[0].untrusted.cpus", "must be at least 0.01"},
		{"untrusted pass", minimal + "    build: {args: {PY: \"3\"}}\n    tests: [{name: unit, command: [x], env: {DB: x}}]\n    untrusted: {pass: [PY, DB, TOKEN]}\n",
			"projects[0].untrusted.pass[2]", `"TOKEN" is neither a build arg nor a test's env variable`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := configs.Load(writeConfig(t, tt.yaml), nil)
			errs := fieldErrors(t, err)
			if len(errs) != 1 || errs[0].Key != tt.key || !strings.Contains(errs[0].Message, tt.msg) {
				t.Errorf("Load(%q) = %v, want one error %s: …%s…", tt.yaml, err, tt.key, tt.msg)
			}
		})
	}
}

// TestLoadKeepsListIndexes: a bad list element is replaced by an empty one, not dropped, so the
// elements after it keep their indexes in later messages, and the empty one draws no second
// message of its own.
func TestLoadKeepsListIndexes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		want       configs.Errors
	}{
		{"bad string", minimal + "    tests: [{name: unit, command: [x]}, {name: lint, command: [[y], z], timeout: x}]\n", configs.Errors{
			{Key: "projects[0].tests[1].command[0]", Message: "must be a string, not a list"},
			{Key: "projects[0].tests[1].timeout", Message: `"x" is not a duration (e.g. 90s, 10m, 1h30m)`},
		}},
		{"bad mapping", minimal + "    tests: [unit, {name: lint, command: [x], timeout: 0.5}]\n", configs.Errors{
			{Key: "projects[0].tests[0]", Message: "must be a mapping, not a single value"},
			{Key: "projects[0].tests[1].timeout", Message: `"0.5" is not a duration (e.g. 90s, 10m, 1h30m)`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := configs.Load(writeConfig(t, tt.yaml), nil)
			if diff := cmp.Diff(tt.want, fieldErrors(t, err)); diff != "" {
				t.Errorf("Load(%q) errors mismatch (-want +got):\n%s", tt.yaml, diff)
			}
		})
	}
}

// TestLoadAcceptsLimits: every lower or upper limit a check enforces is itself allowed (Docker's
// 6MiB minimum, a 0.01 CPU quota, one process, 1s intervals, ports 0 and 65535), so a check
// that tightens by one step fails here. Also values that take a rarer path through the checks.
func TestLoadAcceptsLimits(t *testing.T) {
	t.Parallel()
	for name, yaml := range map[string]string{
		"build memory":                     minimal + "    build: {memory: 6MiB}\n",
		"build cpus":                       minimal + "    build: {cpus: 0.01}\n",
		"test memory and pids":             minimal + "    tests: [{name: unit, command: [x], memory: 6MiB, pids: 1}]\n",
		"ceilings at their floors":         minimal + "    limits: {memory: 6MiB, pids: 1}\n",
		"shortest session lifetime":        oauthBase + "  oauth: {application_id: app1, secret: gloas-s3cr3t, cookie_secret: " + cookieSecret + ", session_lifetime: 1m}\n",
		"longest session lifetime":         oauthBase + "  oauth: {application_id: app1, secret: gloas-s3cr3t, cookie_secret: " + cookieSecret + ", session_lifetime: 720h}\n",
		"approval expiry":                  minimal + "    approval_expiry: 1s\n",
		"untrusted limits":                 minimal + "    untrusted: {memory: 6MiB, cpus: 0.01}\n",
		"one worker":                       "workers: {concurrency: 1}\n",
		"intervals":                        "gitlab: {reconcile_every: 1s}\nredis: {housekeeping_every: 1s}\n",
		"port 0":                           "server: {listen: \":0\"}\n",
		"port 65535":                       "server: {listen: \":65535\"}\n",
		"pipelines kept as long as images": "redis: {pipeline_retention: 24h}\nworkers: {image_retention: 24h}\n",
		"image without registry or slash":  "projects: [{path: g/app, webhook_secret: " + strongSecret + ", image: app}]\n",
		"empty section keeps the defaults": "server:\nworkers:\n",
		// A retired key whose alias names an empty value sets nothing, as an empty one does.
		"retired key through an alias": "registries: [{host: r.example.com, username: &none \"\", ca_file: *none}]\n",
	} {
		if _, err := configs.Load(writeConfig(t, yaml), nil); err != nil {
			t.Errorf("%s: Load(%q) = %v, want no error", name, yaml, err)
		}
	}
}
