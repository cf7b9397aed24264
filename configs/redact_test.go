package configs_test

import (
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/configs"
)

// TestLoadErrorsNeverShowSecrets loads configs with credentials where they do not belong and
// checks that no message carries them.
func TestLoadErrorsNeverShowSecrets(t *testing.T) {
	t.Parallel()
	const pw = "hunter2-Pa55w0rd-xyz"
	tests := map[string]string{
		"gitlab url without scheme":  "gitlab: {url: \"ci:" + pw + "@gitlab.example.com\"}\n",
		"gitlab url query":           "gitlab: {url: \"gitlab.example.com/?private_token=" + pw + "\"}\n",
		"public url ftp":             "server: {public_url: \"ftp://u:" + pw + "@ci.example.com\"}\n",
		"docker host":                "docker: {host: \"ssh://u:" + pw + "@d.example.com\"}\n",
		"registry host":              "registries: [{host: \"ci:" + pw + "@r.example.com\"}]\n",
		"image":                      "projects: [{path: g/app, webhook_secret: " + strongSecret + ", image: \"ci:" + pw + "@r.example.com/App\"}]\n",
		"redis scheme":               "redis: {url: \"http://:" + pw + "@r:6379\"}\n",
		"token as listen address":    "gitlab: {token: \"" + pw + "\"}\nserver: {listen: \"" + pw + "\"}\n",
		"secret reused in index url": "projects: [{path: g/app, webhook_secret: \"" + pw + "\", image: r.example.com/g/app, generate: {python: {index_url: \"pypi/" + pw + "\"}}}]\n",
	}
	for name, yaml := range tests {
		_, err := configs.Load(writeConfig(t, yaml), nil)
		if err == nil {
			t.Errorf("%s: Load(%q) = nil error, want one", name, yaml)
		} else if strings.Contains(err.Error(), pw) {
			t.Errorf("%s: Load() = %v, want no %q in it", name, err, pw)
		}
	}
}

// TestLoadQuotesValuesWithoutCredentials: a message quotes a bad host or URL with its userinfo
// and everything from a query or fragment on replaced, and keeps the rest as written, wherever
// in the value those parts start; a configured secret of 4 characters is hidden too.
func TestLoadQuotesValuesWithoutCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, yaml, want string }{
		{"userinfo and query", "docker: {host: \"ssh://u:pw@d.example.com/path?q=pw\"}\n",
			`docker.host: "ssh://[redacted]@d.example.com/path[redacted]" is not a Docker host`},
		{"fragment right after the scheme", "docker: {host: \"ssh://#pw\"}\n", `docker.host: "ssh://[redacted]" is not a Docker host`},
		{"empty userinfo", "docker: {host: \"ssh://@d.example.com\"}\n", `docker.host: "ssh://[redacted]@d.example.com" is not a Docker host`},
		{"@ in the path only", "docker: {host: \"ssh:///a@b\"}\n", `docker.host: "ssh:///a@b" is not a Docker host`},
		{"empty scheme", "docker: {host: \"://u:pw@d.example.com\"}\n", `docker.host: "://[redacted]@d.example.com" is not a Docker host`},
		{"4-character secret", "gitlab: {token: Zq9x}\nserver: {listen: Zq9x}\n", `server.listen: "[redacted]" is not a host:port address`},
	}
	for _, tt := range tests {
		_, err := configs.Load(writeConfig(t, tt.yaml), nil)
		errs := fieldErrors(t, err)
		if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), tt.want) {
			t.Errorf("%s: Load(%q) = %v, want one error starting %s", tt.name, tt.yaml, err, tt.want)
		}
	}
}
