package configs

import (
	"maps"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// validate checks everything that decoding alone cannot: required values,
// allowed words, references between keys, and files on this host. It runs on
// a Config with defaults filled in, and messages never quote a Secret.
func (c *Config) validate() Errors {
	var errs Errors
	if _, port, err := net.SplitHostPort(c.Server.Listen); err != nil || !isPort(port) {
		errs.add("server.listen", "%q is not a host:port address (e.g. :8080)", shown(c.Server.Listen))
	}
	checkHTTPURL(&errs, "server.public_url", c.Server.PublicURL)
	if u := c.Redis.URL.Value(); u != "" {
		if scheme, _, found := strings.Cut(u, "://"); found && (strings.EqualFold(scheme, "redis+sentinel") || strings.EqualFold(scheme, "rediss+sentinel")) {
			// A list of hosts is no URL host for net/url: the host list and the master are
			// checked when gantry opens Redis.
			rest, _, _ := strings.Cut(u[len(scheme)+len("://"):], "?")
			if _, path, _ := strings.Cut(rest, "/"); strings.Trim(path, "/") == "" {
				errs.add("redis.url", "a sentinel URL names the master: %s://host1:port1,host2:port2/<master-name>[/<db>]", strings.ToLower(scheme))
			}
		} else if p, err := url.Parse(u); err != nil || (p.Scheme != "redis" && p.Scheme != "rediss" && p.Scheme != "unix") {
			errs.add("redis.url", "must be a redis://, rediss://, unix://, redis+sentinel:// or rediss+sentinel:// URL")
		}
	}
	if c.Redis.MinReplicas < 0 {
		errs.add("redis.min_replicas", "must not be negative (0 turns it off), not %d", c.Redis.MinReplicas)
	}
	if d := c.Redis.ReplicaTimeout.Duration; d < 0 || (d > 0 && d < time.Millisecond) || d > 2*time.Second {
		// WAIT counts in milliseconds; 0 is the default (1s), never WAIT's "forever". WAIT ends
		// the intake's pipelined round trip, which the Redis client's read timeout (3s by
		// default) bounds: a longer wait would fail the round trip and send it again.
		errs.add("redis.replica_timeout", "must be from 1ms to 2s (0: the default, 1s), not %s", c.Redis.ReplicaTimeout)
	}
	checkHTTPURL(&errs, "gitlab.url", c.GitLab.URL)
	if strings.ContainsAny(c.GitLab.StatusPrefix, " \t\n") {
		errs.add("gitlab.status_prefix", "%q must not contain spaces", c.GitLab.StatusPrefix)
	}
	c.Docker.validate(&errs)
	c.validateOAuth(&errs)
	if c.Workers.Concurrency < 1 {
		errs.add("workers.concurrency", "must be at least 1, not %d", c.Workers.Concurrency)
	}
	if c.Workers.JobRetries < 0 {
		errs.add("workers.job_retries", "must not be negative, not %d", c.Workers.JobRetries)
	}
	if d := c.Redis.PipelineRetention; d.Duration < 0 {
		errs.add("redis.pipeline_retention", "must not be negative (0 keeps forever), not %s", d)
	}
	if d := c.Redis.LogRetention; d.Duration < 0 {
		errs.add("redis.log_retention", "must not be negative (0 keeps them as long as the pipeline), not %s", d)
	}
	if d := c.Redis.PipelineRetention.Duration; d > 0 && d < c.Workers.ImageRetention.Duration {
		// The sweep finds a finished pipeline's image through its record.
		errs.add("redis.pipeline_retention", "must be at least workers.image_retention (%s), or 0, not %s: a pipeline's image is removed through its record", c.Workers.ImageRetention, d)
	}
	if d := c.GitLab.ReconcileEvery.Duration; d != 0 && d < time.Second {
		errs.add("gitlab.reconcile_every", "must be at least 1s, or 0 to turn it off, not %s", c.GitLab.ReconcileEvery)
	}
	if c.GitLab.ReenableHooks && (c.Server.PublicURL == "" || c.GitLab.ReconcileEvery.Duration == 0) {
		errs.add("gitlab.reenable_hooks", "needs server.public_url (gantry's hooks are found by their URL) and gitlab.reconcile_every (the check that runs it)")
	}
	if c.Redis.HousekeepingEvery.Duration < time.Second {
		errs.add("redis.housekeeping_every", "must be at least 1s, not %s", c.Redis.HousekeepingEvery)
	}
	if c.Workers.ImageRetention.Duration <= 0 {
		errs.add("workers.image_retention", "must be positive, not %s", c.Workers.ImageRetention)
	}
	if c.Workers.ShutdownGrace.Duration < 0 {
		errs.add("workers.shutdown_grace", "must not be negative, not %s", c.Workers.ShutdownGrace)
	}

	hosts := map[string]int{}
	for i, r := range c.Registries {
		key := index("registries", i)
		switch h := strings.ToLower(r.Host); {
		case h == "":
			errs.add(field(key, "host"), "required")
		case !registryHost.MatchString(h):
			errs.add(field(key, "host"), "%q is not a registry host[:port], without scheme, credentials or path", shown(r.Host))
		default:
			if j, dup := hosts[h]; dup {
				errs.add(field(key, "host"), "%q is already configured in registries[%d]", r.Host, j)
			} else {
				hosts[h] = i
			}
		}
	}

	paths := map[string]int{}
	for i := range c.Projects {
		key := index("projects", i)
		p := &c.Projects[i]
		if p.Path != "" {
			lower := strings.ToLower(p.Path)
			if j, dup := paths[lower]; dup {
				errs.add(field(key, "path"), "%q is already configured in projects[%d]", p.Path, j)
			} else {
				paths[lower] = i
			}
		}
		p.validate(&errs, key)
	}
	return errs
}

// minCookieSecretLength is the shortest api.oauth.cookie_secret: the session cookie's keys are
// derived from it, and it guards every visitor's GitLab token.
const minCookieSecretLength = 32

// validateOAuth checks sign-in with GitLab, and that private pages can be read by someone: with
// public_pages false, neither a sign-in nor an API token would leave every page a 401.
func (c *Config) validateOAuth(errs *Errors) {
	o := c.API.OAuth
	if !o.Enabled() {
		if o.Secret != "" || o.CookieSecret != "" {
			errs.add("api.oauth.application_id", "required when api.oauth.secret or api.oauth.cookie_secret is set")
		}
		if !c.API.PublicPages && len(c.API.Tokens) == 0 {
			errs.add("api.public_pages", "is false, but neither api.oauth (sign-in with GitLab) nor api.tokens is set: nobody could open the pages")
		}
		return
	}
	if o.Secret == "" {
		errs.add("api.oauth.secret", "required with api.oauth.application_id: the GitLab application's secret")
	}
	switch cs := o.CookieSecret.Value(); {
	case cs == "":
		errs.add("api.oauth.cookie_secret", "required with api.oauth.application_id; %s", secretAdvice)
	case len(cs) < minCookieSecretLength || isPlaceholder(cs):
		errs.add("api.oauth.cookie_secret", "must be at least %d characters and random; %s", minCookieSecretLength, secretAdvice)
	}
	if c.Server.PublicURL == "" {
		errs.add("server.public_url", "required with api.oauth: GitLab sends visitors back to <public_url>/signin/callback")
	}
	if c.GitLab.URL == "" {
		errs.add("gitlab.url", "required with api.oauth: visitors sign in there")
	}
	if c.API.PublicPages {
		errs.add("api.oauth", "signs visitors in only when api.public_pages is false; set it false, or remove api.oauth")
	}
	if d := o.SessionLifetime.Duration; d != 0 && (d < time.Minute || d > 30*24*time.Hour) {
		errs.add("api.oauth.session_lifetime", "must be from 1m to 720h (0: the default, 8h), not %s", o.SessionLifetime)
	}
}

func (d *Docker) validate(errs *Errors) {
	if d.Host != "" {
		proto, addr, ok := strings.Cut(d.Host, "://")
		switch proto {
		case "unix", "tcp", "npipe", "http", "https":
		default:
			ok = false
		}
		if !ok || addr == "" {
			errs.add("docker.host", "%q is not a Docker host (unix:///var/run/docker.sock or tcp://host:2376)", shown(d.Host))
		}
	}
	if d.TLSVerify && d.CertPath == "" {
		errs.add("docker.cert_path", "required when docker.tls_verify is true (a directory with ca.pem, cert.pem and key.pem)")
	}
	checkHostFile(errs, "docker.cert_path", d.CertPath, true)
}

var (
	// registryHost is the host[:port] part of an image reference, following
	// the grammar of github.com/distribution/reference.
	registryHost = regexp.MustCompile(`^(?:` + domain + `|\[[0-9a-f:]+\])(?::[0-9]+)?$`)
	domain       = `(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])(?:\.(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9]))*`
)

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535
}

// checkHTTPURL accepts an empty value or an absolute http(s) URL without
// credentials: these URLs end up in commit statuses, pages and images.
func checkHTTPURL(errs *Errors, key, s string) {
	if s == "" {
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		errs.add(key, "is not a URL") // the parse error would quote the value, which may hold a password
	case u.User != nil:
		errs.add(key, "must not contain credentials")
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs.add(key, "%q is not an absolute http(s) URL", shown(s))
	}
}

// checkHostFile checks that a path on the gantry host exists, as a directory
// or as a file, so that a typo fails at start-up and not at the first build.
func checkHostFile(errs *Errors, key, path string, dir bool) {
	if path == "" {
		return
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		errs.add(key, "%v", err)
	case dir && !fi.IsDir():
		errs.add(key, "%s is not a directory", path)
	case !dir && fi.IsDir():
		errs.add(key, "%s is a directory, not a file", path)
	}
}

// oneOf checks that s is one of the allowed words.
func oneOf(errs *Errors, key, s string, allowed ...string) {
	if !slices.Contains(allowed, s) {
		errs.add(key, "%q is not one of %s", s, strings.Join(allowed, ", "))
	}
}

// checkNames checks the keys of an environment or build-argument map, in a
// stable order so that messages come out the same on every run.
func checkNames(errs *Errors, key string, m map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if !envName.MatchString(name) {
			errs.add(field(key, name), "%q is not a variable name ([A-Za-z_][A-Za-z0-9_]*)", name)
		}
	}
}
