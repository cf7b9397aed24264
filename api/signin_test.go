package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
)

// TestSignInShowsWhatGitLabLetsRead: a browser that is not signed in is sent to GitLab and back
// to the page it asked for; each user's list holds the pipelines of the projects they can read on
// GitLab, and another project's pipeline is a 404 exactly as one that never existed.
func TestSignInShowsWhatGitLabLetsRead(t *testing.T) {
	t.Parallel()
	env := newSigninEnv(t)

	b := newBrowser(t)
	resp := b.do(http.MethodGet, env.srv.URL+"/pipelines/4", nil, "", "")
	readAll(t, resp)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/signin?next=%2Fpipelines%2F4" {
		t.Fatalf("a browser without a session gets %d to %q, want 302 to /signin?next=%%2Fpipelines%%2F4", resp.StatusCode, loc)
	}
	env.gl.SignInAs("dev")
	resp, page := b.follow(env.srv.URL + "/pipelines/4")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/pipelines/4" || !strings.Contains(page, "Pipeline #4") {
		t.Fatalf("after signing in, the browser is at %s with %d, want pipeline 4's page", resp.Request.URL, resp.StatusCode)
	}
	// A script without a session (the page's polls come with the cookie) gets the API's 401.
	if rec := do(env.server(t, testCookieSecret), http.MethodGet, "/pipelines/4.json", "", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("GET /pipelines/4.json without a session = %d, want 401", rec.Code)
	}

	for user, want := range map[string][]int64{"dev": {4}, "rita": {4}, "olaf": {6, 5}} {
		b := env.signIn(t, user)
		_, list := b.follow(env.srv.URL + "/pipelines")
		for _, id := range []int64{4, 5, 6} {
			listed := strings.Contains(list, `href="/pipelines/`+itoa(id)+`"`)
			if listed != containsID(want, id) {
				t.Errorf("%s's list shows pipeline %d: %v, want %v", user, id, listed, !listed)
			}
		}
	}

	// dev reads g/app only: pipeline 5 of g/other is not there for them, in any form.
	dev := env.signIn(t, "dev")
	for _, path := range []string{"/pipelines/%d", "/pipelines/%d.json", "/pipelines/%d/jobs/build/log"} {
		hidden := dev.do(http.MethodGet, env.srv.URL+sprintf(path, 5), nil, "", "")
		none := dev.do(http.MethodGet, env.srv.URL+sprintf(path, 99), nil, "", "")
		hb, nb := readAll(t, hidden), readAll(t, none)
		if hidden.StatusCode != http.StatusNotFound || nb != strings.NewReplacer("#5", "#99", "pipeline 5", "pipeline 99").Replace(hb) {
			t.Errorf("dev GET %s = %d %q; want the 404 of a pipeline that does not exist: %q", sprintf(path, 5), hidden.StatusCode, hb, nb)
		}
	}
	// The API's bearer tokens go on seeing everything, pages included.
	if rec := do(env.server(t, testCookieSecret), http.MethodGet, "/pipelines/5", "secret-token", ""); rec.Code != http.StatusOK {
		t.Errorf("GET /pipelines/5 with an API token = %d, want 200", rec.Code)
	}
}

// TestSignInCallbackAttacks: the callback signs nobody in on a forged state, without a code, with
// a code already spent, with another browser's callback, or with a code GitLab did not give.
func TestSignInCallbackAttacks(t *testing.T) {
	t.Parallel()
	env := newSigninEnv(t)
	env.gl.SignInAs("dev")

	// start runs /signin and GitLab's authorize in b and returns the callback URL GitLab gave.
	start := func(b *browserClient) *url.URL {
		t.Helper()
		resp := b.do(http.MethodGet, env.srv.URL+"/signin?next=/pipelines/4", nil, "", "")
		readAll(t, resp)
		auth := b.do(http.MethodGet, resp.Header.Get("Location"), nil, "", "")
		readAll(t, auth)
		cb, err := url.Parse(auth.Header.Get("Location"))
		if err != nil || auth.StatusCode != http.StatusFound || cb.Query().Get("code") == "" {
			t.Fatalf("GitLab's authorize answered %d to %q", auth.StatusCode, auth.Header.Get("Location"))
		}
		return cb
	}
	with := func(u *url.URL, key, value string) string {
		q := u.Query()
		if value == "" {
			q.Del(key)
		} else {
			q.Set(key, value)
		}
		v := *u
		v.RawQuery = q.Encode()
		return v.String()
	}
	refused := func(name string, b *browserClient, callback string) {
		t.Helper()
		resp := b.do(http.MethodGet, callback, nil, "", "")
		readAll(t, resp)
		if resp.StatusCode < 400 || b.cookie(env.srv.URL, sessionCookie) != "" {
			t.Errorf("%s: callback = %d, session cookie %v; want an error and no session", name, resp.StatusCode, b.cookie(env.srv.URL, sessionCookie) != "")
		}
	}

	b := newBrowser(t)
	refused("forged state", b, with(start(b), "state", "forged-state"))
	b = newBrowser(t)
	refused("no state", b, with(start(b), "state", ""))
	b = newBrowser(t)
	refused("no code", b, with(start(b), "code", ""))
	b = newBrowser(t)
	refused("a code GitLab never gave", b, with(start(b), "code", "made-up-code"))
	b = newBrowser(t)
	denied, _ := url.Parse(with(start(b), "code", ""))
	refused("GitLab's error", b, with(denied, "error", "access_denied"))
	// The error parameter is anyone's to write: a link can put words in gantry's mouth. Only
	// an OAuth error code (RFC 6749 §4.1.2.1: a short token) is shown.
	b = newBrowser(t)
	denied, _ = url.Parse(with(start(b), "code", ""))
	lure := "Your account is locked. Call +1 555 0100 to restore it"
	resp := b.do(http.MethodGet, with(denied, "error", lure), nil, "", "")
	if body := readAll(t, resp); resp.StatusCode != http.StatusForbidden || strings.Contains(body, "555 0100") {
		t.Errorf("a callback with a made-up error = %d, shows it %t; want 403 without it", resp.StatusCode, strings.Contains(body, "555 0100"))
	}
	// Another browser's callback: the victim's browser did not start this sign-in (login CSRF).
	refused("another browser's callback", newBrowser(t), start(newBrowser(t)).String())

	// Replays: once signed in, the same callback signs nobody in again, in this browser or
	// another that started its own sign-in (GitLab spends the code at its first use).
	b = newBrowser(t)
	cb := start(b)
	resp = b.do(http.MethodGet, cb.String(), nil, "", "")
	readAll(t, resp)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/pipelines/4" || b.cookie(env.srv.URL, sessionCookie) == "" {
		t.Fatalf("the genuine callback = %d to %q; want 303 to /pipelines/4 with a session", resp.StatusCode, resp.Header.Get("Location"))
	}
	replay := b.do(http.MethodGet, cb.String(), nil, "", "")
	readAll(t, replay)
	if replay.StatusCode != http.StatusBadRequest {
		t.Errorf("the callback replayed in the same browser = %d, want 400", replay.StatusCode)
	}
	other := newBrowser(t)
	own := start(other)
	refused("a spent code with a fresh state", other, with(own, "code", cb.Query().Get("code")))
}

// TestSessionCookieAttacks: a session cookie changed by one byte, made with another secret, or
// past its end is no session: the browser is sent to sign in again. The cookie is HttpOnly,
// SameSite=Lax and ends.
func TestSessionCookieAttacks(t *testing.T) {
	t.Parallel()
	env := newSigninEnv(t)
	b := env.signIn(t, "dev")
	good := b.cookie(env.srv.URL, sessionCookie)
	if strings.Contains(good, "gloas-") {
		t.Fatal("the session cookie shows the GitLab token in clear")
	}
	sentToSignIn := func(name, cookie string) {
		t.Helper()
		b.setCookie(env.srv.URL, sessionCookie, cookie)
		resp := b.do(http.MethodGet, env.srv.URL+"/pipelines/4", nil, "", "")
		readAll(t, resp)
		dropped := false // Max-Age=0, which Cookies reads as MaxAge < 0
		for _, c := range resp.Cookies() {
			dropped = dropped || c.Name == sessionCookie && c.MaxAge < 0
		}
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/signin?") || !dropped {
			t.Errorf("%s: GET /pipelines/4 = %d to %q with cookies %v, want 302 to /signin dropping the session cookie",
				name, resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
		}
	}
	flipped := []byte(good)
	flipped[len(flipped)/2] ^= 0x01
	sentToSignIn("one byte changed", string(flipped))
	sentToSignIn("cut short", good[:len(good)-4])
	sentToSignIn("empty", "")

	// The same session, sealed with another secret, as a forger who guessed the layout would.
	var s session
	if err := mustSignIn(t, env, testCookieSecret).session.Decode(sessionCookie, good, &s); err != nil {
		t.Fatal(err)
	}
	forged, err := mustSignIn(t, env, "another-secret-of-32-characters-at-least").session.Encode(sessionCookie, s)
	if err != nil {
		t.Fatal(err)
	}
	sentToSignIn("made with another secret", forged)

	b.setCookie(env.srv.URL, sessionCookie, good)
	if resp := b.do(http.MethodGet, env.srv.URL+"/pipelines/4", nil, "", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("the session cookie as given = %d, want 200", resp.StatusCode)
	}
	env.clock.Store(int64(2*time.Hour + time.Minute)) // GitLab's token lasts 2h; the session no longer
	sentToSignIn("expired", good)
	// The session ends on the second it names: the second before, it still lets in.
	end := time.Unix(s.Expires, 0).Sub(t0.Add(10 * time.Minute))
	env.clock.Store(int64(end - time.Second))
	b.setCookie(env.srv.URL, sessionCookie, good)
	if resp := b.do(http.MethodGet, env.srv.URL+"/pipelines/4", nil, "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("the session a second before its end = %d, want 200", resp.StatusCode)
	}
	env.clock.Store(int64(end))
	sentToSignIn("at its end", good)
	env.clock.Store(0)

	// The cookie as set: HttpOnly, SameSite=Lax, with an end.
	fresh := newBrowser(t)
	env.gl.SignInAs("dev")
	resp := fresh.do(http.MethodGet, env.srv.URL+"/signin", nil, "", "")
	readAll(t, resp)
	auth := fresh.do(http.MethodGet, resp.Header.Get("Location"), nil, "", "")
	readAll(t, auth)
	cb := fresh.do(http.MethodGet, auth.Header.Get("Location"), nil, "", "")
	readAll(t, cb)
	var set *http.Cookie
	for _, c := range cb.Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			set = c
		}
	}
	if set == nil || !set.HttpOnly || set.SameSite != http.SameSiteLaxMode || set.MaxAge <= 0 || set.MaxAge > 2*3600 || set.Path != "/" {
		t.Errorf("session cookie set as %+v; want HttpOnly, SameSite=Lax, Path=/, ending within GitLab's 2h", set)
	}
	if set != nil && set.Secure {
		t.Error("the session cookie is Secure although gantry is served over http here")
	}
}

// TestNewSignInChecksItsConfig: a short cookie secret, a public URL that is not http(s) with a
// host, or no Accounts is refused; an https public URL makes the cookies Secure.
func TestNewSignInChecksItsConfig(t *testing.T) {
	t.Parallel()
	ok := SignInConfig{ClientID: "gantry-app", ClientSecret: "x", GitLabURL: "https://gitlab.example.com",
		PublicURL: "https://gantry.example.com/", CookieSecret: testCookieSecret, Accounts: doubleAccounts{"https://gitlab.example.com"}}
	tests := []struct {
		name string
		edit func(*SignInConfig)
		want string // "" for accepted
	}{
		{"https", func(*SignInConfig) {}, ""},
		{"http", func(o *SignInConfig) { o.PublicURL = "http://localhost:8080" }, ""},
		{"another scheme", func(o *SignInConfig) { o.PublicURL = "ftp://gantry.example.com" }, "is not an http(s) URL"},
		{"no scheme", func(o *SignInConfig) { o.PublicURL = "gantry.example.com" }, "is not an http(s) URL"},
		{"no host", func(o *SignInConfig) { o.PublicURL = "https:///pipelines" }, "is not an http(s) URL"},
		{"short cookie secret", func(o *SignInConfig) { o.CookieSecret = testCookieSecret[:31] }, "at least 32 bytes"},
		{"no accounts", func(o *SignInConfig) { o.Accounts = nil }, "needs Accounts"},
	}
	for _, tt := range tests {
		o := ok
		tt.edit(&o)
		si, err := NewSignIn(o)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: NewSignIn = %v, want %q", tt.name, err, tt.want)
		}
		if err == nil && si.secure != strings.HasPrefix(o.PublicURL, "https:") {
			t.Errorf("%s: NewSignIn(public URL %s) makes Secure cookies: %v", tt.name, o.PublicURL, si.secure)
		}
	}
}

func mustSignIn(t *testing.T, env *signinEnv, secret string) *SignIn {
	t.Helper()
	si, err := NewSignIn(SignInConfig{ClientID: "gantry-app", ClientSecret: "x", GitLabURL: env.gl.URL, PublicURL: env.srv.URL,
		CookieSecret: secret, Accounts: doubleAccounts{env.gl.URL}})
	if err != nil {
		t.Fatal(err)
	}
	return si
}

// TestPageButtonsAndCSRF: Developers get Retry and Cancel, others none; a post without the
// session's CSRF token, with a wrong one, or from another site changes nothing, and neither does a
// Reporter's or a stranger's well-formed post; a Developer's does, once.
func TestPageButtonsAndCSRF(t *testing.T) {
	t.Parallel()
	env := newSigninEnv(t)
	dev, rita, olaf := env.signIn(t, "dev"), env.signIn(t, "rita"), env.signIn(t, "olaf")

	_, page := dev.follow(env.srv.URL + "/pipelines/4")
	if !strings.Contains(page, `action="/pipelines/4/retry"`) || strings.Contains(page, `/cancel"`) {
		t.Errorf("dev's page of failed pipeline 4 lacks Retry or offers Cancel:\n%s", page)
	}
	token := csrfOf(t, page)
	_, ritaPage := rita.follow(env.srv.URL + "/pipelines/4")
	if strings.Contains(ritaPage, "/retry") || strings.Contains(ritaPage, "/cancel") {
		t.Error("a Reporter's page offers Retry or Cancel")
	}
	_, running := olaf.follow(env.srv.URL + "/pipelines/6")
	if !strings.Contains(running, `action="/pipelines/6/cancel"`) || strings.Contains(running, "/retry") {
		t.Error("olaf's page of running pipeline 6 lacks Cancel or offers Retry")
	}

	retry := env.srv.URL + "/pipelines/4/retry"
	for _, tc := range []struct {
		name         string
		b            *browserClient
		form         url.Values
		site, origin string
		code         int
	}{
		{"no token", dev, url.Values{}, "same-origin", env.srv.URL, http.StatusForbidden},
		{"wrong token", dev, url.Values{"csrf": {token[:len(token)-1] + "x"}}, "same-origin", env.srv.URL, http.StatusForbidden},
		{"another user's token", dev, url.Values{"csrf": {csrfOf(t, ritaPage)}}, "same-origin", env.srv.URL, http.StatusForbidden},
		{"cross-site", dev, url.Values{"csrf": {token}}, "cross-site", "https://evil.example", http.StatusForbidden},
		{"same-site, other origin", dev, url.Values{"csrf": {token}}, "same-site", "http://evil.127.0.0.1.nip.io", http.StatusForbidden},
		{"other origin, no fetch metadata", dev, url.Values{"csrf": {token}}, "", "https://evil.example", http.StatusForbidden},
		{"a Reporter", rita, url.Values{"csrf": {csrfOf(t, ritaPage)}}, "same-origin", env.srv.URL, http.StatusForbidden},
		{"a stranger to the project", olaf, url.Values{"csrf": {csrfOf(t, running)}}, "same-origin", env.srv.URL, http.StatusNotFound},
		{"no session", newBrowser(t), url.Values{"csrf": {token}}, "same-origin", env.srv.URL, http.StatusUnauthorized},
	} {
		resp := tc.b.do(http.MethodPost, retry, tc.form, tc.site, tc.origin)
		readAll(t, resp)
		if resp.StatusCode != tc.code {
			t.Errorf("%s: POST retry = %d, want %d", tc.name, resp.StatusCode, tc.code)
		}
	}
	if calls := env.engineCalls(); len(calls) != 0 {
		t.Fatalf("refused posts reached the engine: %v", calls)
	}

	resp := dev.do(http.MethodPost, retry, url.Values{"csrf": {token}}, "same-origin", env.srv.URL)
	readAll(t, resp)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/pipelines/4" {
		t.Fatalf("dev's retry = %d to %q, want 303 back to the page", resp.StatusCode, resp.Header.Get("Location"))
	}
	p, _ := env.m.fake().Pipeline(t.Context(), 4)
	if j, _ := p.Job("test/unit"); j.State != orchestrator.StatePending || j.Attempt != 3 {
		t.Errorf("after the retry test/unit is %s attempt %d, want pending attempt 3", j.State, j.Attempt)
	}
	// Pipeline 4 is running again: a second retry is refused by the engine, not done twice.
	again := dev.do(http.MethodPost, retry, url.Values{"csrf": {token}}, "same-origin", env.srv.URL)
	if body := readAll(t, again); again.StatusCode != http.StatusConflict || !strings.Contains(body, "Pipeline 4 is running: not now.") {
		t.Errorf("retrying a pipeline that runs = %d, want 409 saying the engine's refusal:\n%s", again.StatusCode, body)
	}
	// olaf cancels the pipeline he may change, and signs out.
	resp = olaf.do(http.MethodPost, env.srv.URL+"/pipelines/6/cancel", url.Values{"csrf": {csrfOf(t, running)}}, "same-origin", env.srv.URL)
	readAll(t, resp)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("olaf's cancel = %d, want 303", resp.StatusCode)
	}
	resp = olaf.do(http.MethodPost, env.srv.URL+"/signout", url.Values{"csrf": {csrfOf(t, running)}}, "same-origin", env.srv.URL)
	readAll(t, resp)
	if resp.StatusCode != http.StatusOK || olaf.cookie(env.srv.URL, sessionCookie) != "" {
		t.Errorf("sign-out = %d, session left: %v", resp.StatusCode, olaf.cookie(env.srv.URL, sessionCookie) != "")
	}
}

// TestAccessIsAskedOncePerMinute: a user's access to a project is asked of GitLab once and
// reused, per user: a second user's view asks again.
func TestAccessIsAskedOncePerMinute(t *testing.T) {
	t.Parallel()
	env := newSigninEnv(t)
	dev := env.signIn(t, "dev")
	asked := func() int {
		n := 0
		for _, c := range env.gl.Calls() {
			if strings.HasPrefix(c.Path, "/api/v4/projects/g%2Fapp") {
				n++
			}
		}
		return n
	}
	before := asked()
	for range 3 {
		dev.follow(env.srv.URL + "/pipelines/4")
	}
	if got := asked() - before; got != 0 {
		t.Errorf("dev's three page views asked GitLab for g/app %d times after the list did; want 0", got)
	}
	env.signIn(t, "rita").follow(env.srv.URL + "/pipelines/4")
	if asked() == before {
		t.Error("rita's view reused dev's answer")
	}
}

// TestNextStaysOnSite: where a sign-in returns to is a path of gantry's, never another site.
func TestNextStaysOnSite(t *testing.T) {
	t.Parallel()
	for next, want := range map[string]string{
		"/pipelines/4?x=1#job-build": "/pipelines/4?x=1#job-build",
		"":                           "/pipelines",
		"//evil.example/x":           "/pipelines",
		"/\\evil.example":            "/pipelines",
		"https://evil.example/":      "/pipelines",
		"javascript:alert(1)":        "/pipelines",
		"pipelines/4":                "/pipelines",
		"/\r\nLocation: //evil":      "/pipelines",
		"/%2F%2Fevil.example":        "/%2F%2Fevil.example",
		"\t//evil.example":           "/pipelines",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
	// Through the whole flow: a sign-in started with next=//evil.example ends on the list.
	env := newSigninEnv(t)
	env.gl.SignInAs("dev")
	resp, _ := newBrowser(t).follow(env.srv.URL + "/signin?next=" + url.QueryEscape("//evil.example/x"))
	if resp.Request.URL.Host != strings.TrimPrefix(env.srv.URL, "http://") || resp.Request.URL.Path != "/pipelines" {
		t.Errorf("a sign-in with next=//evil.example ended at %s, want gantry's /pipelines", resp.Request.URL)
	}
}

// TestRevokedTokenSignsOut: once GitLab refuses the session's token, the page sends the browser
// to sign in again rather than failing.
func TestRevokedTokenSignsOut(t *testing.T) {
	t.Parallel()
	env := newSigninEnv(t)
	dev := env.signIn(t, "dev")
	var s session
	if err := mustSignIn(t, env, testCookieSecret).session.Decode(sessionCookie, dev.cookie(env.srv.URL, sessionCookie), &s); err != nil {
		t.Fatal(err)
	}
	env.gl.RevokeToken(s.Token)
	env.clock.Store(int64(61 * time.Second)) // the list's answers are a minute old: GitLab is asked again
	resp := dev.do(http.MethodGet, env.srv.URL+"/pipelines/5", nil, "", "")
	readAll(t, resp)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/signin?") {
		t.Errorf("with a revoked token GET /pipelines/5 = %d to %q, want 302 to /signin", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestSignInRoutesExist: with sign-in, the server adds exactly its routes.
func TestSignInRoutesExist(t *testing.T) {
	t.Parallel()
	env := newSigninEnv(t)
	got := map[string]bool{}
	for _, r := range env.server(t, testCookieSecret).Router().Routes() {
		got[r.Method+" "+r.Path] = true
	}
	for _, r := range authServer(false, "secret-token").Router().Routes() {
		delete(got, r.Method+" "+r.Path)
	}
	want := []string{"GET /signin", "GET /signin/callback", "POST /signout", "POST /pipelines/:id/retry", "POST /pipelines/:id/cancel"}
	for _, w := range want {
		if !got[w] {
			t.Errorf("route %s missing", w)
		}
		delete(got, w)
	}
	if len(got) > 0 {
		t.Errorf("routes not covered by the sign-in tests: %v", got)
	}
}

// TestAccessCacheIsBounded: the cache never holds more than its size, and forgets answers after
// its time.
func TestAccessCacheIsBounded(t *testing.T) {
	t.Parallel()
	now := t0
	c := newAccessCache(time.Minute, 3, func() time.Time { return now })
	for i := range 10 {
		c.put(accessKey{user: int64(i), project: "g/app"}, orchestrator.Access{Read: true})
		if c.len() > 3 {
			t.Fatalf("the cache holds %d answers, want at most 3", c.len())
		}
	}
	k := accessKey{user: 9, project: "g/app"}
	if _, ok := c.get(k); !ok {
		t.Fatal("the last answer is gone at once")
	}
	now = now.Add(time.Minute)
	if _, ok := c.get(k); ok {
		t.Error("an answer a minute old is still used")
	}
}

func itoa(n int64) string { return sprintf("%d", n) }

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
