package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/google/go-cmp/cmp"
)

func TestStageStates(t *testing.T) {
	t.Parallel()
	p := finishedPipeline()
	want := []stageState{{orchestrator.StageBuild, orchestrator.StateSuccess}, {orchestrator.StageTest, orchestrator.StateFailed},
		{orchestrator.StageRelease, orchestrator.StateSkipped}}
	if d := cmp.Diff(want, stageStates(p)); d != "" {
		t.Errorf("stageStates(finished) (-want +got):\n%s", d)
	}
	p.Jobs[1].State, p.Jobs[2].State = orchestrator.StateRunning, orchestrator.StatePending
	p.Jobs = p.Jobs[:3] // no release job: no release stage
	want = []stageState{{orchestrator.StageBuild, orchestrator.StateSuccess}, {orchestrator.StageTest, orchestrator.StateRunning}}
	if d := cmp.Diff(want, stageStates(p)); d != "" {
		t.Errorf("stageStates(running) (-want +got):\n%s", d)
	}
}

// TestListPageShowsStages: each row shows its commit's title and its stages' states, with a
// mark that reads without colour; the filter's fields are empty when the filter is; and the
// list is marked for the script to read again only while a pipeline may still change.
func TestListPageShowsStages(t *testing.T) {
	t.Parallel()
	listed := []*orchestrator.Pipeline{finishedPipeline()}
	listed[0].Trigger.Commit = orchestrator.Commit{Title: "Fix <b>login</b>", Author: "Ann"}
	list := func(context.Context, Filter) ([]*orchestrator.Pipeline, error) { return listed, nil }
	e := newServer(newFixture(), func(o *Options) { o.List = list })
	page := do(e, http.MethodGet, "/pipelines", "", "").Body.String()
	for _, want := range []string{
		`<input name="project" value="" autocapitalize`, `<input name="ref" value="" autocapitalize`,
		`<option value="">any</option>`,
		`<code>abc123de</code> <span class="title">Fix &lt;b&gt;login&lt;/b&gt;</span>`,
		`<td class="stages"><span class="state success" title="build: success">build ✓</span> <span class="state failed" title="test: failed">test ✗</span> <span class="state skipped" title="release: skipped">release –</span> </td>`,
		`<table class="pipelines">`, `<script src="/assets/gantry.js?v=`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("list page lacks %s", want)
		}
	}
	for _, bad := range []string{"placeholder", `value="0"`, "data-live"} {
		if strings.Contains(page, bad) {
			t.Errorf("list page has %s", bad)
		}
	}
	listed[0].Jobs[3].State = orchestrator.StatePending
	if page := do(e, http.MethodGet, "/pipelines", "", "").Body.String(); !strings.Contains(page, `<table class="pipelines" data-live>`) {
		t.Error("list with a pipeline still running is not marked live")
	}
	listed[0].Approval = &orchestrator.Approval{Reason: "fork"}
	if page := do(e, http.MethodGet, "/pipelines", "", "").Body.String(); strings.Contains(page, `data-live`) {
		t.Error("list with a pipeline waiting for a person is marked live")
	}
}

// TestPipelinePageShowsCommit: the page names the commit's title and author, links the commit
// and the merge request in GitLab when it knows where they are, and says what started it.
func TestPipelinePageShowsCommit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*orchestrator.Pipeline)
		want []string
		bad  []string
	}{
		{"as the webhook said", func(p *orchestrator.Pipeline) {
			p.Trigger.Kind, p.Trigger.MergeRequestIID = orchestrator.TriggerMergeRequest, 7
			p.Trigger.MergeRequestURL = "https://gitlab.example.com/g/app/-/merge_requests/7"
			p.Trigger.Commit = orchestrator.Commit{Title: "Fix <login>", Author: "Ann O'Neil", URL: "https://gitlab.example.com/g/app/-/commit/abc123def4567890"}
		}, []string{
			`<a href="https://gitlab.example.com/g/app/-/merge_requests/7">merge request !7</a>`,
			`<dd class="trigger">merge request</dd>`,
			`<dd class="commit"><a href="https://gitlab.example.com/g/app/-/commit/abc123def4567890"><code title="abc123def4567890">abc123de</code></a> <span class="title">Fix &lt;login&gt;</span> <span class="author">by Ann O&#39;Neil</span></dd>`,
		}, nil},
		{"from the project's URL", func(p *orchestrator.Pipeline) {
			p.Trigger.ProjectURL, p.AttachedMergeRequestIID = "https://gitlab.example.com/g/app", 9
		}, []string{
			`<a href="https://gitlab.example.com/g/app/-/merge_requests/9">merge request !9</a>`,
			`<dd class="trigger">push</dd>`,
			`<dd class="commit"><a href="https://gitlab.example.com/g/app/-/commit/abc123def4567890"><code`,
		}, []string{`class="title"`, `class="author"`}},
		{"a fork's merge request", func(p *orchestrator.Pipeline) {
			p.Trigger.Kind, p.Trigger.Fork, p.Trigger.MergeRequestIID = orchestrator.TriggerMergeRequest, true, 3
			p.Trigger.ProjectURL = "https://gitlab.example.com/someone/app"
		}, []string{` · merge request !3 · from a fork</dd>`, `href="https://gitlab.example.com/someone/app/-/commit/abc123def4567890"`}, nil},
		{"nothing known", func(p *orchestrator.Pipeline) { p.Trigger.Kind = orchestrator.TriggerSchedule },
			[]string{`<dd class="trigger">schedule</dd>`, `<dd class="commit"><code title="abc123def4567890">abc123de</code></dd>`}, []string{"merge request"}},
		{"links that are no web pages", func(p *orchestrator.Pipeline) {
			p.Trigger.MergeRequestIID, p.Trigger.MergeRequestURL = 7, "javascript:alert(1)"
			p.Trigger.Commit.URL = "javascript:alert(2)"
		}, []string{`href="#ZgotmplZ"`}, []string{"javascript:"}},
	}
	for _, tt := range tests {
		p := finishedPipeline()
		tt.edit(p)
		page := do(newServer(newMemory(p), nil), http.MethodGet, "/pipelines/4", "", "").Body.String()
		for _, want := range tt.want {
			if !strings.Contains(page, want) {
				t.Errorf("%s: page lacks %s", tt.name, want)
			}
		}
		for _, bad := range tt.bad {
			if strings.Contains(page, bad) {
				t.Errorf("%s: page has %s", tt.name, bad)
			}
		}
	}
}

// TestPipelinePageShowsJobTimes: each job shows when it started and ended; a running one how
// long it has run so far, which the page's script counts on.
func TestPipelinePageShowsJobTimes(t *testing.T) {
	t.Parallel()
	m := newFixture()
	m.setJob(4, "test/lint", func(j *orchestrator.Job) {
		j.State, j.StartedAt, j.FinishedAt = orchestrator.StateRunning, t0.Add(10*time.Minute-65*time.Second), time.Time{}
	})
	page := do(newServer(m, nil), http.MethodGet, "/pipelines/4", "", "").Body.String()
	for _, want := range []string{
		`<span class="times"><time class="started" datetime="2026-11-26T10:00:05Z">10:00:05</time>–<time class="finished" datetime="2026-11-26T10:01:17Z">10:01:17</time></span>`,
		`<span class="times"><time class="started" datetime="2026-11-26T10:08:55Z">10:08:55</time>–</span>` + "\n" +
			`<span class="duration" data-elapsed="65">1m05s</span>`,
		`<span class="times"></span>` + "\n" + `<span class="duration"></span>`, // the release never ran
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}
