package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// TestReconcileMissedPush: a commit lands on main and GitLab never delivers its push (the hook
// was disabled, or the delivery failed once): gantry's reconciliation finds the head without a
// pipeline and runs one, which releases as the push would have. The disabled hook is counted
// in /metrics.
func TestReconcileMissedPush(t *testing.T) {
	t.Parallel()
	g, repo := startBusyboxProjectWith(t, testenv.RedisURL(t), settings{gitlab: ", reconcile_every: 1s"}, "")
	hook := g.gitlab.AddHook(g.project.ID, gitlabtest.Hook{URL: g.url + "/webhooks/gitlab"})
	g.gitlab.SetHookAlert(g.project.ID, hook.ID, "disabled", nil)
	sha := repo.Commit("a change whose push was never delivered", map[string]string{"lost.txt": "x"})

	var id int64
	for deadline := time.Now().Add(time.Minute); id == 0; time.Sleep(200 * time.Millisecond) {
		if code, raw := g.api(t, "GET", "/api/v1/pipelines?sha="+sha, g.apiToken, nil); code == http.StatusOK {
			if ps, _ := raw["pipelines"].([]any); len(ps) > 0 {
				p := ps[0].(map[string]any)
				id = int64(p["id"].(float64))
				if trig := p["trigger"].(map[string]any); trig["kind"] != "reconcile" || trig["ref"] != "main" {
					t.Errorf("pipeline of the missed push: trigger %v, want reconcile of main", trig)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no pipeline for the missed push after a minute")
		}
	}
	p := g.waitFinished(t, id, 2*time.Minute)
	if st, _ := p.job("release"); p.State != "success" || st != "success" {
		t.Errorf("reconcile pipeline = %s, release %s; want it released as the push would have", p.State, st)
	}
	if n := g.pipelineCount(t); n != 1 {
		t.Errorf("%d pipelines, want 1: the head is reconciled once", n)
	}
	metrics := getBody(t, g.url+"/metrics")
	if want := `gantry_hook_disabled{project="` + g.project.PathWithNamespace + `"} 1`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// TestReconcileReenablesOwnHook: with gitlab.reenable_hooks, the check asks GitLab for a test
// delivery to gantry's own disabled hook; gantry answers it (a push of main's head, which runs)
// and GitLab delivers to the hook again. Another service's disabled hook is left alone.
func TestReconcileReenablesOwnHook(t *testing.T) {
	t.Parallel()
	g, _ := startBusyboxProjectWith(t, testenv.RedisURL(t), settings{gitlab: ", reconcile_every: 1s, reenable_hooks: true"}, "")
	own := g.gitlab.AddHook(g.project.ID, gitlabtest.Hook{URL: g.url + "/webhooks/gitlab", Token: g.secret, PushEvents: true})
	other := g.gitlab.AddHook(g.project.ID, gitlabtest.Hook{URL: "http://127.0.0.1:1/other-service"})
	g.gitlab.SetHookAlert(g.project.ID, own.ID, "disabled", nil)
	g.gitlab.SetHookAlert(g.project.ID, other.ID, "disabled", nil)

	status := func() map[int64]string {
		out := map[int64]string{}
		for _, h := range g.gitlab.Hooks(g.project.ID) {
			out[h.ID] = h.AlertStatus
		}
		return out
	}
	for deadline := time.Now().Add(time.Minute); status()[own.ID] != "executable"; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("gantry's hook still disabled a minute later")
		}
	}
	if s := status()[other.ID]; s != "disabled" {
		t.Errorf("another service's hook is %s, want it left disabled", s)
	}
	code, raw := g.api(t, "GET", "/api/v1/pipelines?ref=main", g.apiToken, nil)
	ps, _ := raw["pipelines"].([]any)
	if code != http.StatusOK || len(ps) == 0 {
		t.Fatalf("no pipeline for the test delivery's push: %d %v", code, raw)
	}
	g.waitFinished(t, int64(ps[0].(map[string]any)["id"].(float64)), 2*time.Minute)
}
