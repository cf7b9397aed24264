//go:build !nobrowser

package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
)

// TestRunningJobCountsInBrowser: a running job's elapsed time is counted by the server's
// clock, not the browser's (which is weeks off the fixture's here), also once the script has
// read the pipeline again.
func TestRunningJobCountsInBrowser(t *testing.T) {
	m := newFixture()
	now := t0.Add(10 * time.Minute) // newServer's clock
	m.setJob(4, "test/lint", func(j *orchestrator.Job) {
		j.State, j.StartedAt, j.FinishedAt = orchestrator.StateRunning, now.Add(-65*time.Second), time.Time{}
	})
	// A followed log that fails at once: an open request would stop virtual time.
	fake := m.fake()
	fake.LogFromFunc = func(ctx context.Context, id int64, job string, attempt int, offset int64) (string, int64, error) {
		if offset >= 0 {
			return "", 0, errors.New("no log to follow here")
		}
		return m.fake().LogFromFunc(ctx, id, job, attempt, offset)
	}
	pages := newServer(m, func(o *Options) { o.Pipelines = fake })
	// The server's clock as its answers tell it: 30s after the page was made.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", now.Add(30*time.Second).Format(http.TimeFormat))
		pages.ServeHTTP(w, r)
	}))
	defer srv.Close()

	if page := do(pages, http.MethodGet, "/pipelines/4", "", "").Body.String(); !strings.Contains(page, `<span class="duration" data-elapsed="65">1m05s</span>`) {
		t.Fatal("the page as served does not say test/lint has run 65s")
	}
	// The script follows the log (which fails), reads the pipeline again at once, and counts
	// from the Date of that answer.
	dom := browser(t, "--virtual-time-budget=2000", "--dump-dom", srv.URL+"/pipelines/4")
	re := regexp.MustCompile(`data-job="test/lint"[\s\S]*?<span class="times"><time class="started" datetime="2026-11-26T10:08:55Z">10:08:55</time>–</span>\s*` +
		`<span class="duration" data-elapsed="([0-9.]+)">([0-9ms]+)</span>`)
	got := re.FindStringSubmatch(dom)
	if got == nil {
		t.Fatalf("browser shows no start and elapsed time of test/lint:\n%s", dom)
	}
	if got[1] != "95" || got[2] < "1m35s" || got[2] > "1m38s" {
		t.Errorf("browser shows test/lint running for %s (counted from %ss); want 95s and on, by the server's clock", got[2], got[1])
	}
}

// TestListRefreshesInBrowser: the list of pipelines reads itself again while one runs, and
// stops once none does.
func TestListRefreshesInBrowser(t *testing.T) {
	var calls atomic.Int32
	list := func(context.Context, Filter) ([]*orchestrator.Pipeline, error) {
		p := finishedPipeline()
		p.Trigger.Commit.Title = "Fix the login form"
		if calls.Add(1) == 1 {
			p.Jobs[1].State, p.Jobs[3].State = orchestrator.StateRunning, orchestrator.StateCreated
		}
		return []*orchestrator.Pipeline{p}, nil
	}
	srv := httptest.NewServer(newServer(newFixture(), func(o *Options) { o.List = list }))
	defer srv.Close()
	dom := browser(t, "--virtual-time-budget=30000", "--dump-dom", srv.URL+"/pipelines?project=g%2Fapp")
	for _, want := range []string{
		`<td class="state failed">failed</td>`,
		`<span class="state failed" title="test: failed">test ✗</span>`,
		`<input name="project" value="g/app"`,
		`<span class="title">Fix the login form</span>`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("list after a refresh lacks %s:\n%s", want, dom)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("the list was read %d times; want twice: the page, then once more while a pipeline ran", n)
	}
}
