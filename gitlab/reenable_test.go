package gitlab

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
)

// TestReenableHook: a test delivery that the receiver answers 2xx makes the disabled hook
// executable again, and the receiver got a push of the default branch's head with the hook's
// token; a receiver that fails it leaves the hook disabled and the call errs.
func TestReenableHook(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		answer     int
		wantErr    bool
		wantStatus string
	}{
		{"receiver answers", http.StatusAccepted, false, "executable"},
		{"receiver fails", http.StatusServiceUnavailable, true, "disabled"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var mu sync.Mutex
			var got []map[string]any
			var tokens []string
			receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var body map[string]any
				json.NewDecoder(r.Body).Decode(&body)
				mu.Lock()
				got, tokens = append(got, body), append(tokens, r.Header.Get("X-Gitlab-Token")+"|"+r.Header.Get("X-Gitlab-Event"))
				mu.Unlock()
				w.WriteHeader(tt.answer)
			}))
			defer receiver.Close()
			h := b.srv.AddHook(b.proj.ID, gitlabtest.Hook{URL: receiver.URL, Token: "hook-s3cret", PushEvents: true})
			b.srv.SetHookAlert(b.proj.ID, h.ID, "disabled", nil)

			err := b.c.ReenableHook(context.Background(), b.proj.PathWithNamespace, h.ID)
			if (err != nil) != tt.wantErr {
				t.Errorf("ReenableHook = %v, want an error %v", err, tt.wantErr)
			}
			if s := b.srv.Hooks(b.proj.ID)[0].AlertStatus; s != tt.wantStatus {
				t.Errorf("hook is %s after the test delivery, want %s", s, tt.wantStatus)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 || tokens[0] != "hook-s3cret|Push Hook" || got[0]["object_kind"] != "push" ||
				got[0]["ref"] != "refs/heads/main" || got[0]["checkout_sha"] != b.sha {
				t.Errorf("the receiver got %v with %v, want one push of refs/heads/main at %s with the hook's token", got, tokens, b.sha)
			}
		})
	}
}

// TestReenableHookRefusals: an unknown hook is not found, and nothing is delivered for it.
func TestReenableHookRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if err := b.c.ReenableHook(context.Background(), b.proj.PathWithNamespace, 999); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("ReenableHook of an unknown hook = %v, want not found", err)
	}
}
