package gitlabtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The OAuth 2 provider of GitLab (docs/gitlab.md §9.1): one application, and a browser that is
// always signed in to GitLab as the user SignInAs names and approves every authorization at once,
// so a test's browser comes back with a code without a login form.

// oauthApp is the application gantry signs visitors in with.
type oauthApp struct {
	id, secret, redirectURI string
}

// grant is an authorization code GitLab handed out and has not redeemed yet.
type grant struct {
	user        *user
	clientID    string
	redirectURI string
	challenge   string // PKCE S256 code_challenge; "" when none was sent
	scope       string
	expires     time.Time
}

// AddOAuthApp registers the OAuth application id, with its secret and its one redirect URI, as
// an administrator does under Applications.
func (s *Server) AddOAuthApp(id, secret, redirectURI string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauthApp = &oauthApp{id: id, secret: secret, redirectURI: redirectURI}
}

// SignInAs makes the browser signed in to GitLab as username (made on first use): /oauth/authorize
// grants codes for this user. "" signs the browser out, so authorize answers 401.
func (s *Server) SignInAs(username string) {
	var u *user
	if username != "" {
		u = s.userNamed(username)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signedIn = u
}

// oauthRoute answers /oauth/authorize, /oauth/token and GET /api/v4/user; false for other paths.
func (s *Server) oauthRoute(w http.ResponseWriter, req *request) bool {
	switch p := req.r.URL.Path; {
	case p == "/oauth/authorize" && req.r.Method == http.MethodGet:
		s.authorize(w, req)
	case p == "/oauth/token" && req.r.Method == http.MethodPost:
		s.token(w, req)
	case p == "/api/v4/user" && req.r.Method == http.MethodGet:
		s.currentUser(w, req)
	default:
		return false
	}
	return true
}

// authorize is GET /oauth/authorize. A wrong client or redirect URI is shown to the user, never
// redirected to (an open redirect otherwise); other errors go back to the redirect URI with
// error=…&state=…, as RFC 6749 §4.1.2.1 has it.
func (s *Server) authorize(w http.ResponseWriter, req *request) {
	q := req.r.URL.Query()
	s.mu.Lock()
	app, u := s.oauthApp, s.signedIn
	s.mu.Unlock()
	if app == nil || q.Get("client_id") != app.id || q.Get("redirect_uri") != app.redirectURI {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client",
			"error_description": "Client authentication failed due to unknown client, or the redirect URI is not the application's."})
		return
	}
	back := func(params url.Values) {
		if st := q.Get("state"); st != "" {
			params.Set("state", st)
		}
		http.Redirect(w, req.r, app.redirectURI+"?"+params.Encode(), http.StatusFound)
	}
	switch {
	case q.Get("response_type") != "code":
		back(url.Values{"error": {"unsupported_response_type"}})
		return
	case !slices.Contains(strings.Fields(q.Get("scope")), "read_api"):
		back(url.Values{"error": {"invalid_scope"}})
		return
	case q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256":
		back(url.Values{"error": {"invalid_request"}, "error_description": {"code_challenge_method must be S256"}})
		return
	case u == nil:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not signed in to GitLab"})
		return
	}
	code := randomToken()
	s.mu.Lock()
	if s.grants == nil {
		s.grants = map[string]*grant{}
	}
	s.grants[code] = &grant{user: u, clientID: app.id, redirectURI: app.redirectURI, challenge: q.Get("code_challenge"),
		scope: q.Get("scope"), expires: time.Now().Add(10 * time.Minute)}
	s.mu.Unlock()
	back(url.Values{"code": {code}})
}

// token is POST /oauth/token with grant_type=authorization_code: a code is redeemed once, by the
// application it was given to, with the redirect URI and (when a challenge was sent) the PKCE
// verifier; the answer is a new access token of the user, valid two hours.
func (s *Server) token(w http.ResponseWriter, req *request) {
	p := req.params
	id, secret, basic := req.r.BasicAuth()
	if !basic {
		id, secret = p["client_id"], p["client_secret"]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.oauthApp == nil || id != s.oauthApp.id || secret != s.oauthApp.secret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client",
			"error_description": "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."})
		return
	}
	if p["grant_type"] != "authorization_code" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	g := s.grants[p["code"]]
	delete(s.grants, p["code"]) // a code is spent by its first use, right or wrong
	invalid := g == nil || time.Now().After(g.expires) || g.clientID != id || g.redirectURI != p["redirect_uri"] ||
		(g.challenge != "" && pkceChallenge(p["code_verifier"]) != g.challenge)
	if invalid {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant",
			"error_description": "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."})
		return
	}
	tok := "gloas-" + randomToken()
	s.users[tok] = g.user
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 7200,
		"refresh_token": randomToken(), "scope": g.scope, "created_at": time.Now().Unix()})
}

// currentUser is GET /api/v4/user: the token's owner.
func (s *Server) currentUser(w http.ResponseWriter, req *request) {
	u, _ := s.authenticate(req.r)
	if u == nil {
		writeJSON(w, http.StatusUnauthorized, message("401 Unauthorized"))
		return
	}
	req.user = u
	writeJSON(w, http.StatusOK, map[string]any{"id": u.id, "username": u.username, "name": u.username, "state": "active",
		"web_url": s.URL + "/" + u.username})
}

// RevokeToken makes tok invalid, as when a user revokes the application or the token expires.
func (s *Server) RevokeToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, tok)
}

// pkceChallenge is the S256 code challenge of a verifier (RFC 7636 §4.2).
func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
