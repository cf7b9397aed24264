package jobs

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/gantry-ci/gantry/orchestrator"
)

// registryTags lists a repository's tags as the registry serves them; none for a repository
// that does not exist.
func registryTags(t *testing.T, env testEnv, name string) []string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+env.registry+"/v2/"+name+"/tags/list", nil)
	req.SetBasicAuth(env.user, env.password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET tags of %s: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	var list struct{ Tags []string }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET tags of %s: %s, %v", name, resp.Status, err)
	}
	return list.Tags
}

// TestForkNeverPushes: a merge request from a fork controls Dockerfile.base and the inputs, so
// what it builds stays on its engine, under fork- tags that no trusted build looks up. A
// trusted build of the very same content builds its own base; a fork may use a trusted base.
func TestForkNeverPushes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	shared, err := Connect(t.Context(), Options{
		Registries:  []Registry{{Host: b.env.registry, Username: b.env.user, Password: b.env.password}},
		ShareImages: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.Close() })
	b.d = shared
	name := strings.ReplaceAll(b.image, "/", "-")
	p := b.project()
	p.Image = b.env.registry + "/" + name
	p.Base = &orchestrator.BaseSpec{Dockerfile: "Dockerfile.base", Inputs: []string{"requirements.txt"}, Image: p.Image + "-base"}
	files := map[string]string{
		"Dockerfile.base":  "FROM " + b.env.busybox + "\nCOPY requirements.txt /deps/\n",
		"requirements.txt": "pytest " + randomHex(8) + "\n",
		"Dockerfile":       "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app\n",
	}

	b.fork = true
	forked, log, err := b.build(t, p, files)
	if err != nil {
		t.Fatalf("fork Build() error = %v\nlog:\n%s", err, log)
	}
	b.removeImages(t, forked.BaseImage)
	if tags := registryTags(t, b.env, name+"-base"); len(tags) != 0 {
		t.Errorf("fork Build() pushed the base: registry has %s-base:%v", name, tags)
	}
	if tags := registryTags(t, b.env, name); len(tags) != 0 {
		t.Errorf("fork Build() shared its test image: registry has %s:%v", name, tags)
	}
	if tag, _ := strings.CutPrefix(forked.BaseImage, p.Base.Image+":"); !forked.BaseBuilt || !strings.HasPrefix(tag, "fork-") {
		t.Errorf("fork Build() = %+v, want a base built under a fork- tag", forked)
	}
	if tag, _ := strings.CutPrefix(forked.ImageRef, p.Image+":"); !strings.HasPrefix(tag, "fork-") {
		t.Errorf("fork Build() ImageRef = %s, want a fork- tag", forked.ImageRef)
	}

	// A fork's image is not in the registry, so a test on another engine (here: after the local
	// image is removed) cannot have it and must say why instead of pulling the tag.
	if err := shared.Discard(t.Context(), forked.ImageID); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = shared.Test(t.Context(), orchestrator.TestRequest{PipelineID: b.pipeline, Project: p.Path, ImageID: forked.ImageID, ImageRef: forked.ImageRef,
		Test: orchestrator.TestSpec{Name: "fork", Command: []string{"true"}, Timeout: time.Minute}}, &out)
	if err == nil || !strings.Contains(err.Error(), "fork") {
		t.Errorf("Test of a fork's image on another engine error = %v, want one that says forks are not shared; log:\n%s", err, out.String())
	}

	// The same content from a trusted push must not take the fork's base.
	b.fork = false
	b.pipeline++
	trusted, log, err := b.build(t, p, files)
	if err != nil {
		t.Fatalf("trusted Build() error = %v\nlog:\n%s", err, log)
	}
	b.removeImages(t, trusted.BaseImage)
	t.Cleanup(func() {
		deleteManifests(t, b.env, name+"-base", strings.TrimPrefix(trusted.BaseImage, p.Base.Image+":"))
		deleteManifests(t, b.env, name, strings.TrimPrefix(trusted.ImageRef, p.Image+":"))
	})
	if !trusted.BaseBuilt || trusted.BaseImage == forked.BaseImage || strings.Contains(trusted.BaseImage, "fork-") {
		t.Errorf("trusted Build() after a fork's = %+v, want its own base built, not %s", trusted, forked.BaseImage)
	}

	// A fork may use the trusted base: it only reads it.
	b.fork = true
	b.pipeline++
	again, log, err := b.build(t, p, files)
	if err != nil {
		t.Fatalf("second fork Build() error = %v\nlog:\n%s", err, log)
	}
	if again.BaseBuilt || again.BaseImage != trusted.BaseImage {
		t.Errorf("fork Build() after a trusted one = %+v, want the trusted base %s reused", again, trusted.BaseImage)
	}
	if tags := registryTags(t, b.env, name); len(tags) != 1 {
		t.Errorf("registry has %s:%v, want only the trusted build's test image", name, tags)
	}
}

func TestForkTags(t *testing.T) {
	t.Parallel()
	if got := testTag(42, false); got != "test-42" {
		t.Errorf("testTag(42, false) = %q, want test-42", got)
	}
	if got := testTag(42, true); got != "fork-test-42" {
		t.Errorf("testTag(42, true) = %q, want fork-test-42", got)
	}
	if got := baseTag("abc", true); got != "fork-abc" {
		t.Errorf("baseTag(abc, true) = %q, want fork-abc", got)
	}
	if got := baseTag("abc", false); got != "abc" {
		t.Errorf("baseTag(abc, false) = %q, want abc", got)
	}
	for ref, want := range map[string]bool{
		"registry.example.com/app-base:fork-abc": true,
		"127.0.0.1:5000/app:fork-test-7":         true,
		"127.0.0.1:5000/app:test-7":              false,
		"127.0.0.1:5000/fork-app":                false, // no tag; the colon is the port's
		"app":                                    false,
		"app:forked":                             false,
	} {
		if got := isForkRef(ref); got != want {
			t.Errorf("isForkRef(%q) = %v, want %v", ref, got, want)
		}
	}
}

// TestForkRefsNeverTransferred: the registry paths themselves refuse a fork's tag, whoever asks.
func TestForkRefsNeverTransferred(t *testing.T) {
	t.Parallel()
	b := setup(t)
	name := strings.ReplaceAll(b.image, "/", "-")
	base, test := b.env.registry+"/"+name+"-base:fork-"+randomHex(32), b.env.registry+"/"+name+":fork-test-1"
	for _, ref := range []string{base, test} {
		if _, err := b.d.cli.ImageTag(t.Context(), client.ImageTagOptions{Source: b.env.busybox, Target: ref}); err != nil {
			t.Fatal(err)
		}
	}
	b.removeImages(t, base, test)
	var log bytes.Buffer
	b.d.pushBase(t.Context(), base, &log)
	if err := b.d.shareTestImage(t.Context(), test, &log); err == nil || !strings.Contains(err.Error(), "fork") {
		t.Errorf("shareTestImage(%s) error = %v, want a refusal", test, err)
	}
	if b.d.pullBase(t.Context(), base, &log) {
		t.Errorf("pullBase(%s) = true, want false", base)
	}
	for _, repo := range []string{name, name + "-base"} {
		if tags := registryTags(t, b.env, repo); len(tags) != 0 {
			t.Errorf("registry has %s:%v, want nothing of a fork's", repo, tags)
		}
	}
}
