package configs_test

import (
	"encoding"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/configs"
)

const examplePath = "gantry.example.yaml"

func TestExampleLoads(t *testing.T) {
	t.Parallel()
	t.Run("empty environment", func(t *testing.T) {
		t.Parallel()
		// The example has no secret of its own to fall back on: a webhook secret everyone
		// can read in this file would let anyone start pipelines.
		_, err := configs.Load(examplePath, nil)
		// The message names the variable, not only the key: "required" sent operators looking
		// for a typo in the file when the variable was missing from the environment.
		want := configs.Errors{{Key: "projects[0].webhook_secret", Message: "${APP_HOOK_SECRET} is not set"}}
		if diff := cmp.Diff(want, fieldErrors(t, err)); diff != "" {
			t.Errorf("Load(%s) errors mismatch (-want +got):\n%s", examplePath, diff)
		}
	})
	t.Run("only the webhook secret", func(t *testing.T) {
		t.Parallel()
		cfg, err := configs.Load(examplePath, env(map[string]string{"APP_HOOK_SECRET": strongSecret}))
		if err != nil {
			t.Fatalf("Load(%s) = %v, want no error", examplePath, err)
		}
		p, ok := cfg.Project("group/app")
		if !ok {
			t.Fatalf("Load(%s).Project(group/app) = _, false, want the example project", examplePath)
		}
		var names []string
		for _, tt := range p.Tests {
			names = append(names, tt.Name)
		}
		got := map[string]any{
			"tests":        names,
			"base inputs":  p.Base.Inputs,
			"release tags": p.Release.Tags,
			"api tokens":   len(cfg.API.Tokens),
		}
		want := map[string]any{
			"tests":        []string{"unit", "lint"},
			"base inputs":  []string{"requirements.txt"},
			"release tags": []string{"latest", "{{.ShortSHA}}"},
			"api tokens":   0,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Load(%s) mismatch (-want +got):\n%s", examplePath, diff)
		}
		// The optional secrets left unset start gantry, but each is named for a warning.
		wantUnset := []configs.UnsetVar{{Key: "redis.url", Name: "REDIS_URL"}, {Key: "gitlab.token", Name: "GITLAB_TOKEN"},
			{Key: "api.tokens[0]", Name: "GANTRY_API_TOKEN"}, {Key: "registries[0].password", Name: "REGISTRY_PASSWORD"}}
		if diff := cmp.Diff(wantUnset, cfg.Unset); diff != "" {
			t.Errorf("Load(%s).Unset mismatch (-want +got):\n%s", examplePath, diff)
		}
	})
	t.Run("secrets from the environment", func(t *testing.T) {
		t.Parallel()
		vars := map[string]string{"APP_HOOK_SECRET": strongSecret, "GITLAB_TOKEN": "g", "GANTRY_API_TOKEN": "api-token-0123456789abcdef", "REGISTRY_PASSWORD": "r", "REDIS_URL": "redis://x:6379/0"}
		cfg, err := configs.Load(examplePath, env(vars))
		if err != nil {
			t.Fatalf("Load(%s) = %v, want no error", examplePath, err)
		}
		got := []string{cfg.Projects[0].WebhookSecret.Value(), cfg.GitLab.Token.Value(), cfg.API.Tokens[0].Value(),
			cfg.Registries[0].Password.Value(), cfg.Redis.URL.Value()}
		want := []string{strongSecret, "g", "api-token-0123456789abcdef", "r", "redis://x:6379/0"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Load(%s) secrets mismatch (-want +got):\n%s", examplePath, diff)
		}
		if len(cfg.Unset) != 0 {
			t.Errorf("Load(%s).Unset = %v with every variable set, want none", examplePath, cfg.Unset)
		}
	})
}

// TestExampleDocumentsEveryKey fails when a key is added to the Config types
// without being shown, with a comment, in the example file.
func TestExampleDocumentsEveryKey(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{} // key path in the example → has a comment
	exampleKeys(&doc, "", documented)

	accepted := map[string]bool{}
	structKeys(reflect.TypeFor[configs.Config](), "", accepted)
	if len(accepted) < 60 {
		t.Fatalf("structKeys(Config) found %d keys, want the whole tree", len(accepted))
	}
	for _, key := range slices.Sorted(maps.Keys(accepted)) {
		name := key[strings.LastIndex(key, ".")+1:]
		switch commented, ok := documented[key]; {
		case !ok:
			t.Errorf("%s has no %q key at %s", examplePath, name+":", key)
		case !commented:
			t.Errorf("%s has no comment for %s", examplePath, key)
		}
	}
}

// structKeys collects the key paths a type accepts, writing lists as [].
func structKeys(t reflect.Type, prefix string, out map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice {
			prefix += "[]"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return
	}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "-" {
			continue // what Load found, not a key of the file
		}
		key := strings.TrimPrefix(prefix+"."+name, ".")
		out[key] = true
		structKeys(t.Field(i).Type, key, out)
	}
}

// exampleKeys collects the key paths present in a YAML tree, and whether any
// occurrence carries a comment: above the key, after it on its line, or, for
// the first key of a list item, after the item's dash.
func exampleKeys(n *yaml.Node, prefix string, out map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			exampleKeys(c, prefix, out)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			exampleKeys(c, prefix+"[]", out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := strings.TrimPrefix(prefix+"."+k.Value, ".")
			commented := k.HeadComment != "" || k.LineComment != "" || v.LineComment != "" || (i == 0 && n.HeadComment != "")
			out[key] = out[key] || commented
			exampleKeys(v, key, out)
		}
	}
}
