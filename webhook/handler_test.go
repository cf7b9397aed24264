package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeAcceptor records triggers; AcceptFunc decides the answer.
type fakeAcceptor struct {
	AcceptFunc func(orchestrator.Trigger) (orchestrator.Accepted, error)
	got        []orchestrator.Trigger
}

func (f *fakeAcceptor) Accept(_ context.Context, t orchestrator.Trigger) (orchestrator.Accepted, error) {
	f.got = append(f.got, t)
	if f.AcceptFunc != nil {
		return f.AcceptFunc(t)
	}
	return orchestrator.Accepted{Pipeline: &orchestrator.Pipeline{ID: int64(len(f.got))}}, nil
}

// fixtureProjects are the projects of client-go's payload fixtures, all configured here with
// the same secret so every fixture reaches conversion.
var fixtureProjects = []string{"mike/diaspora", "jsmith/example", "gitlabhq/gitlab-test", "gitlab-org/gitlab-test",
	"awesome_space/awesome_project", "group1/project1", "twitter/flight", "root/example"}

func newHandler(acc Acceptor) *echo.Echo {
	e, _ := newCountingHandler(acc)
	return e
}

// newCountingHandler is newHandler with the handler's own metrics, to read what it counted.
func newCountingHandler(acc Acceptor) (*echo.Echo, *metrics) {
	secrets := map[string]string{}
	for _, p := range fixtureProjects {
		secrets[p] = "tok"
	}
	e := echo.New()
	h := New(acc, secrets, nil)
	h.Register(e)
	return e, h.metrics
}

func post(e *echo.Echo, event, token string, body []byte, headers ...string) (int, map[string]any) {
	req := httptest.NewRequest(http.MethodPost, "/webhooks/gitlab", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if event != "" {
		req.Header.Set("X-Gitlab-Event", event)
	}
	if token != "" {
		req.Header.Set("X-Gitlab-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	var out map[string]any
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

// eventHeader is the X-Gitlab-Event GitLab sends with each fixture (docs/gitlab.md §1.2).
func eventHeader(dir, file string) string {
	if dir == "systemhooks" {
		return "System Hook"
	}
	name := strings.TrimSuffix(file, ".json")
	for prefix, header := range map[string]string{
		"build": "Build Hook", "deployment": "Deployment Hook", "emoji": "Emoji Hook", "feature_flag": "Feature Flag Hook",
		"group_merge_request": "Merge Request Hook", "issue": "Issue Hook", "job": "Job Hook", "member": "Member Hook",
		"merge_request": "Merge Request Hook", "milestone": "Milestone Hook", "note": "Note Hook", "pipeline": "Pipeline Hook",
		"project": "Project Hook", "push": "Push Hook", "release": "Release Hook", "resource_access_token": "Resource Access Token Hook",
		"service_merge_request": "Service Hook", "subgroup": "Subgroup Hook", "tag_push": "Tag Push Hook",
		"vulnerability": "Vulnerability Hook", "wiki_page": "Wiki Page Hook",
	} {
		if strings.HasPrefix(name, prefix) {
			return header
		}
	}
	return "Unknown Hook"
}

// TestEveryRealPayload posts every payload fixture of the GitLab client with its header: each
// gets a pipeline or a 200 ignored, never a 4xx or 5xx that would get the hook disabled.
func TestEveryRealPayload(t *testing.T) {
	t.Parallel()
	seen := 0
	eachFixture(t, func(dir, file string, body []byte) {
		seen++
		acc := &fakeAcceptor{}
		code, ans := post(newHandler(acc), eventHeader(dir, file), "tok", body)
		if code != http.StatusAccepted && code != http.StatusOK {
			t.Errorf("%s/%s answered %d %v, want 200 or 202", dir, file, code, ans)
		}
		if code == http.StatusAccepted && len(acc.got) != 1 {
			t.Errorf("%s/%s answered 202 with %d triggers accepted", dir, file, len(acc.got))
		}
	})
	if seen < 30 {
		t.Errorf("saw %d fixtures, expected client-go's whole testdata", seen)
	}
}

func TestAnswers(t *testing.T) {
	t.Parallel()
	push := string(fixture(t, "webhooks/push.json"))
	tests := []struct {
		name, event, token, body string
		acceptErr                error
		dup                      bool
		code                     int
		want                     string
		// counted is the answer label of gantry_webhook_deliveries_total.
		counted string
	}{
		{name: "push", event: "Push Hook", token: "tok", body: push, code: 202, want: "pipeline_id", counted: "accepted"},
		{name: "wrong token", event: "Push Hook", token: "nope", body: push, code: 401, want: "unauthorized", counted: "unauthorized"},
		{name: "no token", event: "Push Hook", body: push, code: 401, want: "unauthorized", counted: "unauthorized"},
		{name: "no event header", token: "tok", body: push, code: 400, want: "not a GitLab event", counted: "invalid"},
		{name: "broken JSON", event: "Push Hook", token: "tok", body: "{", code: 400, want: "not a GitLab event", counted: "invalid"},
		{name: "unknown event type", event: "Frobnicate Hook", token: "tok", body: push, code: 200, want: "ignored", counted: "ignored"},
		{name: "unknown project", event: "Push Hook", token: "tok", body: strings.Replace(push, "mike/diaspora", "nobody/else", -1), code: 200, want: "not configured", counted: "ignored"},
		{name: "store down", event: "Push Hook", token: "tok", body: push, acceptErr: errors.New("dial tcp: connection refused"), code: 503, want: "not stored", counted: "not_stored"},
		{name: "too few replicas", event: "Push Hook", token: "tok", body: push, acceptErr: fmt.Errorf("accept: %w", orchestrator.ErrNotReplicated), code: 503, want: "redis.min_replicas", counted: "not_replicated"},
		{name: "duplicate", event: "Push Hook", token: "tok", body: push, dup: true, code: 200, want: "duplicate", counted: "duplicate"},
		{name: "system hook", event: "System Hook", token: "tok", body: push, code: 200, want: "system hooks", counted: "ignored"},
		// An instance's system hook carries the instance's token, not a project's: refused
		// like any token that matches no configured secret, before its body is read.
		{name: "system hook without a project's token", event: "System Hook", token: "instance", body: push, code: 401, want: "unauthorized", counted: "unauthorized"},
	}
	for _, tt := range tests {
		acc := &fakeAcceptor{AcceptFunc: func(orchestrator.Trigger) (orchestrator.Accepted, error) {
			return orchestrator.Accepted{Pipeline: &orchestrator.Pipeline{ID: 7}, Duplicate: tt.dup}, tt.acceptErr
		}}
		e, m := newCountingHandler(acc)
		code, ans := post(e, tt.event, tt.token, []byte(tt.body))
		if got := testutil.ToFloat64(m.deliveries.WithLabelValues(tt.counted)); got != 1 {
			t.Errorf("%s: counted %v deliveries answered %q, want 1", tt.name, got, tt.counted)
		}
		if n := countedDeliveries(m); n != 1 {
			t.Errorf("%s: counted %v deliveries in all, want 1", tt.name, n)
		}
		b, _ := json.Marshal(ans)
		if code != tt.code || !strings.Contains(string(b), tt.want) {
			t.Errorf("%s: answered %d %s, want %d with %q", tt.name, code, b, tt.code, tt.want)
		}
		if tt.dup && ans["pipeline_id"] != float64(7) {
			t.Errorf("%s: duplicate answer %s does not name the pipeline", tt.name, b)
		}
	}
}

// countedDeliveries sums gantry_webhook_deliveries_total over every answer.
func countedDeliveries(m *metrics) float64 {
	var n float64
	for _, answer := range []string{"accepted", "duplicate", "ignored", "unauthorized", "invalid", "too_deep", "too_large", "project_mismatch", "overloaded", "not_stored", "not_replicated"} {
		n += testutil.ToFloat64(m.deliveries.WithLabelValues(answer))
	}
	return n
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	h := New(&fakeAcceptor{}, map[string]string{"g/app": "tok"}, nil)
	h.maxBody = 1 << 10
	e := echo.New()
	h.Register(e)
	code, _ := post(e, "Push Hook", "tok", bytes.Repeat([]byte(" "), 2<<10))
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body answered %d, want 413", code)
	}
	if n := testutil.ToFloat64(h.metrics.deliveries.WithLabelValues("too_large")); n != 1 {
		t.Errorf("oversized body counted %v times as too_large, want 1", n)
	}
	// Without a Content-Length (chunked), the limit holds all the same.
	req := httptest.NewRequest(http.MethodPost, "/webhooks/gitlab", io.MultiReader(bytes.NewReader(bytes.Repeat([]byte(" "), 2<<10))))
	req.Header.Set("X-Gitlab-Event", "Push Hook")
	req.Header.Set("X-Gitlab-Token", "tok")
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized chunked body answered %d, want 413", rec.Code)
	}
	// A payload of exactly the limit is read whole.
	deleted := []byte(`{"object_kind":"push","ref":"refs/heads/gone","after":"0000000000000000000000000000000000000000","project":{"path_with_namespace":"g/app"}}`)
	body := append(deleted, bytes.Repeat([]byte(" "), 1<<10-len(deleted))...)
	if code, ans := post(e, "Push Hook", "tok", body); code != http.StatusOK || ans["ignored"] != "branch gone deleted" {
		t.Errorf("body of exactly the limit answered %d %v, want 200 ignored", code, ans)
	}
}

// TestDefaultBodyLimit pins the default limit to GitLab's own, 25 MiB (docs/gitlab.md §1.3):
// a body of exactly 25 MiB is read and converted, one byte more is refused 413, whether the
// request announces its length or is chunked. A lower default would refuse real pushes GitLab
// sends; a higher one would let a sender make the intake hold more memory than GitLab ever needs.
func TestDefaultBodyLimit(t *testing.T) {
	t.Parallel()
	e := newHandler(&fakeAcceptor{})
	deleted := []byte(`{"object_kind":"push","ref":"refs/heads/gone","after":"0000000000000000000000000000000000000000","project":{"path_with_namespace":"mike/diaspora"}}`)
	const gitlabLimit = 25 << 20 // written out: a test of DefaultMaxBody against itself would pin nothing
	atLimit := append(deleted, bytes.Repeat([]byte(" "), gitlabLimit-len(deleted))...)
	tests := []struct {
		name    string
		body    []byte
		chunked bool
		code    int
	}{
		{"25 MiB", atLimit, false, http.StatusOK},
		{"25 MiB, chunked", atLimit, true, http.StatusOK},
		{"25 MiB and a byte", append(atLimit, ' '), false, http.StatusRequestEntityTooLarge},
		{"25 MiB and a byte, chunked", append(atLimit, ' '), true, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/gitlab", bytes.NewReader(tt.body))
		req.Header.Set("X-Gitlab-Event", "Push Hook")
		req.Header.Set("X-Gitlab-Token", "tok")
		if tt.chunked {
			req.ContentLength = -1
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != tt.code {
			t.Errorf("%s (%d bytes): answered %d %s, want %d", tt.name, len(tt.body), rec.Code, rec.Body, tt.code)
		}
	}
}

// TestSkipRules covers GitLab's skip conventions and the deferred check.
func TestSkipRules(t *testing.T) {
	t.Parallel()
	head := "1111111111111111111111111111111111111111"
	pushWith := func(message string, commitID string, options string) string {
		return `{"object_kind":"push","ref":"refs/heads/dev","before":"` + zeroSHA + `","after":"` + head + `","checkout_sha":"` + head + `",
			"project_id":1,"project":{"path_with_namespace":"g/app"},"push_options":` + options + `,
			"commits":[{"id":"` + commitID + `","message":` + jsonString(message) + `}]}`
	}
	tests := []struct {
		name, body string
		ignored    string
		checkSkip  bool
	}{
		{"plain", pushWith("fix it", head, "{}"), "", false},
		{"[skip ci]", pushWith("fix it [skip ci]", head, "{}"), "[skip ci]", false},
		{"[CI SKIP] any case", pushWith("docs\n\n[CI SKIP]", head, "{}"), "[skip ci]", false},
		{"[skip-ci] dash", pushWith("x [skip-ci]", head, "{}"), "[skip ci]", false},
		{"[ci_skip] underscore", pushWith("x [ci_skip]", head, "{}"), "[skip ci]", false},
		{"skip ci without brackets", pushWith("skip ci please", head, "{}"), "", false},
		{"push option ci.skip", pushWith("fix", head, `{"ci":{"skip":true}}`), "ci.skip", false},
		// `git push -o ci.skip` reaches the payload as an empty string, the form GitLab sends.
		{"push option ci.skip, empty string", pushWith("fix", head, `{"ci":{"skip":""}}`), "ci.skip", false},
		{"push option ci.skip=TRUE", pushWith("fix", head, `{"ci":{"skip":"TRUE"}}`), "ci.skip", false},
		{"push option ci.skip=false", pushWith("fix", head, `{"ci":{"skip":false}}`), "", false},
		{"push option ci.skip=\"false\"", pushWith("fix", head, `{"ci":{"skip":"false"}}`), "", false},
		{"push option ci.skip=yes", pushWith("fix", head, `{"ci":{"skip":"yes"}}`), "", false},
		{"head commit not in payload", pushWith("[skip ci] on an older commit", "2222222222222222222222222222222222222222", "{}"), "", true},
	}
	for _, tt := range tests {
		ev, err := convert("Push Hook", []byte(tt.body))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if (tt.ignored == "") != (ev.Ignored == "") || !strings.Contains(ev.Ignored, tt.ignored) || ev.Trigger.CheckSkip != tt.checkSkip {
			t.Errorf("%s: convert = ignored %q check %v, want ignored %q check %v", tt.name, ev.Ignored, ev.Trigger.CheckSkip, tt.ignored, tt.checkSkip)
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
