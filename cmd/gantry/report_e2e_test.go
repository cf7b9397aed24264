package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// reportScript is a test that writes a JUnit report with one passing and one failing case,
// prints a coverage line among others, and fails.
const reportScript = `mkdir -p /tmp/reports
cat > /tmp/reports/junit.xml <<'XML'
<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="checkout" tests="2" failures="1">
<testcase classname="tests.test_cart" name="test_empty_cart"/>
<testcase classname="tests.test_cart" name="test_checkout_total"><failure message="assert 41 == 42">expected 42, got 41</failure></testcase>
</testsuite></testsuites>
XML
echo "TOTAL coverage: 12.0%"
echo "TOTAL coverage: 73.5%"
echo "1 failed, 1 passed"
exit 1
`

// TestTestReportEndToEnd: a project's test writes a JUnit report and prints its coverage; the
// failed status GitLab receives names the failing case and carries the coverage, and the API
// shows the case.
func TestTestReportEndToEnd(t *testing.T) {
	t.Parallel()
	g, repo := startBusyboxProjectWith(t, testenv.RedisURL(t), settings{
		test: `, junit: /tmp/reports/junit.xml, coverage: '/^TOTAL coverage: (\d+\.\d+)%$/'`,
	}, "")
	sha := repo.Commit("a failing case", map[string]string{"test.sh": reportScript})
	id := g.push(t, "main", zero, sha)
	p := g.waitFinished(t, id, 2*time.Minute)
	const want = "1 of 2 failed: test_checkout_total"
	if st, desc := p.job("test/check"); st != "failed" || desc != want {
		t.Errorf("test/check = %s %q, want failed %q", st, desc, want)
	}
	waitStatuses(t, g, sha, map[string][]string{
		"gantry/build": {"pending", "running", "success"}, "gantry/test/check": {"pending", "running", "failed"},
		"gantry/release": {"pending", "skipped"},
	})
	post, ok := statusPost(g.gitlab, "gantry/test/check", "failed")
	if !ok {
		t.Fatalf("no failed gantry/test/check status among GitLab's calls")
	}
	if post.Body["description"] != want || post.Body["coverage"] != "73.5" {
		t.Errorf("failed status sent description %q, coverage %q; want %q and 73.5, the last match",
			post.Body["description"], post.Body["coverage"], want)
	}

	job := reportJob(t, g, id, "test/check")
	if job.Coverage == nil || *job.Coverage != 73.5 || job.Report == nil || job.Report.Tests != 2 || job.Report.Failed != 1 {
		t.Fatalf("API job test/check = coverage %v, report %+v; want 73.5 and 2 cases, 1 failed", job.Coverage, job.Report)
	}
	c := job.Report.Cases[0]
	if c.Name != "test_checkout_total" || c.Classname != "tests.test_cart" || c.Status != "failed" ||
		c.Message != "assert 41 == 42" || !strings.Contains(c.Output, "expected 42, got 41") {
		t.Errorf("API job test/check first case = %+v, want the failing test_checkout_total with its message and output", c)
	}
}

// statusPost is the last status post of a name and state that GitLab accepted.
func statusPost(gl *gitlabtest.Server, name, state string) (gitlabtest.Call, bool) {
	var found gitlabtest.Call
	ok := false
	for _, c := range gl.Calls() {
		if c.Method == http.MethodPost && strings.Contains(c.Path, "/statuses/") && c.Status == http.StatusCreated &&
			c.Body["name"] == name && c.Body["state"] == state {
			found, ok = c, true
		}
	}
	return found, ok
}

// reportedJob is a job of the API's answer, with its report and coverage.
type reportedJob struct {
	Name     string   `json:"name"`
	Coverage *float64 `json:"coverage"`
	Report   *struct {
		Tests  int `json:"tests"`
		Failed int `json:"failed"`
		Cases  []struct {
			Name      string `json:"name"`
			Classname string `json:"classname"`
			Status    string `json:"status"`
			Message   string `json:"message"`
			Output    string `json:"output"`
		} `json:"cases"`
	} `json:"report"`
}

func reportJob(t *testing.T, g *gantryProc, id int64, name string) reportedJob {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/v1/pipelines/%d", g.url, id), nil)
	req.Header.Set("Authorization", "Bearer "+g.apiToken)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	var p struct {
		Jobs []reportedJob `json:"jobs"`
	}
	must(t, json.NewDecoder(resp.Body).Decode(&p))
	for _, j := range p.Jobs {
		if j.Name == name {
			return j
		}
	}
	t.Fatalf("pipeline %d has no job %s", id, name)
	return reportedJob{}
}
