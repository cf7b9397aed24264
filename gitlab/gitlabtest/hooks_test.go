package gitlabtest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/google/go-cmp/cmp"
	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// hooksURL is the API URL of b's project hooks, followed by more path.
func (b *testBundle) hooksURL(more string) string {
	return fmt.Sprintf("%s/api/v4/projects/%d/hooks%s", b.srv.URL, b.proj.ID, more)
}

// send makes a JSON request as the double's token owner and returns the code and body.
func (b *testBundle) send(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	resp, got := raw(t, method, url, http.Header{"Private-Token": {b.srv.Token}, "Content-Type": {"application/json"}}, body)
	return resp.StatusCode, got
}

func TestHookDefaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, body := b.send(t, "POST", b.hooksURL(""), `{"url":"https://ci.example.com/hook","token":"s3cret"}`)
	if code != http.StatusCreated {
		t.Fatalf("POST hooks = %d %s, want 201", code, body)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["token"]; ok || strings.Contains(body, "s3cret") {
		t.Errorf("POST hooks answer shows the token: %s", body)
	}
	want := map[string]any{
		"push_events": true, "tag_push_events": false, "merge_requests_events": false, "issues_events": false,
		"confidential_issues_events": false, "note_events": false, "confidential_note_events": false,
		"job_events": false, "pipeline_events": false, "wiki_page_events": false, "deployment_events": false,
		"releases_events": false, "feature_flag_events": false, "emoji_events": false,
		"resource_access_token_events": false, "enable_ssl_verification": true,
		"alert_status": "executable", "disabled_until": nil, "branch_filter_strategy": "wildcard",
		"push_events_branch_filter": nil, "url": "https://ci.example.com/hook", "project_id": float64(b.proj.ID),
		"custom_headers": []any{}, "url_variables": []any{},
	}
	for k, v := range want {
		if !cmp.Equal(got[k], v) {
			t.Errorf("new hook %s = %v, want %v", k, got[k], v)
		}
	}
	if hooks := b.srv.Hooks(b.proj.ID); len(hooks) != 1 || hooks[0].Token != "s3cret" {
		t.Errorf("Hooks() = %+v, want one hook with token s3cret", hooks)
	}
}

func TestHookPagination(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 45 {
		b.srv.AddHook(b.proj.ID, gitlabtest.Hook{URL: fmt.Sprintf("https://other.example.com/%d", i)})
	}
	other := b.srv.AddProject("group/other", b.repo.Dir)
	b.srv.AddHook(other.ID, gitlabtest.Hook{URL: "https://other.example.com/elsewhere"})

	hooks, resp, err := b.gl.Projects.ListProjectHooks(b.proj.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(hooks) != 20 || resp.TotalItems != 45 || resp.TotalPages != 3 || resp.NextPage != 2 || resp.CurrentPage != 1 {
		t.Errorf("first page: %d hooks, total %d, pages %d, next %d, page %d; want 20, 45, 3, 2, 1",
			len(hooks), resp.TotalItems, resp.TotalPages, resp.NextPage, resp.CurrentPage)
	}
	link := resp.Header.Get("Link")
	for _, want := range []string{`page=2&per_page=20>; rel="next"`, `page=1&per_page=20>; rel="first"`, `page=3&per_page=20>; rel="last"`} {
		if !strings.Contains(link, want) {
			t.Errorf("Link = %s, want it to contain %s", link, want)
		}
	}
	last, resp, err := b.gl.Projects.ListProjectHooks(b.proj.ID, &gitlab.ListProjectHooksOptions{ListOptions: gitlab.ListOptions{Page: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 5 || resp.NextPage != 0 || strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
		t.Errorf("last page: %d hooks, next %d, Link %s; want 5 hooks and no next", len(last), resp.NextPage, resp.Header.Get("Link"))
	}
	all, err := gitlab.ScanAndCollect(func(p gitlab.PaginationOptionFunc) ([]*gitlab.ProjectHook, *gitlab.Response, error) {
		return b.gl.Projects.ListProjectHooks(b.proj.ID, nil, p)
	})
	if err != nil || len(all) != 45 || all[0].ID != 1 || all[44].ID != 45 {
		t.Errorf("all pages: %d hooks, %v; want the 45 hooks of the project in id order", len(all), err)
	}
}

// TestHookURLChange is WebHooks::Hook#reset_token and #reset_custom_headers (docs/gitlab.md §4).
func TestHookURLChange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body  string
		wantToken   string
		wantHeaders map[string]string
	}{
		{"same url, no token", `{"url":"https://a.example.com/hook","push_events":false}`, "old", map[string]string{"X-Old": "1"}},
		{"new url, no token", `{"url":"https://b.example.com/hook"}`, "", nil},
		{"new url, same token", `{"url":"https://b.example.com/hook","token":"old"}`, "old", nil},
		{"new url, new token", `{"url":"https://b.example.com/hook","token":"new"}`, "new", nil},
		{"new url, headers", `{"url":"https://b.example.com/hook","custom_headers":[{"key":"X-New","value":"2"}]}`, "", map[string]string{"X-New": "2"}},
		{"same url, new token", `{"url":"https://a.example.com/hook","token":"new"}`, "new", map[string]string{"X-Old": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			h := b.srv.AddHook(b.proj.ID, gitlabtest.Hook{URL: "https://a.example.com/hook", Token: "old", PushEvents: true,
				CustomHeaders: map[string]string{"X-Old": "1"}})
			if code, body := b.send(t, "PUT", b.hooksURL(fmt.Sprintf("/%d", h.ID)), tt.body); code != http.StatusOK {
				t.Fatalf("PUT %s = %d %s, want 200", tt.body, code, body)
			}
			got := b.srv.Hooks(b.proj.ID)[0]
			if got.Token != tt.wantToken || !cmp.Equal(got.CustomHeaders, tt.wantHeaders) {
				t.Errorf("after PUT %s: token %q, headers %v; want %q, %v", tt.body, got.Token, got.CustomHeaders, tt.wantToken, tt.wantHeaders)
			}
		})
	}
}

func TestHookErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := b.srv.AddHook(b.proj.ID, gitlabtest.Hook{URL: "https://a.example.com/hook", Token: "keep"})
	public := b.srv.AddProject("group/public", b.repo.Dir)
	b.srv.MakePublic(public.ID)
	other := b.srv.AddProject("group/other", b.repo.Dir)
	one := b.hooksURL(fmt.Sprintf("/%d", h.ID))
	tests := []struct {
		name, method, url, body string
		want                    int
		wantBody                string
	}{
		{"no url", "POST", b.hooksURL(""), `{"push_events":true}`, 400, `{"error":"url is missing"}`},
		{"ftp url", "POST", b.hooksURL(""), `{"url":"ftp://ci.example.com/hook"}`, 422, `{"error":"Invalid url given"}`},
		{"no scheme", "POST", b.hooksURL(""), `{"url":"ci.example.com/hook"}`, 422, `{"error":"Invalid url given"}`},
		{"not a boolean", "POST", b.hooksURL(""), `{"url":"https://x.example.com","push_events":"maybe"}`, 400, `{"error":"push_events is invalid"}`},
		{"bad strategy", "POST", b.hooksURL(""), `{"url":"https://x.example.com","branch_filter_strategy":"glob"}`, 400,
			`{"error":"branch_filter_strategy does not have a valid value"}`},
		{"put without url", "PUT", one, `{"token":"new"}`, 400, `{"error":"url is missing"}`},
		{"put bad url", "PUT", one, `{"url":"javascript:alert(1)"}`, 422, `{"error":"Invalid url given"}`},
		{"unknown hook", "GET", b.hooksURL("/999"), "", 404, `{"message":"404 Not found"}`},
		{"put unknown hook", "PUT", b.hooksURL("/999"), `{"url":"https://x.example.com"}`, 404, `{"message":"404 Not found"}`},
		{"hook of another project", "GET", fmt.Sprintf("%s/api/v4/projects/%d/hooks/%d", b.srv.URL, other.ID, h.ID), "", 404, `{"message":"404 Not found"}`},
		{"bad hook id", "GET", b.hooksURL("/abc"), "", 400, `{"error":"hook_id is invalid"}`},
		{"unknown project", "GET", b.srv.URL + "/api/v4/projects/999/hooks", "", 404, `{"message":"404 Project Not Found"}`},
		{"patch", "PATCH", one, `{"url":"https://x.example.com"}`, 405, ""},
	}
	for _, tt := range tests {
		if code, body := b.send(t, tt.method, tt.url, tt.body); code != tt.want || tt.wantBody != "" && body != tt.wantBody {
			t.Errorf("%s: %s %s = %d %s, want %d %s", tt.name, tt.method, tt.body, code, body, tt.want, tt.wantBody)
		}
	}
	if hooks := b.srv.Hooks(b.proj.ID); len(hooks) != 1 || hooks[0].URL != "https://a.example.com/hook" || hooks[0].Token != "keep" {
		t.Errorf("after refused calls Hooks() = %+v, want the one hook unchanged", hooks)
	}
	// The hooks API needs a user even where the project is public.
	anon, body := raw(t, "GET", fmt.Sprintf("%s/api/v4/projects/%d/hooks", b.srv.URL, public.ID), http.Header{}, "")
	if anon.StatusCode != http.StatusUnauthorized || body != `{"message":"401 Unauthorized"}` {
		t.Errorf("anonymous GET hooks of a public project = %d %s, want 401", anon.StatusCode, body)
	}
	for _, want := range []int{http.StatusNoContent, http.StatusNotFound} {
		if code, body := b.send(t, "DELETE", one, ""); code != want {
			t.Errorf("DELETE hook = %d %s, want %d", code, body, want)
		}
	}
}

func TestHookAlert(t *testing.T) {
	t.Parallel()
	b := setup(t)
	soon := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	past := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	tests := []struct {
		status    string
		until     *time.Time
		want      string
		wantUntil *time.Time
	}{
		{"temporarily_disabled", &soon, "temporarily_disabled", &soon},
		{"temporarily_disabled", &past, "executable", &past}, // the backoff is over
		{"disabled", nil, "disabled", nil},
		{"executable", nil, "executable", nil},
	}
	for _, tt := range tests {
		h := b.srv.AddHook(b.proj.ID, gitlabtest.Hook{URL: "https://a.example.com/hook"})
		b.srv.SetHookAlert(b.proj.ID, h.ID, tt.status, tt.until)
		got, _, err := b.gl.Projects.GetProjectHook(b.proj.ID, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.AlertStatus != tt.want || !cmp.Equal(got.DisabledUntil, tt.wantUntil) {
			t.Errorf("SetHookAlert(%s, %v): hook reads %s until %v, want %s until %v",
				tt.status, tt.until, got.AlertStatus, got.DisabledUntil, tt.want, tt.wantUntil)
		}
	}
}
