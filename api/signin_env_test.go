package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
)

// doubleAccounts is orchestrator.Accounts over HTTP, as gitlab.Accounts asks it (api's tests may
// not import gitlab, docs/style.md): GET /user, GET /projects/:id (404: not readable) and
// members/all/:user_id, with the user's token.
type doubleAccounts struct{ base string }

func (d doubleAccounts) get(ctx context.Context, token, path string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/api/v4/"+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return 200, json.NewDecoder(resp.Body).Decode(v)
	case http.StatusUnauthorized:
		return 401, fmt.Errorf("GET %s: %w", path, orchestrator.ErrTokenRejected)
	case http.StatusNotFound:
		return 404, nil
	}
	return resp.StatusCode, fmt.Errorf("GET %s: %s", path, resp.Status)
}

func (d doubleAccounts) CurrentUser(ctx context.Context, token string) (orchestrator.User, error) {
	var u struct {
		ID             int64
		Username, Name string
	}
	code, err := d.get(ctx, token, "user", &u)
	if err == nil && code != 200 {
		err = fmt.Errorf("GET user: %d", code)
	}
	return orchestrator.User{ID: u.ID, Username: u.Username, Name: u.Name}, err
}

func (d doubleAccounts) ProjectAccess(ctx context.Context, token string, userID int64, path string) (orchestrator.Access, error) {
	var p struct{ ID int64 }
	code, err := d.get(ctx, token, "projects/"+url.PathEscape(path), &p)
	if err != nil || code == 404 {
		return orchestrator.Access{}, err
	}
	var m struct {
		AccessLevel int `json:"access_level"`
	}
	code, err = d.get(ctx, token, fmt.Sprintf("projects/%d/members/all/%d", p.ID, userID), &m)
	if err != nil {
		return orchestrator.Access{}, err
	}
	return orchestrator.Access{Read: true, Level: m.AccessLevel}, nil
}

// Access levels (docs/gitlab.md §8).
const (
	reporter  = 20
	developer = 30
)

// signinEnv is gantry's pages with sign-in, in front of the GitLab double: private projects
// g/app (pipeline 4, failed) and g/other (pipeline 5, failed; pipeline 6, running), and users
// dev (Developer of g/app), rita (Reporter of g/app) and olaf (Developer of g/other only).
type signinEnv struct {
	gl      *gitlabtest.Server
	srv     *httptest.Server
	m       *memory
	engine  *fakeEngine
	clock   atomic.Int64 // what the server's clock is ahead of t0+10m, in ns
	cookies string       // the cookie secret
}

const testCookieSecret = "7d1e5c9a3f0b2e4d6c8a0f1e3d5b7c9a"

func newSigninEnv(t *testing.T) *signinEnv {
	t.Helper()
	env := &signinEnv{gl: gitlabtest.New(t), cookies: testCookieSecret}
	a := env.gl.AddProject("g/app", t.TempDir())
	b := env.gl.AddProject("g/other", t.TempDir())
	for _, p := range []gitlabtest.Project{a, b} {
		env.gl.MakePrivate(p.ID)
	}
	env.gl.AddMember(a.ID, "dev", developer)
	env.gl.AddMember(a.ID, "rita", reporter)
	env.gl.AddMember(b.ID, "olaf", developer)

	other := finishedPipeline()
	other.ID, other.Trigger.Project = 5, "g/other"
	running := finishedPipeline()
	running.ID, running.Trigger.Project = 6, "g/other"
	running.Jobs[1].State = orchestrator.StateRunning
	env.m = newMemory(finishedPipeline(), other, running)
	env.engine = memoryEngine(env.m)

	var handler http.Handler
	env.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(env.srv.Close)
	env.gl.AddOAuthApp("gantry-app", "gantry-app-secret", env.srv.URL+"/signin/callback")
	handler = env.server(t, testCookieSecret)
	return env
}

// server is gantry's pages for env, its cookies made with secret.
func (env *signinEnv) server(t *testing.T, secret string) *echo.Echo {
	t.Helper()
	si, err := NewSignIn(SignInConfig{ClientID: "gantry-app", ClientSecret: "gantry-app-secret", GitLabURL: env.gl.URL,
		PublicURL: env.srv.URL, CookieSecret: secret, Accounts: doubleAccounts{env.gl.URL},
		Now: func() time.Time { return time.Now().Add(time.Duration(env.clock.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	return newServer(env.m, func(o *Options) {
		o.PublicPages, o.SignIn, o.Engine = false, si, env.engine
		o.Now = func() time.Time { return t0.Add(10*time.Minute + time.Duration(env.clock.Load())) }
		o.List = func(context.Context, Filter) ([]*orchestrator.Pipeline, error) {
			var out []*orchestrator.Pipeline
			for _, id := range []int64{6, 5, 4} {
				p, _ := env.m.fake().Pipeline(context.Background(), id)
				out = append(out, p)
			}
			return out, nil
		}
	})
}

// memoryEngine retries and cancels the pipelines of m as the engine does: a retry puts the failed
// and canceled jobs of a finished pipeline back to pending, with a new attempt; a cancel cancels
// what has not ended.
func memoryEngine(m *memory) *fakeEngine {
	e := newFakeEngine()
	change := func(id int64, ok func(*orchestrator.Pipeline) bool, edit func(*orchestrator.Job)) (*orchestrator.Pipeline, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		p := m.pipelines[id]
		if p == nil {
			return nil, fmt.Errorf("pipeline %d: %w", id, orchestrator.ErrNotFound)
		}
		if !ok(p) { // as the engine refuses (orchestrator/retry.go, cancel.go)
			return nil, &orchestrator.Refusal{Pipeline: id, Why: fmt.Sprintf("is %s: not now", p.State())}
		}
		for i := range p.Jobs {
			edit(&p.Jobs[i])
		}
		return p, nil
	}
	e.RetryFunc = func(id int64) (*orchestrator.Pipeline, error) {
		return change(id, func(p *orchestrator.Pipeline) bool { return p.State().Terminal() }, func(j *orchestrator.Job) {
			if j.State == orchestrator.StateFailed || j.State == orchestrator.StateCanceled {
				j.State, j.Attempt, j.FinishedAt = orchestrator.StatePending, j.Attempt+1, time.Time{}
			}
		})
	}
	e.CancelFunc = func(id int64) (*orchestrator.Pipeline, error) {
		return change(id, func(p *orchestrator.Pipeline) bool { return !p.State().Terminal() }, func(j *orchestrator.Job) {
			if !j.State.Terminal() {
				j.State = orchestrator.StateCanceled
			}
		})
	}
	return e
}

// browserClient is a browser without JavaScript: it keeps cookies and asks for HTML. It does not
// follow redirects by itself, so tests see each one.
type browserClient struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browserClient {
	jar, _ := cookiejar.New(nil)
	return &browserClient{t: t, client: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends one request; a form body makes it a POST from a page of origin (Sec-Fetch-Site and
// Origin as a browser sets them; "" leaves them out).
func (b *browserClient) do(method, u string, form url.Values, site, origin string) *http.Response {
	b.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if site != "" {
		req.Header.Set("Sec-Fetch-Site", site)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp
}

// follow GETs u and follows redirects, up to 10; it returns the last answer and its body.
func (b *browserClient) follow(u string) (*http.Response, string) {
	b.t.Helper()
	for range 10 {
		resp := b.do(http.MethodGet, u, nil, "", "")
		body := readAll(b.t, resp)
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode >= 400 || loc == "" {
			return resp, body
		}
		next, err := resp.Request.URL.Parse(loc)
		if err != nil {
			b.t.Fatal(err)
		}
		u = next.String()
	}
	b.t.Fatalf("more than 10 redirects from %s", u)
	return nil, ""
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return sb.String()
}

// signIn signs a new browser in as username through the double, from the list page.
func (env *signinEnv) signIn(t *testing.T, username string) *browserClient {
	t.Helper()
	env.gl.SignInAs(username)
	b := newBrowser(t)
	resp, body := b.follow(env.srv.URL + "/pipelines")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/pipelines" || !strings.Contains(body, "signed in as <b>"+username+"</b>") {
		t.Fatalf("signing in as %s ended at %s with %d:\n%s", username, resp.Request.URL, resp.StatusCode, body)
	}
	return b
}

// cookie is the browser's cookie name for gantry, "" without one.
func (b *browserClient) cookie(u, name string) string {
	pu, _ := url.Parse(u)
	for _, c := range b.client.Jar.Cookies(pu) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// setCookie replaces the browser's cookie name for gantry.
func (b *browserClient) setCookie(u, name, value string) {
	pu, _ := url.Parse(u)
	b.client.Jar.SetCookies(pu, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// csrfOf is the CSRF token a page's forms carry.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	const mark = `name="csrf" value="`
	i := strings.Index(page, mark)
	if i < 0 {
		t.Fatalf("the page has no form with a CSRF token:\n%s", page)
	}
	rest := page[i+len(mark):]
	return rest[:strings.IndexByte(rest, '"')]
}

// engineCalls is what the engine was asked so far.
func (env *signinEnv) engineCalls() []string { return slices.Clone(env.engine.calls) }
