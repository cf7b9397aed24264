package jobs

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"go.uber.org/zap/zaptest"

	"github.com/gantry-ci/gantry/orchestrator"
)

func TestRelease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	built, log, err := b.build(t, b.project(), map[string]string{
		"Dockerfile": "FROM " + b.env.busybox + "\nCOPY . /app\n",
		"marker":     randomHex(16),
	})
	if err != nil {
		t.Fatalf("Build() error = %v\nlog:\n%s", err, log)
	}
	repo := b.env.registry + "/" + b.image
	b.removeImages(t, repo+":latest", repo+":v1")
	t.Cleanup(func() { deleteManifests(t, b.env, b.image, "latest") })

	var out bytes.Buffer
	start := time.Now()
	res, err := b.d.Release(t.Context(), orchestrator.ReleaseRequest{
		PipelineID: b.pipeline, ImageID: built.ImageID, Repository: repo, Tags: []string{"latest", "v1"},
	}, &out)
	if err != nil {
		t.Fatalf("Release() error = %v\nlog:\n%s", err, out.String())
	}
	t.Logf("Release() took %s:\n%s", time.Since(start), out.String())
	if diff := cmp.Diff([]string{repo + ":latest", repo + ":v1"}, res.Pushed); diff != "" {
		t.Errorf("Release().Pushed (-want +got):\n%s", diff)
	}
	for _, tag := range []string{"latest", "v1"} {
		if got := registryDigest(t, b.env, b.image, tag, b.env.password); got != res.Digest {
			t.Errorf("registry digest of %s = %q, want Release().Digest %q", tag, got, res.Digest)
		}
	}
	if l := out.String(); strings.Contains(l, "Preparing") || strings.Contains(l, "Pushing") || !strings.Contains(l, "digest: "+res.Digest) {
		t.Errorf("Release() log is not one line per layer:\n%s", out.String())
	}
	if strings.Contains(out.String(), b.env.password) {
		t.Error("Release() log contains the registry password")
	}

	// The same release again (its worker died after pushing) is a no-op: nothing is pushed.
	out.Reset()
	again, err := b.d.Release(t.Context(), orchestrator.ReleaseRequest{
		PipelineID: b.pipeline, ImageID: built.ImageID, Repository: repo, Tags: []string{"latest"},
	}, &out)
	if err != nil || again.Digest != res.Digest || !strings.Contains(out.String(), "already in the registry, not pushed again") {
		t.Errorf("second Release() = %+v, %v, want digest %s and no push\nlog:\n%s", again, err, res.Digest, out.String())
	}
}

func TestReleaseWrongPassword(t *testing.T) {
	t.Parallel()
	env := loadEnv(t)
	wrong := "wrong-" + randomHex(12)
	d, err := Connect(t.Context(), Options{
		Logger:     zaptest.NewLogger(t),
		Registries: []Registry{{Host: "http://" + env.registry + "/", Username: env.user, Password: wrong}},
	})
	if err != nil {
		t.Fatalf("Connect() error = %v", err)
	}
	defer d.Close()
	repo := env.registry + "/gantry-jobs-test/" + randomHex(6)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		d.RemoveImage(ctx, repo+":latest")
	})
	var out bytes.Buffer
	_, err = d.Release(t.Context(), orchestrator.ReleaseRequest{ImageID: env.busybox, Repository: repo, Tags: []string{"latest"}}, &out)
	if err == nil || isProjectFault(err) {
		t.Fatalf("Release(wrong password) error = %v, want an infrastructure error", err)
	}
	t.Logf("Release(wrong password) error = %v", err)
	if !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("Release(wrong password) error = %q, want it to say unauthorized", err)
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(out.String(), wrong) {
		t.Errorf("Release(wrong password) leaks the password: error %q, log %q", err, out.String())
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	d := &Docker{registries: []Registry{
		{Host: "registry.example.com", Username: "ci", Password: "s3cret"},
		{Host: "https://localhost:5000/", Username: "local", Password: "pw"},
	}}
	tests := []struct {
		repository string
		want       registry.AuthConfig
	}{
		{"registry.example.com/group/app", registry.AuthConfig{Username: "ci", Password: "s3cret", ServerAddress: "registry.example.com"}},
		{"localhost:5000/app", registry.AuthConfig{Username: "local", Password: "pw", ServerAddress: "localhost:5000"}},
		{"registry.example.com:443/group/app", registry.AuthConfig{}},
		{"group/app", registry.AuthConfig{}},
		{"other.example.com/app", registry.AuthConfig{}},
	}
	for _, tt := range tests {
		if got := d.login(tt.repository); got != tt.want {
			t.Errorf("login(%q) = %+v, want %+v", tt.repository, got, tt.want)
		}
	}
	if s := (Registry{Host: "h", Username: "u", Password: "s3cret"}); strings.Contains(s.String()+s.GoString(), "s3cret") {
		t.Errorf("Registry formats its password: %s", s)
	}
}

func TestProgress(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := newProgress(&out)
	for _, m := range []jsonstream.Message{
		{Status: "The push refers to repository [r/x]"},
		{Status: "Preparing", ID: "a"}, {Status: "Preparing", ID: "b"},
		{Status: "Waiting", ID: "a"},
		{Status: "Pushing", ID: "a", Progress: &jsonstream.Progress{Current: 1, Total: 9}},
		{Status: "Pushing", ID: "a", Progress: &jsonstream.Progress{Current: 9, Total: 9}},
		{Status: "Layer already exists", ID: "b"},
		{Status: "Pushed", ID: "a"}, {Status: "Pushed", ID: "a"},
		{Status: "latest: digest: sha256:abc size: 528"},
		{Stream: "Step 1/2 : FROM x\n"},
	} {
		p.message(m)
	}
	want := "The push refers to repository [r/x]\nb: Layer already exists\na: Pushed\nlatest: digest: sha256:abc size: 528\n"
	if out.String() != want {
		t.Errorf("progress log = %q, want %q", out.String(), want)
	}
}

// registryDigest asks the registry for a tag's manifest digest, as a client pulling it sees it.
func registryDigest(t *testing.T, env testEnv, name, tag, password string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodHead, "http://"+env.registry+"/v2/"+name+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	req.SetBasicAuth(env.user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("HEAD manifest %s:%s: %v", name, tag, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD manifest %s:%s: %s", name, tag, resp.Status)
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// deleteManifests removes what a test pushed from the registry (its blobs stay until the
// registry's garbage collection, which the test environment does not run).
func deleteManifests(t *testing.T, env testEnv, name, tag string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	head, _ := http.NewRequestWithContext(ctx, http.MethodHead, "http://"+env.registry+"/v2/"+name+"/manifests/"+tag, nil)
	head.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	head.SetBasicAuth(env.user, env.password)
	resp, err := http.DefaultClient.Do(head)
	if err != nil {
		t.Errorf("HEAD manifest %s:%s: %v", name, tag, err)
		return
	}
	resp.Body.Close()
	digest := resp.Header.Get("Docker-Content-Digest")
	if digest == "" {
		return
	}
	del, _ := http.NewRequestWithContext(ctx, http.MethodDelete, "http://"+env.registry+"/v2/"+name+"/manifests/"+digest, nil)
	del.SetBasicAuth(env.user, env.password)
	if resp, err = http.DefaultClient.Do(del); err != nil {
		t.Errorf("DELETE manifest %s@%s: %v", name, digest, err)
		return
	}
	resp.Body.Close()
}
