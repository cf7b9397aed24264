package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuildPipeline(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		want           int64
		ok             bool
	}{
		{"POST", "/v1.41/build?t=127.0.0.1%3A5090%2Fbench%2Fapp%3Atest-42&dockerfile=x", 42, true},
		{"POST", "/build?t=bench/tiny:test-7", 7, true},
		{"POST", "/v1.41/build?t=other:latest&t=bench/tiny:test-9", 9, true},
		// The base tier is tagged by its content hash.
		{"POST", "/v1.41/build?t=127.0.0.1:5090/bench/app-base:0123456789abcdef", 0, false},
		// A registry's port is not a tag.
		{"POST", "/v1.41/build?t=127.0.0.1:5090/bench/app", 0, false},
		{"POST", "/v1.41/build?t=bench/app:test-x", 0, false},
		{"GET", "/v1.41/build?t=bench/app:test-1", 0, false},
		{"POST", "/v1.41/images/create?t=bench/app:test-1", 0, false},
		{"POST", "/v1.41/build/prune", 0, false},
	} {
		u, err := url.Parse(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := buildPipeline(tc.method, u); got != tc.want || ok != tc.ok {
			t.Errorf("buildPipeline(%s %s) = %d, %v, want %d, %v", tc.method, tc.target, got, ok, tc.want, tc.ok)
		}
	}
}

// TestEngineProxy puts the proxy in front of a stand-in engine on a Unix socket: requests and
// their streamed bodies pass through both ways, and a build request is noted by pipeline.
func TestEngineProxy(t *testing.T) {
	dir := t.TempDir()
	engineSock := filepath.Join(dir, "engine.sock")
	ln, err := net.Listen("unix", engineSock)
	if err != nil {
		t.Fatal(err)
	}
	engine := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(body))
	})}
	go engine.Serve(ln) // ends with Close below
	defer engine.Close()

	proxyDir := filepath.Join(dir, "p")
	if err := os.Mkdir(proxyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := startEngineProxy(proxyDir, "unix://"+engineSock)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	sock := strings.TrimPrefix(p.host, "unix://")
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Post("http://docker/v1.41/build?t=bench/tiny:test-5", "application/x-tar", strings.NewReader("context"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "POST /v1.41/build context"; string(got) != want {
		t.Errorf("answer through the proxy = %q, want %q", got, want)
	}
	ctx := context.Background()
	if _, err := p.waitBuild(ctx, 5, time.Second); err != nil {
		t.Errorf("waitBuild(5): %v", err)
	}
	if _, err := p.waitBuild(ctx, 6, 10*time.Millisecond); err == nil {
		t.Error("waitBuild(6) = nil error for a pipeline whose build never came")
	}
}
