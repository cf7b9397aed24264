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
