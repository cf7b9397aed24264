package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/webhook"
	"github.com/labstack/echo/v5"
)

// TestHTTPServerDropsStalledClients opens raw connections to gantry's HTTP server (its own
// construction, with short timeouts) and stops sending halfway: each connection is closed by
// the server within its timeouts rather than held. The secret is right, so the body is read.
func TestHTTPServerDropsStalledClients(t *testing.T) {
	t.Parallel()
	e := echo.New()
	webhook.New(nil, map[string]string{"g/app": testHookSecret}, nil).Register(e)
	e.GET("/healthz", func(c *echo.Context) error { return c.String(http.StatusOK, "ok") })
	timeouts := httpTimeouts{ReadHeader: 300 * time.Millisecond, Read: 600 * time.Millisecond, Write: 2 * time.Second, Idle: 600 * time.Millisecond}
	srv := newHTTPServer(e, timeouts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }() // ends with srv.Close below
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve() = %v", err)
		}
	})
	for _, tt := range []struct{ name, sent string }{
		{"headers never end", "POST /webhooks/gitlab HTTP/1.1\r\nHost: gantry\r\nX-Gitlab-Event: Push Hook\r\n"},
		{"body never ends", "POST /webhooks/gitlab HTTP/1.1\r\nHost: gantry\r\nX-Gitlab-Event: Push Hook\r\nX-Gitlab-Token: " + testHookSecret +
			"\r\nContent-Length: 100000\r\n\r\n{\"object_kind\":"},
		{"idle after an answer", "GET /healthz HTTP/1.1\r\nHost: gantry\r\n\r\n"},
	} {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := io.WriteString(conn, tt.sent); err != nil {
			t.Fatal(err)
		}
		// Whatever the server answers, it must then close: reading reaches EOF, well before
		// this deadline, which only keeps a failing test from hanging.
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadAll(conn)
		elapsed := time.Since(start)
		conn.Close()
		if err != nil {
			t.Errorf("%s: connection not closed by the server: %v after %s", tt.name, err, elapsed.Round(time.Millisecond))
			continue
		}
		t.Logf("%s: closed by the server after %s", tt.name, elapsed.Round(time.Millisecond))
	}
}
