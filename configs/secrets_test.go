package configs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/configs"
)

// strongSecret passes the strength rule; tests that are not about secrets use it.
const strongSecret = "9c2f4e7a1b8d3f60e5a7c9b2d4f6a8e1"

// TestLoadRefusesWeakSecrets: a webhook secret or API token that is short or a
// placeholder is refused at load, under the key that holds it (the *_file key
// or the environment variable when it came from there), without its value.
func TestLoadRefusesWeakSecrets(t *testing.T) {
	t.Parallel()
	project := func(secret string) string {
		return "projects:\n  - {path: group/app, image: registry.example.com/group/app, webhook_secret: \"" + secret + "\"}\n"
	}
	tests := []struct {
		name   string
		yaml   string
		env    map[string]string
		files  map[string]string // written next to the config file
		secret string            // must not appear in any message
		key    string
		msg    string
	}{
		{"short", project("s3cret"), nil, nil, "s3cret", "projects[0].webhook_secret", "at least 16 characters"},
		{"default placeholder", project("${HOOK:-change-me}"), nil, nil, "change-me", "projects[0].webhook_secret", "at least 16 characters"},
		{"long placeholder", project("change-me-change-me-change-me"), nil, nil, "change-me-change-me", "projects[0].webhook_secret", "placeholder"},
		{"replace with", project("REPLACE_WITH_A_RANDOM_SECRET"), nil, nil, "REPLACE_WITH", "projects[0].webhook_secret", "placeholder"},
		{"angle brackets", project("<your webhook secret here>"), nil, nil, "your webhook", "projects[0].webhook_secret", "placeholder"},
		{"one character repeated", project("xxxxxxxxxxxxxxxxxxxxxxxx"), nil, nil, "xxxxxxxxxxxx", "projects[0].webhook_secret", "placeholder"},
		{"two characters repeated", project("abababababababababab"), nil, nil, "abababab", "projects[0].webhook_secret", "placeholder"},
		{"from a file", "projects:\n  - {path: group/app, image: registry.example.com/group/app, webhook_secret_file: hook}\n",
			nil, map[string]string{"hook": "changeme\n"}, "changeme", "projects[0].webhook_secret_file", "at least 16 characters"},
		{"api token", "api: {tokens: [short-token]}\n", nil, nil, "short-token", "api.tokens[0]", "at least 16 characters"},
		{"api token after an empty one", "api: {tokens: [\"${UNSET}\", \"" + strongSecret + "\", password]}\n", nil, nil,
			"password", "api.tokens[2]", "at least 16 characters"},
		{"api tokens file", "api: {tokens_file: tokens}\n", nil, map[string]string{"tokens": strongSecret + "\n\nshort-token\n"},
			"short-token", "api.tokens_file", "line 3"},
		{"api tokens from the environment", "", map[string]string{"GANTRY_API_TOKENS": strongSecret + ",short-token"}, nil,
			"short-token", "GANTRY_API_TOKENS", "token 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeConfig(t, tt.yaml)
			for name, content := range tt.files {
				if err := os.WriteFile(filepath.Join(filepath.Dir(path), name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := configs.Load(path, env(tt.env))
			if err == nil {
				t.Fatalf("Load(%q) = nil error, want %s: …%s…", tt.yaml, tt.key, tt.msg)
			}
			errs := fieldErrors(t, err)
			if len(errs) != 1 || errs[0].Key != tt.key || !strings.Contains(errs[0].Message, tt.msg) {
				t.Errorf("Load(%q) = %v, want one error %s: …%s…", tt.yaml, err, tt.key, tt.msg)
			}
			if strings.Contains(err.Error(), tt.secret) {
				t.Errorf("Load(%q) = %v, want no %q in it", tt.yaml, err, tt.secret)
			}
		})
	}
}

// TestLoadAcceptsStrongSecrets: random values pass, whatever their alphabet.
func TestLoadAcceptsStrongSecrets(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{
		strongSecret,
		"Zm9vYmFyYmF6cXV4cXV1eA-_",         // base64url
		"correct horse battery staple",     // a passphrase
		"1234567890123456",                 // digits only, 16 of them
		"10221201200121021220102110201122", // random ternary digits: three distinct characters pass the repeat rule
	} {
		yaml := "api: {tokens: [\"" + secret + "\"]}\nprojects:\n  - {path: group/app, image: registry.example.com/group/app, webhook_secret: \"" + secret + "\"}\n"
		if _, err := configs.Load(writeConfig(t, yaml), nil); err != nil {
			t.Errorf("Load(%q) = %v, want no error", yaml, err)
		}
	}
}

// TestFromEnvRefusesWeakTokens: the file-less configuration applies the same rule.
func TestFromEnvRefusesWeakTokens(t *testing.T) {
	t.Parallel()
	_, err := configs.FromEnv(env(map[string]string{"GANTRY_API_TOKENS": "abc"}))
	if err == nil || !strings.Contains(err.Error(), "GANTRY_API_TOKENS: token 1") || strings.Contains(err.Error(), "abc") {
		t.Errorf("FromEnv(GANTRY_API_TOKENS=abc) = %v, want a GANTRY_API_TOKENS error without the token", err)
	}
}
