package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v5"
)

// TestReadyzTellsStrangersOnlyWords: a failing check's error text (addresses, internals, at
// worst a URL with a password in it) reaches only callers with an API token; anyone else reads
// which part is unreachable and the same status code. Every caller of the first token and of
// the second sees the detail (token rotation).
func TestReadyzTellsStrangersOnlyWords(t *testing.T) {
	t.Parallel()
	leak := "dial tcp 10.1.2.3:6379: redis://:hunter2@10.1.2.3 refused"
	s := New(Options{Tokens: []string{"first-token-0123456789", "second-token-0123456789"}, Checks: map[string]Check{
		"redis":  func(context.Context) error { return errors.New(leak) },
		"docker": func(context.Context) error { return nil },
	}})
	e := echo.New()
	s.Register(e)
	get := func(token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec
	}
	for _, token := range []string{"", "wrong"} {
		rec := get(token)
		if rec.Code != http.StatusServiceUnavailable || strings.Contains(rec.Body.String(), "10.1.2.3") || strings.Contains(rec.Body.String(), "hunter2") ||
			!strings.Contains(rec.Body.String(), `"redis":"unreachable"`) || !strings.Contains(rec.Body.String(), `"docker":"ok"`) {
			t.Errorf("GET /readyz with token %q = %d %s, want 503 naming redis unreachable and nothing of its error", token, rec.Code, rec.Body)
		}
	}
	for _, token := range []string{"first-token-0123456789", "second-token-0123456789"} {
		if rec := get(token); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "10.1.2.3:6379") || strings.Contains(rec.Body.String(), "hunter2") {
			t.Errorf("GET /readyz with an API token = %d %s, want 503 with the error's detail, its password redacted", rec.Code, rec.Body)
		}
	}
}

// TestReadyzGivesChecksThreeSeconds: each check runs under a 3s deadline, long enough for a
// slow Redis to answer, short enough to answer a load balancer's probe.
func TestReadyzGivesChecksThreeSeconds(t *testing.T) {
	t.Parallel()
	var left time.Duration
	s := New(Options{Checks: map[string]Check{"redis": func(ctx context.Context) error {
		deadline, _ := ctx.Deadline()
		left = time.Until(deadline)
		return ctx.Err()
	}}})
	e := echo.New()
	s.Register(e)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK || left < 2*time.Second || left > 3*time.Second {
		t.Errorf("GET /readyz = %d %s with %v left to the check, want 200 and about 3s", rec.Code, rec.Body, left)
	}
}
