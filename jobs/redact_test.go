package jobs

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gantry-ci/gantry/orchestrator"
)

// leakyRegistry is a registry that refuses every login and, like a badly behaved proxy, says
// in its error what it was sent: the password, and the Authorization header that carries it.
// It listens on loopback, which the engine treats as an insecure (plain HTTP) registry.
func leakyRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, password, ok := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="leaky"`)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"errors":[{"code":"DENIED","message":"login %s with password %s refused (Authorization: %s)"}]}`,
			user, password, r.Header.Get("Authorization"))
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return l.Addr().String()
}

// TestRegistryErrorsRedacted: the engine passes on what a registry answers, and a registry (or
// a proxy before it) may repeat the login it was sent. On every path that talks to a registry
// — pulling and pushing the base, sharing the test image, pulling it for a test — the password
// must not reach the error (which becomes the job's description), the job log or gantry's log.
func TestRegistryErrorsRedacted(t *testing.T) {
	t.Parallel()
	env := loadEnv(t)
	host := leakyRegistry(t)
	password := "pw-" + randomHex(12)
	secrets := []string{password, base64.StdEncoding.EncodeToString([]byte("gantry:" + password))}

	check := func(t *testing.T, what string, err error, log string, logs *observer.ObservedLogs) {
		t.Helper()
		var all strings.Builder
		for _, e := range logs.All() {
			fmt.Fprintf(&all, "%s %v\n", e.Message, e.ContextMap())
		}
		for _, secret := range secrets {
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("%s error = %q, has the password", what, err)
			}
			if strings.Contains(log, secret) {
				t.Errorf("%s job log has the password:\n%s", what, log)
			}
			if strings.Contains(all.String(), secret) {
				t.Errorf("%s gantry log has the password:\n%s", what, all.String())
			}
		}
	}
	connect := func(t *testing.T, share bool) (*testBundle, *observer.ObservedLogs) {
		t.Helper()
		core, logs := observer.New(zapcore.DebugLevel)
		d, err := Connect(t.Context(), Options{Logger: zap.New(core), ShareImages: share,
			Registries: []Registry{{Host: host, Username: "gantry", Password: password}}})
		if err != nil {
			t.Fatal(err)
		}
		b := &testBundle{d: d, env: env, image: "gantry-jobs-test/" + randomHex(6), pipeline: randomID()}
		t.Cleanup(func() { d.Close() })
		return b, logs
	}

	t.Run("base pull and push", func(t *testing.T) {
		t.Parallel()
		b, logs := connect(t, false)
		p := b.project()
		p.Base = &orchestrator.BaseSpec{Dockerfile: "Dockerfile.base", Inputs: []string{"requirements.txt"}, Image: host + "/app-base-" + randomHex(4)}
		res, log, err := b.build(t, p, map[string]string{
			"Dockerfile.base":  "FROM " + env.busybox + "\nCOPY requirements.txt /\n",
			"requirements.txt": randomHex(8) + "\n",
			"Dockerfile":       "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
		})
		if err == nil {
			b.removeImages(t, res.BaseImage)
		}
		if err != nil || !strings.Contains(log, "refused") || !strings.Contains(log, "not pushed") {
			t.Errorf("Build() = %+v, %v; want a build whose base was neither pulled nor pushed, saying why\nlog:\n%s", res, err, log)
		}
		check(t, "Build(base)", err, log, logs)
	})
	t.Run("share", func(t *testing.T) {
		t.Parallel()
		b, logs := connect(t, true)
		p := b.project()
		p.Image = host + "/app-" + randomHex(4)
		res, log, err := b.build(t, p, map[string]string{"Dockerfile": "FROM " + env.busybox + "\nCOPY . /app\n"})
		t.Cleanup(func() { b.d.RemoveImage(context.Background(), p.Image+":test-"+b.pipelineLabel()) })
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("Build(share) = %+v, %v; want an error saying the registry refused", res, err)
		}
		check(t, "Build(share)", err, log, logs)
	})
	t.Run("test image pull", func(t *testing.T) {
		t.Parallel()
		b, logs := connect(t, false)
		var out bytes.Buffer
		_, err := b.d.Test(t.Context(), orchestrator.TestRequest{PipelineID: b.pipeline, Project: "p",
			ImageID: "sha256:" + randomHex(32), ImageRef: host + "/app:test-" + b.pipelineLabel(),
			Test: orchestrator.TestSpec{Name: "pull", Command: []string{"true"}, Timeout: time.Minute}}, &out)
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("Test(image to pull) error = %v, want one saying the registry refused", err)
		}
		check(t, "Test(pull)", err, out.String(), logs)
	})
	t.Run("release", func(t *testing.T) {
		t.Parallel()
		b, logs := connect(t, false)
		repo := host + "/app-" + randomHex(4)
		t.Cleanup(func() { b.d.RemoveImage(context.Background(), repo+":latest") })
		var out bytes.Buffer
		_, err := b.d.Release(t.Context(), orchestrator.ReleaseRequest{ImageID: env.busybox, Repository: repo, Tags: []string{"latest"}}, &out)
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("Release() error = %v, want one saying the registry refused", err)
		}
		check(t, "Release", err, out.String(), logs)
	})
}
