package configs_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/configs"
)

func TestSecretIsNeverPrinted(t *testing.T) {
	t.Parallel()
	secrets := map[string]string{
		"REDIS": "redis://:redis-pw@r:6379/0", "TOKEN": "glpat-token-value", "API": "api-token-value-0123456789",
		"REG": "registry-pw-value", "HOOK": "hook-secret-value-0123456789",
	}
	cfg := mustLoad(t, `
redis: {url: "${REDIS}"}
gitlab: {token: "${TOKEN}"}
api: {tokens: ["${API}"]}
registries: [{host: r.example.com, username: ci, password: "${REG}"}]
projects: [{path: g/app, webhook_secret: "${HOOK}", image: r.example.com/g/app}]
`, env(secrets))

	if got := cfg.Projects[0].WebhookSecret.Value(); got != secrets["HOOK"] {
		t.Fatalf("WebhookSecret.Value() = %q, want %q", got, secrets["HOOK"])
	}
	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outputs["Sprintf("+verb+", cfg)"] = fmt.Sprintf(verb, cfg)
		outputs["Sprintf("+verb+", *cfg)"] = fmt.Sprintf(verb, *cfg)
	}
	outputs["Sprint(token)"] = fmt.Sprint(cfg.GitLab.Token)
	outputs["String()"] = cfg.GitLab.Token.String()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs["json.Marshal"] = string(b)
	b, err = yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs["yaml.Marshal"] = string(b)
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) || strings.Contains(out, fmt.Sprintf("%x", s)) {
				t.Errorf("%s = %s, want no %q in it", name, out, s)
			}
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("%s = %s, want [redacted] in it", name, out)
		}
	}
	if got := fmt.Sprint(configs.Secret("")); got != "" {
		t.Errorf("Sprint(Secret(\"\")) = %q, want \"\"", got)
	}
}

func TestErrorsDoNotQuoteSecrets(t *testing.T) {
	t.Parallel()
	for _, yaml := range []string{
		"redis: {url: \"http://:hunter2@r:6379\"}\n",
		"server: {public_url: \"https://u:hunter2@ci.example.com\"}\n",
		"gitlab: {token: \"hunter2${\"}\n",
		"gitlab: {token: [hunter2]}\n",
	} {
		_, err := configs.Load(writeConfig(t, yaml), nil)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Load(%q) = %v, want an error without the secret", yaml, err)
		}
	}
}

func TestByteSizeUnmarshalText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want configs.ByteSize
		ok   bool
	}{
		{"512MiB", 512 << 20, true},
		{"1GiB", 1 << 30, true},
		{"256m", 256 << 20, true},
		{"512M", 512 << 20, true},
		{"512MB", 512 << 20, true},
		{"64k", 64 << 10, true},
		{"1.5g", 3 << 29, true},
		{"1048576", 1 << 20, true},
		{"100b", 100, true},
		{"512 MiB", 512 << 20, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"-1m", 0, false},
		{"12x", 0, false},
		{"1iB", 0, false},
		{"99999999999T", 0, false},
		{"8388607TiB", 8388607 << 40, true}, // the largest whole number of TiB an int64 holds
		{"8388608TiB", 0, false},            // 2^63, one past the largest int64
	}
	for _, tt := range tests {
		var got configs.ByteSize
		err := got.UnmarshalText([]byte(tt.in))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("UnmarshalText(%q) = %d, %v, want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	for size, want := range map[configs.ByteSize]string{512 << 20: "512MiB", 1 << 30: "1GiB", 1000: "1000B", 0: "0B", 3 << 29: "1536MiB"} {
		if got := size.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(size), got, want)
		}
	}
}

func TestDurationUnmarshalText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10m", 10 * time.Minute, true},
		{"30s", 30 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"0", 0, true},
		{"600", 0, false},
		{"ten", 0, false},
	}
	for _, tt := range tests {
		var got configs.Duration
		err := got.UnmarshalText([]byte(tt.in))
		if (err == nil) != tt.ok || got.Duration != tt.want {
			t.Errorf("UnmarshalText(%q) = %v, %v, want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
