package configs

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the YAML file at path and returns the configuration it
// describes, in this order: ${VAR} and ${VAR:-default} references in values
// are expanded with getenv; every *_file key is read into its secret; the
// GANTRY_* environment overrides are applied; defaults fill what is still
// empty; and the result is validated.
//
// A missing file gives an error wrapping fs.ErrNotExist, so the caller can
// fall back to Default. A file that is not YAML gives the parser's error.
// Every other problem, from unknown keys to bad cron expressions, is
// collected into one Errors, which errors.As extracts from the returned error.
//
// Relative *_file and cert_path paths are taken from the directory
// of the config file, so a config and its secrets can move together. A nil
// getenv means an empty environment.
//
// Every error starts with "config <path>: ", once: callers print it as it is.
// A ${VAR} without default that comes out empty is an error naming the
// variable on a required secret, and is listed in Config.Unset otherwise.
func Load(path string, getenv func(string) string) (*Config, error) {
	return load(path, getenv, false)
}

// LoadLocal is Load for `gantry exec`: the keys only the intake reads
// (server.*, gitlab.*, api.*, projects[].webhook_secret) are neither required
// nor validated, since a local run never serves, never talks to GitLab and
// takes no webhook.
func LoadLocal(path string, getenv func(string) string) (*Config, error) {
	return load(path, getenv, true)
}

func load(path string, getenv func(string) string, local bool) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	data, err := os.ReadFile(path)
	if err != nil {
		// The path is in the prefix; the PathError would name it a second time.
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}

	// Decoding onto the defaults, rather than filling zero values afterwards,
	// is what lets "public_pages: false" and "job_retries: 0" mean what they say.
	cfg := Default()
	var errs Errors
	p := preparer{getenv: getenv, errs: &errs, expanded: map[*yaml.Node]bool{}}
	if len(doc.Content) == 1 {
		root := doc.Content[0]
		if p.value(root, reflect.TypeFor[Config](), "") {
			if err := root.Decode(cfg); err != nil {
				// The walk rejects everything the decoder would, so this
				// only happens if the two disagree; still report it.
				errs.add("", "%v", err)
			}
		}
	}
	cfg.readSecretFiles(filepath.Dir(path), &errs)
	cfg.applyEnv(getenv, &errs)
	cfg.setDefaults()
	cfg.Unset = cfg.unsetVars(p.unset, getenv, &errs)
	found := slices.Clone(errs)
	for _, e := range cfg.validate() {
		if !found.covers(e.Key) {
			errs = append(errs, e)
		}
	}
	if local {
		errs = slices.DeleteFunc(errs, func(e FieldError) bool { return intakeOnly(e.Key) })
		cfg.Unset = slices.DeleteFunc(cfg.Unset, func(u UnsetVar) bool { return intakeOnly(u.Key) })
	}
	if len(errs) > 0 {
		errs.redact(cfg)
		return nil, fmt.Errorf("config %s: %w", path, errs)
	}
	return cfg, nil
}

// readSecretFiles reads every *_file key into the secret it stands for, and
// makes the other host paths absolute.
func (c *Config) readSecretFiles(dir string, errs *Errors) {
	readSecret(errs, dir, "redis.url", &c.Redis.URL, &c.Redis.URLFile)
	readSecret(errs, dir, "gitlab.token", &c.GitLab.Token, &c.GitLab.TokenFile)
	readSecret(errs, dir, "api.oauth.secret", &c.API.OAuth.Secret, &c.API.OAuth.SecretFile)
	readSecret(errs, dir, "api.oauth.cookie_secret", &c.API.OAuth.CookieSecret, &c.API.OAuth.CookieSecretFile)
	// Tokens are checked here, where each one's place in the file is still known. A weak one is
	// refused even when GANTRY_API_TOKENS replaces them: the next process started without the
	// variable would accept it.
	for i, t := range c.API.Tokens {
		if why := weakSecret(t.Value()); t != "" && why != "" {
			errs.add(index("api.tokens", i), "%s", why)
		}
	}
	c.API.Tokens = slices.DeleteFunc(c.API.Tokens, func(s Secret) bool { return s == "" })
	if c.API.TokensFile != "" {
		var one Secret
		readSecret(errs, dir, "api.tokens", &one, &c.API.TokensFile)
		if len(c.API.Tokens) > 0 {
			errs.add("api.tokens_file", "set api.tokens or api.tokens_file, not both")
		}
		n := 0
		for line := range strings.Lines(one.Value()) {
			n++
			if t := strings.TrimSpace(line); t != "" {
				if why := weakSecret(t); why != "" {
					errs.add("api.tokens_file", "line %d: %s", n, why)
				}
				c.API.Tokens = append(c.API.Tokens, Secret(t))
			}
		}
	}
	for i := range c.Registries {
		r := &c.Registries[i]
		readSecret(errs, dir, index("registries", i)+".password", &r.Password, &r.PasswordFile)
	}
	for i := range c.Projects {
		p := &c.Projects[i]
		readSecret(errs, dir, index("projects", i)+".webhook_secret", &p.WebhookSecret, &p.WebhookSecretFile)
	}
	c.Docker.CertPath = hostPath(dir, c.Docker.CertPath)
}

// readSecret reads the file named by *file into *value, without the final
// newline that editors and "echo >" leave. Setting both is refused because
// neither choice of winner would be obvious to the reader of the file.
func readSecret(errs *Errors, dir, key string, value *Secret, file *string) {
	if *file == "" {
		return
	}
	*file = hostPath(dir, *file)
	if *value != "" {
		errs.add(key+"_file", "set %s or %s_file, not both", key, key)
		return
	}
	b, err := os.ReadFile(*file)
	if err != nil {
		errs.add(key+"_file", "%v", err)
		return
	}
	*value = Secret(strings.TrimRight(string(b), "\r\n"))
}

// hostPath makes a relative path on the gantry host relative to dir.
func hostPath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// applyEnv applies the GANTRY_* overrides. An empty variable counts as unset,
// as with ${VAR:-default}, because getenv cannot tell the two apart.
func (c *Config) applyEnv(getenv func(string) string, errs *Errors) {
	for name, dst := range map[string]*string{
		"GANTRY_SERVER_LISTEN":     &c.Server.Listen,
		"GANTRY_SERVER_PUBLIC_URL": &c.Server.PublicURL,
		"GANTRY_GITLAB_URL":        &c.GitLab.URL,
		"GANTRY_DOCKER_HOST":       &c.Docker.Host,
	} {
		*dst = cmp.Or(getenv(name), *dst)
	}
	c.Redis.URL = cmp.Or(Secret(getenv("GANTRY_REDIS_URL")), c.Redis.URL)
	c.GitLab.Token = cmp.Or(Secret(getenv("GANTRY_GITLAB_TOKEN")), c.GitLab.Token)
	if v := getenv("GANTRY_WORKERS_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			errs.add("GANTRY_WORKERS_CONCURRENCY", "%q is not an integer", v)
		} else {
			c.Workers.Concurrency = n
		}
	}
	if v := getenv("GANTRY_API_TOKENS"); v != "" {
		c.API.Tokens = nil
		n := 0
		for t := range strings.SplitSeq(v, ",") {
			n++
			if t = strings.TrimSpace(t); t != "" {
				if why := weakSecret(t); why != "" {
					errs.add("GANTRY_API_TOKENS", "token %d: %s", n, why)
				}
				c.API.Tokens = append(c.API.Tokens, Secret(t))
			}
		}
	}
}

// setDefaults fills values that are still empty. Top-level sections were
// decoded onto Default, so this only catches values emptied explicitly, such
// as listen: "" or a ${VAR} without default that expanded to nothing.
func (c *Config) setDefaults() {
	c.Server.Listen = cmp.Or(c.Server.Listen, defaultListen)
	c.GitLab.StatusPrefix = cmp.Or(c.GitLab.StatusPrefix, defaultStatusPrefix)
	for i := range c.Projects {
		c.Projects[i].setDefaults()
	}
}

// FromEnv is the configuration of a process started without a file: the defaults with the
// GANTRY_* overrides applied and validated, so `GANTRY_REDIS_URL=… gantry serve` works
// without writing YAML.
func FromEnv(getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	cfg := Default()
	var errs Errors
	cfg.applyEnv(getenv, &errs)
	cfg.setDefaults()
	errs = append(errs, cfg.validate()...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("environment: %w", errs)
	}
	return cfg, nil
}
