package main

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testenv"
)

// TestAlertRules: the alert rules load (promtool check rules), each fires on the series that
// should raise it and stays quiet otherwise (promtool test rules, deploy/prometheus/alerts_test.yml),
// and every gantry metric the rules and the Grafana dashboard use is one a running gantry serves:
// a renamed metric breaks this test, not an operator's alert.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	promtool := testenv.NeedBinary(t, "promtool")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "../../deploy/prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	used := map[string]bool{}
	name := regexp.MustCompile(`\bgantry_[a-z_]+`)
	rules, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
	must(t, err)
	for _, m := range name.FindAllString(string(rules), -1) {
		used[m] = true
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
	}
	raw, err := os.ReadFile("../../deploy/grafana/gantry.json")
	must(t, err)
	must(t, json.Unmarshal(raw, &dash))
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Error("a dashboard panel has no query")
		}
		for _, q := range p.Targets {
			for _, m := range name.FindAllString(q.Expr, -1) {
				used[m] = true
			}
		}
	}
	delete(used, "gantry_hooks") // `gantry hooks register` in a description, not a metric

	// One pipeline through a real gantry, so the labelled series exist too.
	g, repo := startBusyboxProjectWith(t, testenv.RedisURL(t), settings{gitlab: ", reconcile_every: 1s"}, "")
	sha := repo.Commit("a change", map[string]string{"change.txt": "1"})
	g.waitFinished(t, g.push(t, "main", zero, sha), 2*time.Minute)
	var served string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		served = getBody(t, g.url+"/metrics")
		if strings.Contains(served, "gantry_hook_disabled{") || time.Now().After(deadline) {
			break
		}
	}
	for _, m := range slices.Sorted(maps.Keys(used)) {
		if !regexp.MustCompile(`(?m)^` + m + `[{ ]`).MatchString(served) {
			t.Errorf("%s is used by the alert rules or the dashboard but gantry does not serve it", m)
		}
	}
	if len(used) < 10 {
		t.Errorf("found %d gantry metrics in the rules and the dashboard, want them all (the pattern missed)", len(used))
	}
}
