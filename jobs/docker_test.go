package jobs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"go.uber.org/zap/zaptest"

	"github.com/gantry-ci/gantry/orchestrator"
)

// testEnv is what scripts/testenv.sh provides.
type testEnv struct {
	registry, user, password string
	busybox, python          string
}

// loadEnv reads the test environment; a missing variable skips the test, or fails it under CI.
func loadEnv(t *testing.T) testEnv {
	t.Helper()
	get := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not set; run scripts/testenv.sh up and eval \"$(scripts/testenv.sh env)\"", name)
			}
			t.Skipf("%s is not set; run scripts/testenv.sh up and eval \"$(scripts/testenv.sh env)\"", name)
		}
		return v
	}
	return testEnv{
		registry: get("GANTRY_TEST_REGISTRY"),
		user:     get("GANTRY_TEST_REGISTRY_USER"),
		password: get("GANTRY_TEST_REGISTRY_PASSWORD"),
		busybox:  get("GANTRY_TEST_BUSYBOX_IMAGE"),
		python:   get("GANTRY_TEST_PYTHON_IMAGE"),
	}
}

// testBundle is one test's connection to the engine and the names that keep it apart from
// the tests running beside it.
type testBundle struct {
	d        *Docker
	env      testEnv
	image    string // gantry-jobs-test/<random>
	pipeline int64  // random, so the gantry.pipeline label is this test's own
	fork     bool   // build as a merge request from a fork
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	env := loadEnv(t)
	d, err := Connect(t.Context(), Options{
		Logger:     zaptest.NewLogger(t),
		Registries: []Registry{{Host: env.registry, Username: env.user, Password: env.password}},
	})
	if err != nil {
		t.Fatalf("Connect() error = %v", err)
	}
	b := &testBundle{d: d, env: env, image: "gantry-jobs-test/" + randomHex(6), pipeline: randomID()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := d.RemoveContainers(ctx, map[string]string{LabelPipeline: b.pipelineLabel()}); err != nil {
			t.Errorf("RemoveContainers() error = %v", err)
		}
		d.Close()
	})
	return b
}

func (b *testBundle) pipelineLabel() string { return strconv.FormatInt(b.pipeline, 10) }

// removeImages removes the references when the test ends, in the order given, after the
// test's containers that could still hold them.
func (b *testBundle) removeImages(t *testing.T, refs ...string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := b.d.RemoveContainers(ctx, map[string]string{LabelPipeline: b.pipelineLabel()}); err != nil {
			t.Errorf("RemoveContainers() error = %v", err)
		}
		for _, ref := range refs {
			if err := b.d.RemoveImage(ctx, ref); err != nil {
				t.Errorf("RemoveImage(%s) error = %v", ref, err)
			}
		}
	})
}

// project is a project building b.image from the context root.
func (b *testBundle) project() orchestrator.Project {
	return orchestrator.Project{Path: "gantry-tests/" + b.image, Image: b.image}
}

// build builds files as pipeline b.pipeline and removes the test image afterwards.
func (b *testBundle) build(t *testing.T, p orchestrator.Project, files map[string]string) (orchestrator.BuildResult, string, error) {
	t.Helper()
	var log bytes.Buffer
	sha := randomHex(20)
	start := time.Now()
	res, err := b.d.Build(t.Context(), orchestrator.BuildRequest{
		PipelineID: b.pipeline,
		Project:    p,
		Trigger:    orchestrator.Trigger{SHA: sha, ProjectURL: "https://gitlab.example.com/" + p.Path, Fork: b.fork},
		Source:     archive(t, sha, files),
	}, &log)
	t.Logf("Build(pipeline %d) took %s", b.pipeline, time.Since(start))
	if err == nil {
		b.removeImages(t, res.ImageRef)
	}
	return res, log.String(), err
}

// archive is a repository archive the way GitLab serves it: a tar.gz with a pax global header
// holding the commit and every entry under one top-level folder.
func archive(t *testing.T, sha string, files map[string]string) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	top := "app-" + sha[:8] + "-" + sha + "/"
	must := func(err error) {
		if err != nil {
			t.Fatalf("writing archive: %v", err)
		}
	}
	must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header",
		PAXRecords: map[string]string{"comment": sha}}))
	must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: top, Mode: 0o755}))
	dirs := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		for i, c := range name {
			if c == '/' && !dirs[name[:i]] {
				dirs[name[:i]] = true
				must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: top + name[:i] + "/", Mode: 0o755}))
			}
		}
		mode := int64(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: top + name, Mode: mode, Size: int64(len(files[name]))}))
		_, err := tw.Write([]byte(files[name]))
		must(err)
	}
	must(tw.Close())
	must(gz.Close())
	return &buf
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// randomID is a positive pipeline ID below 2^53, far from any real one.
func randomID() int64 {
	var b [8]byte
	rand.Read(b[:])
	return int64(binary.BigEndian.Uint64(b[:])>>11) + 1
}

func TestConnectUnreachable(t *testing.T) {
	t.Parallel()
	start := time.Now()
	_, err := Connect(t.Context(), Options{Host: "unix:///nonexistent/docker.sock"})
	if err == nil {
		t.Fatal("Connect(missing socket) error = nil, want an error")
	}
	if !strings.Contains(err.Error(), "/nonexistent/docker.sock") {
		t.Errorf("Connect(missing socket) error = %q, want it to name the host", err)
	}
	if !client.IsErrConnectionFailed(err) {
		t.Errorf("Connect(missing socket) error = %v, want a connection failure", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Connect(missing socket) took %s, want it to fail fast", d)
	}
}

func TestConnect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if v := b.d.APIVersion(); v == "" || v == client.MaxAPIVersion {
		t.Errorf("APIVersion() = %q, want the engine's negotiated version", v)
	}
	if err := b.d.Ping(t.Context()); err != nil {
		t.Errorf("Ping() error = %v", err)
	}
	if _, err := b.d.RemoveContainers(t.Context(), nil); err == nil {
		t.Error("RemoveContainers(no labels) error = nil, want a refusal")
	}
	if err := b.d.RemoveImage(t.Context(), b.image+":does-not-exist"); err != nil {
		t.Errorf("RemoveImage(missing) error = %v, want nil", err)
	}
}

// isProjectFault reports whether err is classified as the project's failure.
func isProjectFault(err error) bool { return errors.Is(err, orchestrator.ErrProjectFault) }
