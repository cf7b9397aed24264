package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// TestServeSignsInWithGitLab: with api.oauth (its secret from a file) and a private project, a
// browser opening the pages is sent to the GitLab double's authorize with PKCE and scope read_api
// and comes back signed in. A Reporter's Retry is refused; a Developer's Retry button runs the
// failed test again through the real engine. Nothing gantry logs holds a user's token.
func TestServeSignsInWithGitLab(t *testing.T) {
	busybox := testenv.Need(t, "GANTRY_TEST_BUSYBOX_IMAGE")
	gl := gitlabtest.New(t)
	repo := gitlabtest.NewRepo(t)
	sha := repo.Commit("a failing check", map[string]string{
		"Dockerfile": "FROM " + busybox + "\nCOPY . /app\n",
		"check.sh":   "#!/bin/sh\necho failing on purpose\nexit 1\n",
	})
	proj := gl.AddProject("group/private", repo.Dir)
	gl.MakePrivate(proj.ID)
	gl.AddMember(proj.ID, "ann", 30)
	gl.AddMember(proj.ID, "rita", 20)
	image := "gantry-e2e/private-" + randomName()
	t.Cleanup(func() { removeImages(t, image) })

	addr := testenv.FreeAddr(t)
	public := "http://" + addr
	gl.AddOAuthApp("gantry-app", "gloas-app-secret-0123", public+"/signin/callback")
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "oauth-secret"), []byte("gloas-app-secret-0123\n"), 0o600))
	cfg := fmt.Sprintf(`
server: {listen: %q, public_url: %q}
gitlab: {url: %q, token: %q}
api:
  public_pages: false
  tokens: [%s]
  oauth:
    application_id: gantry-app
    secret_file: oauth-secret
    cookie_secret: 3b8e1f6a0c9d2e7b5a4f1c8e0d3b6a9f
projects:
  - path: group/private
    webhook_secret: %s
    image: %s
    tests:
      - {name: check, command: ["sh", "/app/check.sh"], timeout: 30s}
    release: {branches: [master]}
`, addr, public, gl.URL, gl.Token, testAPIToken, testHookSecret, image)
	path := filepath.Join(dir, "gantry.yaml")
	must(t, os.WriteFile(path, []byte(cfg), 0o600))
	g := &gantryProc{url: public, apiToken: testAPIToken, secret: testHookSecret, gitlab: gl, project: proj}
	g.logs = runServe(t, public, []string{"serve", "--config", path}, nil)

	code, ans, _ := g.hook(t, "Push Hook", g.secret, g.pushPayload("feature", zero, sha, "a failing check"))
	if code != http.StatusAccepted {
		t.Fatalf("push answered %d %v, want 202", code, ans)
	}
	id := int64(ans["pipeline_id"].(float64))
	if p := g.waitFinished(t, id, 2*time.Minute); p.State != "failed" {
		t.Fatalf("pipeline %d ended %s, want failed", id, p.State)
	}
	pageURL := fmt.Sprintf("%s/pipelines/%d", public, id)

	// rita (Reporter) reads the page, without buttons; a post of her own form token is refused.
	rita, authorize, page := signInE2E(t, gl, "rita", pageURL)
	q := authorize.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("scope") != "read_api" ||
		q.Get("client_id") != "gantry-app" || q.Get("redirect_uri") != public+"/signin/callback" {
		t.Errorf("gantry sent the browser to GitLab with %v", q)
	}
	if strings.Contains(page, "/retry") {
		t.Error("a Reporter's page offers Retry")
	}
	if code := postForm(t, rita, pageURL+"/retry", csrfToken(t, page), public); code != http.StatusForbidden {
		t.Errorf("rita's retry = %d, want 403", code)
	}
	if st, _ := g.pipeline(t, id).job("test/check"); st != "failed" {
		t.Fatalf("after rita's refused retry test/check is %s", st)
	}

	ann, _, page := signInE2E(t, gl, "ann", pageURL)
	if !strings.Contains(page, fmt.Sprintf(`action="/pipelines/%d/retry"`, id)) {
		t.Fatalf("ann's page (Developer) has no Retry button:\n%s", page)
	}
	if code := postForm(t, ann, pageURL+"/retry", csrfToken(t, page), public); code != http.StatusSeeOther {
		t.Fatalf("ann's retry = %d, want 303 back to the page", code)
	}
	// The real engine took it: test/check runs a second attempt (and fails again).
	deadline := time.Now().Add(time.Minute)
	for attempt := 0; attempt < 2; {
		p := g.pipeline(t, id)
		for _, j := range p.Jobs {
			if j.Name == "test/check" {
				attempt = j.Attempt
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("test/check never started a second attempt: %+v", p.Jobs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(g.logs.String(), "gloas-") {
		t.Errorf("gantry's log holds a GitLab token or the application's secret:\n%s", g.logs.String())
	}
}

// signInE2E signs a new browser in as user and opens page; it returns the client, the authorize
// URL gantry sent it to, and the page.
func signInE2E(t *testing.T, gl *gitlabtest.Server, user, page string) (*http.Client, *url.URL, string) {
	t.Helper()
	gl.SignInAs(user)
	jar, _ := cookiejar.New(nil)
	var authorize *url.URL
	client := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Path == "/oauth/authorize" {
			authorize = req.URL
		}
		return nil
	}}
	req, _ := http.NewRequest(http.MethodGet, page, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := client.Do(req)
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != page || !strings.Contains(string(body), "signed in as <b>"+user+"</b>") {
		t.Fatalf("signing in as %s ended at %s with %d:\n%s", user, resp.Request.URL, resp.StatusCode, body)
	}
	if authorize == nil {
		t.Fatal("the browser never went to GitLab's authorize")
	}
	return client, authorize, string(body)
}

// csrfToken is the form token of a page.
func csrfToken(t *testing.T, page string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `name="csrf" value="`)
	if !ok {
		t.Fatalf("the page has no form token:\n%s", page)
	}
	token, _, _ := strings.Cut(rest, `"`)
	return token
}

// postForm posts a page's form as the browser does from gantry's own page, without following
// the answer's redirect.
func postForm(t *testing.T, c *http.Client, u, token, origin string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(url.Values{"csrf": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Origin", origin)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	noFollow := *c
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noFollow.Do(req)
	must(t, err)
	resp.Body.Close()
	return resp.StatusCode
}
