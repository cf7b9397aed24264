package api

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gantry-ci/gantry/orchestrator"
)

// TestPipelinePageEscapesLogs renders a log that holds markup: the page carries it as text.
func TestPipelinePageEscapesLogs(t *testing.T) {
	rec := do(newServer(newFixture(), nil), http.MethodGet, "/pipelines/4", "", "")
	page := rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("GET /pipelines/4 = %d %s", rec.Code, page)
	}
	for _, want := range []string{
		`&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;`,
		`&lt;img src=x onerror=&#34;document.body.dataset.pwned=1&#34;&gt;`,
		`&lt;/pre&gt;&lt;b id=&#34;injected&#34;&gt;bold&lt;/b&gt;`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks the escaped log line %s", want)
		}
	}
	for _, bad := range []string{"<script>document", "<img src=x", `<b id="injected">`} {
		if strings.Contains(page, bad) {
			t.Errorf("page carries log markup %s unescaped", bad)
		}
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy = %q, want scripts from this server only", csp)
	}
}

func TestPipelinePageShows(t *testing.T) {
	m := newFixture()
	m.pipelines[4].Digest = "sha256:feedbeef"
	page := do(newServer(m, nil), http.MethodGet, "/pipelines/4", "", "").Body.String()
	for _, want := range []string{
		`<h1>Pipeline #4 <span class="state failed">failed</span></h1>`,
		`<h2>build</h2>`, `<h2>test</h2>`, `<h2>release</h2>`,
		`data-job="build" data-state="success" data-attempt="1"`,
		`data-job="test/unit" data-state="failed" data-attempt="2" open`,
		`data-job="test/lint" data-state="success" data-attempt="1"`,
		`data-job="release" data-state="skipped" data-attempt="1"`,
		`<span class="attempt">attempt 2</span>`,
		`<span class="duration">1m12s</span>`, `<span class="duration">3.0s</span>`,
		`<span class="class">project failure</span>`,
		`<code>sha256:1111aaaa2222bbbb3333cccc4444dddd5555eeee6666ffff7777000088889999</code>`,
		`<code>registry.example.com/g/app:test-4</code>`, `<code>sha256:feedbeef</code>`,
		`<dt>duration</dt><dd>1m16s</dd>`, `(10m ago)`,
		`href="/pipelines/4/jobs/test%2Funit/log?attempt=1">1</a>`, // the earlier attempt's log
		`Successfully built 1111aaaa`,
		`<script src="/assets/gantry.js?v=`,
		// The project's and the ref's listings, each link with the filters it names and no other.
		`href="/pipelines?project=g%2Fapp"`, `href="/pipelines?project=g%2Fapp&amp;ref=master"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// Only attempts before the current one are linked as earlier.
	if bad := `log?attempt=2">2</a>`; strings.Contains(page, bad) {
		t.Errorf("page links the current attempt as an earlier one: %s", bad)
	}
	// Asset URLs carry a hash of the asset, so a browser never keeps an old script.
	for _, asset := range []string{"gantry.js", "gantry.css"} {
		if re := regexp.MustCompile(`"/assets/` + regexp.QuoteMeta(asset) + `\?v=[0-9a-f]{12}"`); !re.MatchString(page) {
			t.Errorf("page lacks a versioned URL of %s", asset)
		}
	}
}

// unitReport is a failed test's report: one case passed, one failed with markup in its name,
// message and output, which the project's code wrote.
func unitReport() *orchestrator.TestReport {
	return orchestrator.NewTestReport([]orchestrator.TestCase{
		{Name: "test_ok", Classname: "tests.test_app", Status: orchestrator.CasePassed},
		{Name: "test_<b>bad</b>", Classname: "tests.test_app", Status: orchestrator.CaseFailed,
			Message: "assert 1 == 2", Output: "E  <script>alert(1)</script>"},
	})
}

// TestPipelinePageShowsTestReport: a test job's failing cases are listed above its log, as
// text, with the counts and the coverage; the JSON the script reads carries both.
func TestPipelinePageShowsTestReport(t *testing.T) {
	m := newFixture()
	m.setJob(4, "test/unit", func(j *orchestrator.Job) { j.Report, j.Coverage = unitReport(), ptr(81.25) })
	srv := newServer(m, nil)
	page := do(srv, http.MethodGet, "/pipelines/4", "", "").Body.String()
	unit := page[strings.Index(page, `data-job="test/unit"`):]
	unit = unit[:strings.Index(unit, `data-job="test/lint"`)]
	for _, want := range []string{
		`<span class="coverage">coverage 81.25%</span>`,
		`<p class="counts">2 test cases: 1 passed, 1 failed</p>`,
		`<code>tests.test_app::test_&lt;b&gt;bad&lt;/b&gt;</code> <span class="state failed">failed</span> <span class="message">assert 1 == 2</span>`,
		`<pre class="output">E  &lt;script&gt;alert(1)&lt;/script&gt;</pre>`,
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("test/unit on the page lacks %s:\n%s", want, unit)
		}
	}
	if strings.Contains(unit, "test_ok") {
		t.Errorf("test/unit on the page lists the passing case:\n%s", unit)
	}
	if strings.Index(unit, `class="report"`) > strings.Index(unit, `<pre class="log"`) {
		t.Errorf("failing cases come after the log, want them above it")
	}
	if lint := page[strings.Index(page, `data-job="test/lint"`):]; strings.Contains(lint[:strings.Index(lint, "</details>")], `class="report"`) {
		t.Errorf("test/lint without a report shows one")
	}

	rec := do(srv, http.MethodGet, "/api/v1/pipelines/4", "secret-token", "")
	var got struct {
		Jobs []struct {
			Name     string                   `json:"name"`
			Report   *orchestrator.TestReport `json:"report"`
			Coverage *float64                 `json:"coverage"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("GET /api/v1/pipelines/4 = %d %s: %v", rec.Code, rec.Body, err)
	}
	for _, j := range got.Jobs {
		if j.Name != "test/unit" {
			continue
		}
		if d := cmp.Diff(unitReport(), j.Report); d != "" || j.Coverage == nil || *j.Coverage != 81.25 {
			t.Errorf("API job test/unit coverage %v, report (-want +got):\n%s", j.Coverage, d)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestPipelinePageCarriesTheLogTail keeps a long log from making a long page.
func TestPipelinePageCarriesTheLogTail(t *testing.T) {
	m := newFixture()
	m.appendLog(4, "build", 1, strings.Repeat("x", 2*pageLogTail)+"the end\n")
	page := do(newServer(m, nil), http.MethodGet, "/pipelines/4", "", "").Body.String()
	if len(page) > 2*pageLogTail || !strings.Contains(page, "the end") {
		t.Errorf("page of %d bytes, want the log's tail only (at most %d bytes of it)", len(page), pageLogTail)
	}
}

func TestListPage(t *testing.T) {
	var got Filter
	list := func(_ context.Context, f Filter) ([]*orchestrator.Pipeline, error) {
		got = f
		p := finishedPipeline()
		p.Trigger.Ref = `<i>ref</i>`
		return []*orchestrator.Pipeline{p}, nil
	}
	e := newServer(newFixture(), func(o *Options) { o.List = list })
	rec := do(e, http.MethodGet, "/pipelines?project=g%2Fapp&ref=%3Ci%3E&limit=7", "", "")
	page := rec.Body.String()
	// Without a signed-in visitor nothing is left out after the listing: the limit asked is the limit.
	if rec.Code != 200 || got.Project != "g/app" || got.Ref != "<i>" || got.Limit != 7 {
		t.Fatalf("GET /pipelines = %d with filter %+v", rec.Code, got)
	}
	for _, want := range []string{
		`<input name="project" value="g/app"`, `<input name="ref" value="&lt;i&gt;"`,
		`<tr data-pipeline="4" data-state="failed">`, `<a href="/pipelines/4">#4</a>`,
		`<code>&lt;i&gt;ref&lt;/i&gt;</code>`, `<code>abc123de</code>`, `>10m ago</time>`, `<td class="duration">1m16s</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("list page lacks %s", want)
		}
	}
	if rec := do(e, http.MethodGet, "/pipelines?status=nope", "", ""); rec.Code != 400 || !strings.Contains(rec.Body.String(), `class="error">status must be one of`) {
		t.Errorf("list page with a bad filter = %d, want 400 with the error on the page", rec.Code)
	}
	if rec := do(newServer(newFixture(), func(o *Options) { o.PublicPages = false; o.List = list }), http.MethodGet, "/pipelines", "", ""); rec.Code != 401 {
		t.Errorf("private list page without token = %d, want 401", rec.Code)
	}
}

func TestAssets(t *testing.T) {
	e := newServer(newFixture(), func(o *Options) { o.PublicPages = false })
	for path, ctype := range map[string]string{"/assets/gantry.js": "text/javascript; charset=utf-8", "/assets/gantry.css": "text/css; charset=utf-8"} {
		rec := do(e, http.MethodGet, path, "", "")
		if rec.Code != 200 || rec.Header().Get("Content-Type") != ctype || rec.Body.Len() == 0 {
			t.Errorf("GET %s = %d %s, want 200 %s", path, rec.Code, rec.Header().Get("Content-Type"), ctype)
		}
	}
	if rec := do(e, http.MethodGet, "/assets/nope.js", "", ""); rec.Code != 404 {
		t.Errorf("GET unknown asset = %d, want 404", rec.Code)
	}
}

func TestTextHelpers(t *testing.T) {
	for sec, want := range map[float64]string{0: "", 4.24: "4.2s", 59.9: "59.9s", 60: "1m00s", 185: "3m05s", 3599: "59m59s", 3600: "1h00m", 3725: "1h02m"} {
		if got := durationText(sec); got != want {
			t.Errorf("durationText(%v) = %q, want %q", sec, got, want)
		}
	}
	now := t0.Add(72 * time.Hour)
	for ago, want := range map[time.Duration]string{10 * time.Second: "just now", time.Minute: "1m ago", 5 * time.Minute: "5m ago",
		time.Hour: "1h ago", 3 * time.Hour: "3h ago", 47 * time.Hour: "47h ago", 48 * time.Hour: "2d ago", 72 * time.Hour: "3d ago"} {
		if got := ageText(now, now.Add(-ago)); got != want {
			t.Errorf("ageText(%v ago) = %q, want %q", ago, got, want)
		}
	}
	for sha, want := range map[string]string{"abc123def4567890": "abc123de", "abc123de": "abc123de", "abc1": "abc1"} {
		if got := shortSHA(sha); got != want {
			t.Errorf("shortSHA(%q) = %q, want %q", sha, got, want)
		}
	}
}

// waitingPipeline is a fork's merge request pipeline waiting for approval, as pipeline 9.
func waitingPipeline() *orchestrator.Pipeline {
	return &orchestrator.Pipeline{ID: 9, CreatedAt: t0,
		Trigger: orchestrator.Trigger{Project: "g/app", ProjectID: 50, Kind: orchestrator.TriggerMergeRequest, Ref: "feature",
			SHA: "f0f0f0f0f0f0f0f0", Fork: true, MergeRequestIID: 4},
		Approval: &orchestrator.Approval{Reason: "merge request from a fork", Approvers: orchestrator.Approvers, ExpiresAt: t0.Add(72 * time.Hour)},
		Jobs: []orchestrator.Job{
			{Name: "build", Stage: orchestrator.StageBuild, State: orchestrator.StatePending, Attempt: 1, Description: "waiting for approval"},
			{Name: "test/unit", Stage: orchestrator.StageTest, State: orchestrator.StatePending, Attempt: 1, Description: "waiting for approval"},
		}}
}

// TestWaitingPipelineShown: the API, the page and the listing show a waiting pipeline as
// such, with why it waits and who may approve it.
func TestWaitingPipelineShown(t *testing.T) {
	all := []*orchestrator.Pipeline{finishedPipeline(), waitingPipeline()}
	e := newServer(newMemory(all...), func(o *Options) {
		o.List = func(_ context.Context, f Filter) ([]*orchestrator.Pipeline, error) {
			var out []*orchestrator.Pipeline
			for _, p := range all {
				if f.Status == "" || p.State() == f.Status {
					out = append(out, p)
				}
			}
			return out, nil
		}
	})
	rec := do(e, http.MethodGet, "/api/v1/pipelines/9", "secret-token", "")
	for _, want := range []string{`"state":"waiting_for_approval"`, `"reason":"merge request from a fork"`, `"approvers":"holders of a gantry API token`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("API answer lacks %s: %s", want, rec.Body)
		}
	}
	rec = do(e, http.MethodGet, "/pipelines/9", "", "")
	for _, want := range []string{`<span class="state waiting_for_approval">waiting_for_approval</span>`, "waiting: merge request from a fork", "<code>gantry pipelines approve 9</code>"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// A stage without jobs (this pipeline has no release job) is left off the page.
	if strings.Contains(rec.Body.String(), "<h2>release</h2>") {
		t.Errorf("page shows a release stage the pipeline does not have")
	}
	rec = do(e, http.MethodGet, "/api/v1/pipelines?status=waiting_for_approval", "secret-token", "")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"id":9`) || strings.Contains(rec.Body.String(), `"id":4`) {
		t.Errorf("listing waiting pipelines = %d %s, want pipeline 9 alone", rec.Code, rec.Body)
	}
}

// TestDecidedPipelineShown: once decided, the page says who decided and how they were let in.
func TestDecidedPipelineShown(t *testing.T) {
	p := waitingPipeline()
	p.Approval.Verdict = &orchestrator.Verdict{Decision: orchestrator.DecisionApproved, By: "maint", Via: "API token sha256:930bbdc5", At: t0.Add(time.Hour)}
	rec := do(newServer(newMemory(p), nil), http.MethodGet, "/pipelines/9", "", "")
	if want := "approved by maint (API token sha256:930bbdc5), <time"; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("page lacks %q", want)
	}
}
