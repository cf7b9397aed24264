// Package configs turns gantry's YAML file and the process environment into a
// validated Config, with defaults filled in and every problem reported at once.
//
// Only cmd/gantry imports this package; the other packages receive the values
// they need through their own constructors, so the shape of the file can
// change without touching them.
package configs

import (
	"strings"
	"time"
)

// Defaults that hold for the whole process. Per-project defaults live next to
// the project types.
const (
	defaultListen            = ":8080"
	defaultStatusPrefix      = "gantry"
	defaultConcurrency       = 4
	defaultJobRetries        = 2
	defaultShutdownGrace     = 30 * time.Second
	defaultRetention         = 24 * time.Hour
	defaultPipelineRetention = 30 * 24 * time.Hour
	defaultLogRetention      = 7 * 24 * time.Hour
	defaultHousekeepingEvery = 10 * time.Minute
	defaultReconcileEvery    = 5 * time.Minute
	defaultReplicaTimeout    = time.Second
	defaultSessionLifetime   = 8 * time.Hour
)

// Config is the whole configuration of a gantry process. Every process sharing
// one Redis should load the same file.
type Config struct {
	Server     Server     `yaml:"server" json:"server"`
	Redis      Redis      `yaml:"redis" json:"redis"`
	GitLab     GitLab     `yaml:"gitlab" json:"gitlab"`
	Docker     Docker     `yaml:"docker" json:"docker"`
	Workers    Workers    `yaml:"workers" json:"workers"`
	API        API        `yaml:"api" json:"api"`
	Registries []Registry `yaml:"registries" json:"registries"`
	Projects   []Project  `yaml:"projects" json:"projects"`

	// Unset are the file's ${VAR} references without default whose variable
	// was unset or empty, on keys that may be empty: a process warns about
	// them when it starts (Load refuses those on required keys).
	Unset []UnsetVar `yaml:"-" json:"-"`
}

// Default returns the configuration used when there is no file: listen on
// :8080, an embedded Redis, no projects.
func Default() *Config {
	return &Config{
		Server: Server{Listen: defaultListen},
		GitLab: GitLab{StatusPrefix: defaultStatusPrefix, ReconcileEvery: Duration{defaultReconcileEvery}},
		Redis: Redis{PipelineRetention: Duration{defaultPipelineRetention}, LogRetention: Duration{defaultLogRetention},
			HousekeepingEvery: Duration{defaultHousekeepingEvery}},
		Workers: Workers{Concurrency: defaultConcurrency, JobRetries: defaultJobRetries, ShutdownGrace: Duration{defaultShutdownGrace}, ImageRetention: Duration{defaultRetention}},
		API:     API{PublicPages: true},
	}
}

// Server is the HTTP side: webhooks, REST API and pipeline pages.
type Server struct {
	// Listen is the TCP address to serve on, ":8080" by default.
	Listen string `yaml:"listen" json:"listen"`
	// PublicURL is how GitLab users reach gantry; commit statuses link to
	// pages under it. Empty means statuses carry no link.
	PublicURL string `yaml:"public_url" json:"public_url"`
}

// Redis locates the only state gantry has.
type Redis struct {
	// URL is a redis://, rediss:// or unix:// URL, or a Sentinel URL:
	// redis+sentinel://[user:password@]host1:port1,host2:port2/<master>[/<db>]
	// (rediss+sentinel:// over TLS). It is a Secret because it may carry a
	// password. Empty means an embedded in-memory Redis.
	URL Secret `yaml:"url" json:"url"`
	// URLFile, when set, is read into URL, so the password can stay out of
	// the config file and the environment.
	URLFile string `yaml:"url_file" json:"url_file"`
	// PipelineRetention is how long a finished pipeline is kept (its record,
	// logs and every index entry); 0 keeps them forever. Default 30 days.
	PipelineRetention Duration `yaml:"pipeline_retention" json:"pipeline_retention"`
	// LogRetention is how long a finished pipeline's job logs are kept; 0
	// keeps them as long as the pipeline. Default 7 days.
	LogRetention Duration `yaml:"log_retention" json:"log_retention"`
	// HousekeepingEvery is how often the retention is applied; every process
	// schedules it and one of them runs each tick. Default 10m.
	HousekeepingEvery Duration `yaml:"housekeeping_every" json:"housekeeping_every"`
	// MinReplicas, when above 0, makes the intake answer a webhook 2xx only
	// once its pipeline is on at least that many replicas (Redis WAIT), and
	// 503 when fewer acknowledge within ReplicaTimeout. Default 0: off.
	MinReplicas int `yaml:"min_replicas" json:"min_replicas"`
	// ReplicaTimeout is how long the intake waits for MinReplicas, at most 2s
	// (the Redis client's read timeout bounds the round trip it ends); 0
	// (unset) means 1s, never "forever". Read it through ReplicaWait.
	ReplicaTimeout Duration `yaml:"replica_timeout" json:"replica_timeout"`
}

// ReplicaWait is how long the intake waits for MinReplicas: ReplicaTimeout, or
// 1s when it is not set.
func (r Redis) ReplicaWait() time.Duration {
	if r.ReplicaTimeout.Duration > 0 {
		return r.ReplicaTimeout.Duration
	}
	return defaultReplicaTimeout
}

// GitLab is the instance gantry posts commit statuses to and registers hooks on.
type GitLab struct {
	// URL is the GitLab base URL, e.g. https://gitlab.example.com.
	URL string `yaml:"url" json:"url"`
	// Token is an access token with the api scope.
	Token Secret `yaml:"token" json:"token"`
	// TokenFile, when set, is read into Token.
	TokenFile string `yaml:"token_file" json:"token_file"`
	// ReconcileEvery is how often gantry compares each project's release
	// branches and default branch with GitLab: a head no webhook announced
	// gets a pipeline, and hooks GitLab disabled are logged and counted.
	// 0 turns it off. Default 5m.
	ReconcileEvery Duration `yaml:"reconcile_every" json:"reconcile_every"`
	// ReenableHooks, on each reconcile_every check, asks GitLab for a test
	// delivery to gantry's own hooks (those at server.public_url) that GitLab
	// disabled: the test is a push of the default branch's head, and a 2xx
	// answer makes the hook deliver again. Default false.
	ReenableHooks bool `yaml:"reenable_hooks" json:"reenable_hooks"`
	// StatusPrefix starts every commit status name: <prefix>/build,
	// <prefix>/test/<name>, <prefix>/release. Default "gantry".
	StatusPrefix string `yaml:"status_prefix" json:"status_prefix"`
}

// Docker is the engine a worker process builds and tests on.
type Docker struct {
	// Host is the engine address (unix:///var/run/docker.sock,
	// tcp://host:2376). Empty means DOCKER_HOST or the local socket.
	Host string `yaml:"host" json:"host"`
	// TLSVerify makes the client verify the engine's certificate.
	TLSVerify bool `yaml:"tls_verify" json:"tls_verify"`
	// CertPath is a directory holding ca.pem, cert.pem and key.pem.
	CertPath string `yaml:"cert_path" json:"cert_path"`
	// ShareImages pushes each test image to its registry after the build, so a
	// test can run on a worker attached to another engine (it pulls the image).
	// Set it when workers span several Docker hosts.
	ShareImages bool `yaml:"share_images" json:"share_images"`
}

// Workers sizes the job-running side of a process.
type Workers struct {
	// Concurrency is how many jobs one process runs at a time. Default 4.
	Concurrency int `yaml:"concurrency" json:"concurrency"`
	// JobRetries is how many times a job that failed because of the
	// infrastructure is retried. Default 2; 0 turns retries off.
	JobRetries int `yaml:"job_retries" json:"job_retries"`
	// ShutdownGrace is how long running jobs may take to finish on shutdown
	// before they are handed back to the queue. Default 30s.
	ShutdownGrace Duration `yaml:"shutdown_grace" json:"shutdown_grace"`
	// ImageRetention is how long a finished pipeline's image stays on the
	// engine, so its jobs can be retried without a rebuild. Default 24h.
	ImageRetention Duration `yaml:"image_retention" json:"image_retention"`
}

// API guards the REST API.
type API struct {
	// Tokens are the accepted bearer tokens. Empty entries are dropped, so an
	// unset ${VAR} does not become a token that matches an empty header.
	Tokens []Secret `yaml:"tokens" json:"tokens"`
	// TokensFile, when set, is read into Tokens, one token per line.
	TokensFile string `yaml:"tokens_file" json:"tokens_file"`
	// PublicPages lets anyone read the pipeline pages GitLab links to,
	// without a token. Default true. When false, the pages ask for a bearer
	// token, or, with OAuth set, a sign-in with GitLab.
	PublicPages bool `yaml:"public_pages" json:"public_pages"`
	// OAuth signs visitors of the pages in with GitLab when PublicPages is
	// false; each sees the pipelines of the projects GitLab lets them read.
	OAuth OAuth `yaml:"oauth" json:"oauth"`
}

// OAuth is the GitLab application gantry signs visitors in with. Its callback
// is <server.public_url>/signin/callback and its scope read_api; gantry asks
// GitLab (gitlab.url) who the visitor is and what they may do, with the
// visitor's own token.
type OAuth struct {
	// ApplicationID is the GitLab application's "Application ID".
	ApplicationID string `yaml:"application_id" json:"application_id"`
	// Secret is the GitLab application's "Secret".
	Secret Secret `yaml:"secret" json:"secret"`
	// SecretFile, when set, is read into Secret.
	SecretFile string `yaml:"secret_file" json:"secret_file"`
	// CookieSecret signs and encrypts the session cookie, which holds the
	// visitor's GitLab token; every process behind one URL needs the same one.
	// At least 32 characters (openssl rand -hex 32).
	CookieSecret Secret `yaml:"cookie_secret" json:"cookie_secret"`
	// CookieSecretFile, when set, is read into CookieSecret.
	CookieSecretFile string `yaml:"cookie_secret_file" json:"cookie_secret_file"`
	// SessionLifetime is how long a sign-in lasts, at most as long as the
	// token GitLab gave (2h by default on GitLab); 0 (unset) means 8h. Read
	// it through Lifetime.
	SessionLifetime Duration `yaml:"session_lifetime" json:"session_lifetime"`
}

// Lifetime is how long a sign-in lasts: SessionLifetime, or 8h when it is not set.
func (o OAuth) Lifetime() time.Duration {
	if o.SessionLifetime.Duration > 0 {
		return o.SessionLifetime.Duration
	}
	return defaultSessionLifetime
}

// Enabled reports whether sign-in with GitLab is configured.
func (o OAuth) Enabled() bool { return o.ApplicationID != "" }

// Registry holds the credentials gantry uses for one registry host. Images on
// hosts without an entry are pulled and pushed anonymously.
type Registry struct {
	// Host is the registry's host[:port], as it appears in image names.
	Host string `yaml:"host" json:"host"`
	// Username is the registry login.
	Username string `yaml:"username" json:"username"`
	// Password is the registry password or token.
	Password Secret `yaml:"password" json:"password"`
	// PasswordFile, when set, is read into Password.
	PasswordFile string `yaml:"password_file" json:"password_file"`
	// There is no CA setting: gantry never connects to a registry, the Docker
	// engine does, and it trusts what /etc/docker/certs.d on its own host holds.
	// A ca_file key is refused at load with that advice (see retiredKey).
}

// Project returns the project whose path matches path. GitLab treats paths
// case-insensitively, and webhook payloads do not always use the configured
// spelling, so neither do we.
func (c *Config) Project(path string) (*Project, bool) {
	for i := range c.Projects {
		if strings.EqualFold(c.Projects[i].Path, path) {
			return &c.Projects[i], true
		}
	}
	return nil, false
}
