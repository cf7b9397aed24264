package gitlabtest_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// testBundle is a double serving one project, group/app, whose repository has one commit.
type testBundle struct {
	srv  *gitlabtest.Server
	repo *gitlabtest.Repo
	proj gitlabtest.Project
	gl   *gitlab.Client // client-go without its own retries, so every answer is seen as given
	sha  string
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	srv := gitlabtest.New(t)
	repo := gitlabtest.NewRepo(t)
	sha := repo.Commit("Add the app\n\nWith a readme.", map[string]string{
		"README.md":  "hello\n",
		"src/app.py": "print('hi')\n",
	})
	return &testBundle{srv: srv, repo: repo, proj: srv.AddProject("group/app", repo.Dir), gl: client(t, srv, srv.Token), sha: sha}
}

func client(t *testing.T, srv *gitlabtest.Server, token string) *gitlab.Client {
	t.Helper()
	gl, err := gitlab.NewClient(token, gitlab.WithBaseURL(srv.URL), gitlab.WithoutRetries())
	if err != nil {
		t.Fatal(err)
	}
	return gl
}

// raw sends a request without client-go, for what the client cannot send or hides (404 bodies).
func raw(t *testing.T, method, url string, header http.Header, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, strings.TrimSpace(string(data))
}

// apiError is the code and exact body of a client-go error answer.
func apiError(t *testing.T, err error) (int, string) {
	t.Helper()
	var er *gitlab.ErrorResponse
	if !errors.As(err, &er) {
		t.Fatalf("error %v is not an API error answer", err)
	}
	return er.Response.StatusCode, strings.TrimSpace(string(er.Body))
}

func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	public := b.srv.AddProject("group/public", b.repo.Dir)
	b.srv.MakePublic(public.ID)
	commit := func(p gitlabtest.Project) string {
		return fmt.Sprintf("%s/api/v4/projects/%d/repository/commits/%s", b.srv.URL, p.ID, b.sha)
	}
	status := fmt.Sprintf("%s/api/v4/projects/%d/statuses/%s?state=pending&ref=main", b.srv.URL, public.ID, b.sha)
	tests := []struct {
		name, method, url string
		header            http.Header
		want              int
		body              string
	}{
		{"none", "GET", commit(b.proj), http.Header{}, 404, `{"message":"404 Project Not Found"}`},
		{"wrong token", "GET", commit(b.proj), http.Header{"Private-Token": {"glpat-wrong"}}, 401, `{"message":"401 Unauthorized"}`},
		{"private token", "GET", commit(b.proj), http.Header{"Private-Token": {b.srv.Token}}, 200, ""},
		// A header name as curl or another client might spell it.
		{"lower case", "GET", commit(b.proj), http.Header{"private-token": {b.srv.Token}}, 200, ""},
		{"bearer", "GET", commit(b.proj), http.Header{"Authorization": {"Bearer " + b.srv.Token}}, 200, ""},
		{"bearer wrong", "GET", commit(b.proj), http.Header{"Authorization": {"Bearer glpat-wrong"}}, 401, `{"message":"401 Unauthorized"}`},
		{"basic", "GET", commit(b.proj), http.Header{"Authorization": {"Basic " + b.srv.Token}}, 404, `{"message":"404 Project Not Found"}`},
		{"public, none", "GET", commit(public), http.Header{}, 200, ""},
		{"public, wrong token", "GET", commit(public), http.Header{"Private-Token": {"glpat-wrong"}}, 401, `{"message":"401 Unauthorized"}`},
		{"post to public, none", "POST", status, http.Header{}, 401, `{"message":"401 Unauthorized"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := raw(t, tt.method, tt.url, tt.header, "")
			if resp.StatusCode != tt.want || tt.body != "" && body != tt.body {
				t.Errorf("%s with %v = %d %s, want %d %s", tt.method, tt.header, resp.StatusCode, body, tt.want, tt.body)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	hdr := http.Header{"Private-Token": {b.srv.Token}}
	tests := []struct{ name, method, path, body, want string }{
		{"unknown project id", "GET", "/projects/999/repository/commits/" + b.sha, "", `{"message":"404 Project Not Found"}`},
		{"unknown project path", "GET", "/projects/group%2Fother/repository/archive.tar.gz", "", `{"message":"404 Project Not Found"}`},
		{"unknown commit", "GET", "/projects/group%2Fapp/repository/commits/" + strings.Repeat("0", 40), "", `{"message":"404 Commit Not Found"}`},
		{"unknown archive sha", "GET", "/projects/1001/repository/archive.tar.gz?sha=nope", "", `{"message":"404 File Not Found"}`},
		{"archive format", "GET", "/projects/1001/repository/archive.rar", "", `{"message":"404 File Not Found"}`},
		{"status of unknown commit", "POST", "/projects/1001/statuses/" + strings.Repeat("a", 40), "state=pending&ref=main", `{"message":"404 Commit Not Found"}`},
		{"list of unknown commit", "GET", "/projects/1001/repository/commits/nope/statuses", "", `{"message":"404 Commit Not Found"}`},
		{"unknown route", "GET", "/projects/1001/issues", "", `{"error":"404 Not Found"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hdr.Clone()
			h.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, body := raw(t, tt.method, b.srv.URL+"/api/v4"+tt.path, h, tt.body)
			if resp.StatusCode != http.StatusNotFound || body != tt.want {
				t.Errorf("%s %s = %d %s, want 404 %s", tt.method, tt.path, resp.StatusCode, body, tt.want)
			}
		})
	}
	// client-go turns every 404 into its sentinel, discarding the body (docs/gitlab.md §7).
	_, _, err := b.gl.Commits.GetCommit("group/other", b.sha, nil)
	if !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("GetCommit(unknown project) error = %v, want gitlab.ErrNotFound", err)
	}
}

func TestFailNext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	hdr := http.Header{"Private-Token": {b.srv.Token}}
	url := b.srv.URL + "/api/v4/projects/1001/repository/commits/" + b.sha

	b.srv.FailNext(1, http.StatusTooManyRequests)
	b.srv.FailNext(1, http.StatusInternalServerError)
	b.srv.FailNext(1, http.StatusBadGateway)
	resp, body := raw(t, http.MethodGet, url, hdr, "")
	if resp.StatusCode != 429 || body != "Retry later" || resp.Header.Get("Retry-After") != "1" ||
		resp.Header.Get("RateLimit-Reset") == "" || resp.Header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("first call = %d %q %v, want GitLab's 429", resp.StatusCode, body, resp.Header)
	}
	if resp, body = raw(t, http.MethodGet, url, hdr, ""); resp.StatusCode != 500 || body != `{"message":"500 Internal Server Error"}` {
		t.Errorf("second call = %d %s, want 500", resp.StatusCode, body)
	}
	if resp, body = raw(t, http.MethodGet, url, hdr, ""); resp.StatusCode != 502 || !strings.Contains(body, "502 Bad Gateway") {
		t.Errorf("third call = %d %s, want 502", resp.StatusCode, body)
	}
	resp, _ = raw(t, http.MethodGet, url, hdr, "")
	if resp.StatusCode != 200 || resp.Header.Get("RateLimit-Limit") != "" {
		t.Errorf("fourth call = %d with RateLimit-Limit %q, want 200 without the header",
			resp.StatusCode, resp.Header.Get("RateLimit-Limit"))
	}
	var injected []int
	for _, c := range b.srv.Calls() {
		if c.Injected {
			injected = append(injected, c.Status)
		}
	}
	if len(injected) != 3 || len(b.srv.Rejected()) != 0 {
		t.Errorf("injected answers %v, rejected %v; want 3 injected and none rejected", injected, b.srv.Rejected())
	}
}

func TestRecord(t *testing.T) {
	t.Parallel()
	b := setup(t)
	start := time.Now()
	_, _, err := b.gl.Commits.SetCommitStatus("group/app", b.sha, &gitlab.SetCommitStatusOptions{
		State: gitlab.Running, Ref: gitlab.Ptr("main"), Name: gitlab.Ptr("gantry/build"), PipelineID: gitlab.Ptr(int64(501)),
	})
	if !errors.Is(err, gitlab.ErrNotFound) {
		t.Fatalf("post pinned to a pipeline that does not exist: error = %v, want gitlab.ErrNotFound", err)
	}
	if _, _, err := b.gl.Commits.SetCommitStatus(b.proj.ID, b.sha, &gitlab.SetCommitStatusOptions{
		State: gitlab.Running, Ref: gitlab.Ptr("main"), Name: gitlab.Ptr("gantry/build"),
	}); err != nil {
		t.Fatal(err)
	}
	calls := b.srv.Calls()
	if len(calls) != 2 {
		t.Fatalf("Calls() = %d calls, want 2", len(calls))
	}
	c := calls[0]
	if c.Method != "POST" || c.Path != "/api/v4/projects/group%2Fapp/statuses/"+b.sha || c.ProjectID != b.proj.ID ||
		c.User != "gantry-bot" || c.Status != 404 || c.Body["state"] != "running" || c.Body["pipeline_id"] != "501" ||
		c.Time.Before(start) {
		t.Errorf("Calls()[0] = %+v, want the pinned POST by path answered 404", c)
	}
	if c := calls[1]; c.Path != "/api/v4/projects/1001/statuses/"+b.sha || c.Status != 201 || c.Body["name"] != "gantry/build" {
		t.Errorf("Calls()[1] = %+v, want the POST by id answered 201", c)
	}
	// The answers are kept, so a test can tell which pipeline GitLab named for which call.
	if want := `{"message":"404 Pipeline for pipeline_id, sha and ref Not Found"}` + "\n"; calls[0].Answer != want {
		t.Errorf("Calls()[0].Answer = %q, want %q", calls[0].Answer, want)
	}
	if !strings.Contains(calls[1].Answer, `"pipeline_id":501`) {
		t.Errorf("Calls()[1].Answer = %q, want the status of pipeline 501", calls[1].Answer)
	}
	if got, want := b.srv.Pipelines(), []gitlabtest.Pipeline{{ID: 501, ProjectID: b.proj.ID, SHA: b.sha, Ref: "main"}}; !slices.Equal(got, want) {
		t.Errorf("Pipelines() = %+v, want %+v", got, want)
	}
	if r := b.srv.Rejected(); len(r) != 1 || r[0].Status != 404 {
		t.Errorf("Rejected() = %+v, want the 404", r)
	}
}
