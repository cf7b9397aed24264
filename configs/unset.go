package configs

import (
	"fmt"
	"strings"
)

// UnsetVar is a ${NAME} reference, without a default, whose variable was unset
// or empty when the file was loaded. A required key (a project's webhook_secret)
// with one is an error; on any other key gantry starts and the caller warns,
// because an empty registry password or API token otherwise shows up only as
// a refused push or a 401 much later.
type UnsetVar struct {
	// Key is the key path holding the reference, e.g. "registries[0].password".
	Key string
	// Name is the variable, e.g. "REGISTRY_PASSWORD".
	Name string
}

// Reader is the side of gantry that reads a key: a role without it never sees the key's value,
// so an empty one is no news to it.
type Reader int

const (
	// EveryRole reads the key (Redis, GitLab, projects).
	EveryRole Reader = iota
	// IntakeRole reads it: the side that takes deliveries and serves the API and pages.
	IntakeRole
	// WorkerRole reads it: the side that runs jobs and pushes releases.
	WorkerRole
)

// ReadBy says which side reads the key holding the reference.
func (u UnsetVar) ReadBy() Reader {
	switch {
	case strings.HasPrefix(u.Key, "registries["):
		return WorkerRole
	case strings.HasPrefix(u.Key, "api."):
		return IntakeRole
	}
	return EveryRole
}

// String says what the operator sees: the key, the variable, and how to mean
// "empty" on purpose so the warning goes away.
func (u UnsetVar) String() string {
	return fmt.Sprintf("%s: ${%s} is not set, so the key is empty (write ${%s:-} where empty is meant)", u.Key, u.Name, u.Name)
}

// unsetVars sorts the references that came out empty: one whose key was set
// another way (its *_file, a GANTRY_* override) is no news and is dropped; one
// on a required secret is an error naming the variable, which validation's
// "required" would not; the rest are returned for the caller to warn about.
func (c *Config) unsetVars(refs []UnsetVar, getenv func(string) string, errs *Errors) []UnsetVar {
	var warn []UnsetVar
	for _, u := range refs {
		switch {
		case c.setOtherwise(u.Key, getenv):
		case c.requiredSecret(u.Key):
			errs.add(u.Key, "${%s} is not set", u.Name)
		default:
			warn = append(warn, u)
		}
	}
	return warn
}

// setOtherwise reports whether key got its value from somewhere other than the
// file's ${VAR}: its *_file or the GANTRY_* variable that overrides it.
func (c *Config) setOtherwise(key string, getenv func(string) string) bool {
	switch {
	case key == "redis.url":
		return getenv("GANTRY_REDIS_URL") != "" || c.Redis.URLFile != ""
	case key == "gitlab.token":
		return getenv("GANTRY_GITLAB_TOKEN") != "" || c.GitLab.TokenFile != ""
	case key == "gitlab.url":
		return getenv("GANTRY_GITLAB_URL") != ""
	case key == "server.listen":
		return getenv("GANTRY_SERVER_LISTEN") != ""
	case key == "server.public_url":
		return getenv("GANTRY_SERVER_PUBLIC_URL") != ""
	case key == "docker.host":
		return getenv("GANTRY_DOCKER_HOST") != ""
	case key == "workers.concurrency":
		return getenv("GANTRY_WORKERS_CONCURRENCY") != ""
	case strings.HasPrefix(key, "api.tokens["):
		return getenv("GANTRY_API_TOKENS") != "" || c.API.TokensFile != ""
	}
	for i, r := range c.Registries {
		if key == index("registries", i)+".password" {
			return r.PasswordFile != ""
		}
	}
	for i, p := range c.Projects {
		if key == index("projects", i)+".webhook_secret" {
			return p.WebhookSecretFile != ""
		}
	}
	return false
}

// requiredSecret reports whether key is a secret gantry cannot run without.
func (c *Config) requiredSecret(key string) bool {
	for i := range c.Projects {
		if key == index("projects", i)+".webhook_secret" {
			return true
		}
	}
	return false
}

// intakeOnly reports whether key is read only by the side that takes GitLab's
// deliveries and serves the API and pages, never by `gantry exec`, which runs
// a pipeline on a local tree with no GitLab, no API and no server.
func intakeOnly(key string) bool {
	for _, prefix := range []string{"server.", "gitlab.", "api.", "GANTRY_API_TOKENS", "GANTRY_SERVER_", "GANTRY_GITLAB_"} {
		if strings.HasPrefix(key, prefix) {
			return true
		}
	}
	if !strings.HasPrefix(key, "projects[") {
		return false
	}
	_, rest, _ := strings.Cut(key, "].")
	return rest == "webhook_secret" || rest == "webhook_secret_file"
}
