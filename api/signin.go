package api

import (
	"cmp"
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/gorilla/securecookie"
	"github.com/labstack/echo/v5"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// Sign-in with GitLab (docs/gitlab.md §9.1): the OAuth 2 authorization code flow with a state
// bound to the browser by a cookie and PKCE, then a session cookie. The session cookie carries the
// user's GitLab token, signed and encrypted (gorilla/securecookie: HMAC-SHA256 then AES-256-CTR),
// rather than keeping it server-side: every gantry process behind one URL can read it without a
// shared session store, and nothing gantry stores or logs ever holds a user's token. The price is
// that a session cannot be revoked from gantry before it expires; revoking the application in
// GitLab ends it at the next question gantry asks GitLab (at most AccessTTL later).

// SignInConfig configures sign-in with GitLab for pages that are not public.
type SignInConfig struct {
	// ClientID and ClientSecret are the GitLab application's id and secret.
	ClientID, ClientSecret string
	// GitLabURL is GitLab's base URL: /oauth/authorize and /oauth/token are under it.
	GitLabURL string
	// PublicURL is how browsers reach gantry: GitLab sends them back to PublicURL +
	// "/signin/callback", and the cookies are Secure when it is https.
	PublicURL string
	// CookieSecret is what the session cookie's keys are derived from; at least 32 bytes.
	CookieSecret string
	// Lifetime is how long a sign-in lasts, at most as long as GitLab's token; default 8h.
	Lifetime time.Duration
	// Accounts asks GitLab who a user is and what they may do, with the user's token.
	Accounts orchestrator.Accounts
	// AccessTTL is how long an answer of Accounts.ProjectAccess is reused; default 60s.
	AccessTTL time.Duration
	// Now is the clock of that reuse; default time.Now.
	Now func() time.Time
}

// Cookie names. The session's is read on every path; the sign-in's only under /signin.
const (
	sessionCookie = "gantry_session"
	signinCookie  = "gantry_signin"
	// signinMaxAge is how long a browser may take at GitLab to sign in.
	signinMaxAge = 10 * time.Minute
	// accessCacheSize bounds the access answers kept.
	accessCacheSize = 10000
)

// SignIn is a SignInConfig made ready: the OAuth client and the cookie codecs.
type SignIn struct {
	oauth    *oauth2.Config
	session  *securecookie.SecureCookie
	state    *securecookie.SecureCookie
	secure   bool
	origin   string // scheme://host[:port] of the public URL, what a same-origin form's Origin says
	lifetime time.Duration
	accounts orchestrator.Accounts
	access   *accessCache
}

// session is what the session cookie holds.
type session struct {
	UserID   int64  `json:"i"`
	Username string `json:"u"`
	Token    string `json:"t"` // the user's GitLab token: never logged, never shown
	CSRF     string `json:"c"` // the token the session's forms carry
	Expires  int64  `json:"e"` // unix seconds
}

// signinState is what the sign-in cookie holds between /signin and the callback.
type signinState struct {
	State    string `json:"s"`
	Verifier string `json:"v"`
	Next     string `json:"n"`
}

// NewSignIn checks a sign-in configuration and makes it ready for Options.SignIn.
func NewSignIn(o SignInConfig) (*SignIn, error) {
	if len(o.CookieSecret) < 32 {
		return nil, errors.New("api: the sign-in cookie secret must be at least 32 bytes")
	}
	pub, err := url.Parse(o.PublicURL)
	if err != nil || (pub.Scheme != "http" && pub.Scheme != "https") || pub.Host == "" {
		return nil, fmt.Errorf("api: public URL %q is not an http(s) URL", o.PublicURL)
	}
	if o.Accounts == nil {
		return nil, errors.New("api: sign-in needs Accounts")
	}
	// One secret in the config, separate keys for signing and encrypting (RFC 5869).
	hashKey, err := hkdf.Key(sha256.New, []byte(o.CookieSecret), nil, "gantry session cookie: hmac", 32)
	if err != nil {
		return nil, err
	}
	blockKey, err := hkdf.Key(sha256.New, []byte(o.CookieSecret), nil, "gantry session cookie: aes", 32)
	if err != nil {
		return nil, err
	}
	lifetime := cmp.Or(o.Lifetime, 8*time.Hour)
	codec := func(maxAge time.Duration) *securecookie.SecureCookie {
		return securecookie.New(hashKey, blockKey).MaxAge(int(maxAge.Seconds())).SetSerializer(securecookie.JSONEncoder{})
	}
	base := strings.TrimRight(o.GitLabURL, "/")
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &SignIn{
		oauth: &oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: []string{"read_api"},
			RedirectURL: strings.TrimRight(o.PublicURL, "/") + "/signin/callback",
			Endpoint: oauth2.Endpoint{AuthURL: base + "/oauth/authorize", TokenURL: base + "/oauth/token",
				AuthStyle: oauth2.AuthStyleInParams}},
		session: codec(lifetime), state: codec(signinMaxAge),
		secure: pub.Scheme == "https", origin: pub.Scheme + "://" + pub.Host,
		lifetime: lifetime, accounts: o.Accounts,
		access: newAccessCache(cmp.Or(o.AccessTTL, 60*time.Second), accessCacheSize, now),
	}, nil
}

// cookie is a cookie of gantry's: HttpOnly (no script reads it), SameSite=Lax (sent on a
// top-level navigation from GitLab back to the callback, never with another site's POST), Secure
// when gantry is served over https.
func (si *SignIn) cookie(name, value, path string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, Secure: si.secure, SameSite: http.SameSiteLaxMode}
	if maxAge > 0 {
		c.MaxAge, c.Expires = int(maxAge.Seconds()), time.Now().Add(maxAge)
	} else {
		c.MaxAge = -1
	}
	return c
}

// sessionOf reads the request's session: false without one, or with one that was tampered with,
// made with another secret, or is over.
func (si *SignIn) sessionOf(r *http.Request, now time.Time) (*session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, false
	}
	var s session
	if err := si.session.Decode(sessionCookie, c.Value, &s); err != nil || s.Token == "" || now.Unix() >= s.Expires {
		return nil, false
	}
	return &s, true
}

// visitorKey is where pageAuth leaves the signed-in visitor's session in the echo context.
const visitorKey = "gantry.visitor"

// visitor is the signed-in visitor of a page; nil for pages read with a bearer token or public.
func visitor(c *echo.Context) *session {
	s, _ := c.Get(visitorKey).(*session)
	return s
}

// pageAuth lets a request for a page in: public pages, a request with an API token, or a
// signed-in visitor. A browser that is none of these is sent to sign in and brought back; a
// script gets the API's 401.
func (s *Server) pageAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		r := c.Request()
		if s.public || s.authorized(r) {
			return next(c)
		}
		if s.signin != nil {
			if sess, ok := s.signin.sessionOf(r, s.now()); ok {
				c.Set(visitorKey, sess)
				return next(c)
			}
			if r.Method == http.MethodGet && prefersHTML(r) {
				return s.toSignin(c)
			}
		}
		return c.JSON(http.StatusUnauthorized, apiError{Error: "unauthorized", Detail: "missing or wrong bearer token"})
	}
}

// toSignin sends a browser to sign in, and back to the page it asked for afterwards.
func (s *Server) toSignin(c *echo.Context) error {
	c.SetCookie(s.signin.cookie(sessionCookie, "", "/", 0))
	return c.Redirect(http.StatusFound, "/signin?next="+url.QueryEscape(c.Request().URL.RequestURI()))
}

// signinStart answers GET /signin[?next=/path]: it binds a new state and PKCE verifier to the
// browser in a cookie and sends the browser to GitLab.
func (s *Server) signinStart(c *echo.Context) error {
	st := signinState{State: randomString(), Verifier: oauth2.GenerateVerifier(), Next: safeNext(c.QueryParam("next"))}
	v, err := s.signin.state.Encode(signinCookie, st)
	if err != nil {
		return s.fail(c, err)
	}
	c.SetCookie(s.signin.cookie(signinCookie, v, "/signin", signinMaxAge))
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusFound, s.signin.oauth.AuthCodeURL(st.State, oauth2.S256ChallengeOption(st.Verifier)))
}

// signinCallback answers GET /signin/callback?code=…&state=…, where GitLab sends the browser
// back. The sign-in cookie is spent at once, so a callback URL replayed, in this browser or
// another, starts nothing; the state must be the one this browser was given; GitLab redeems the
// code only with the verifier only this browser's cookie holds.
func (s *Server) signinCallback(c *echo.Context) error {
	ck, err := c.Cookie(signinCookie)
	var st signinState
	if err != nil || s.signin.state.Decode(signinCookie, ck.Value, &st) != nil {
		return s.errorPage(c, http.StatusBadRequest, "This sign-in was not started in this browser, or took longer than 10 minutes. Open the page again to sign in.")
	}
	c.SetCookie(s.signin.cookie(signinCookie, "", "/signin", 0))
	q := c.QueryParams()
	if e := q.Get("error"); e != "" {
		// Anyone can write this parameter into a link: only an OAuth error code (RFC 6749
		// §4.1.2.1, "access_denied") is shown, never free text in gantry's voice.
		if !oauthErrorCode.MatchString(e) {
			e = "an error"
		}
		return s.errorPage(c, http.StatusForbidden, "GitLab did not sign you in ("+e+"). Open the page again to sign in.")
	}
	if !constantTimeEqual(q.Get("state"), st.State) || q.Get("code") == "" {
		return s.errorPage(c, http.StatusBadRequest, "This sign-in answer does not belong to the sign-in this browser started. Open the page again to sign in.")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 15*time.Second)
	defer cancel()
	tok, err := s.signin.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		s.log.Warn("sign-in: GitLab refused the code", zap.Error(err)) // the error names no token
		return s.errorPage(c, http.StatusBadRequest, "GitLab did not accept this sign-in. Open the page again to sign in.")
	}
	user, err := s.signin.accounts.CurrentUser(ctx, tok.AccessToken)
	if err != nil {
		s.log.Warn("sign-in: who is the user", zap.Error(err))
		return s.errorPage(c, http.StatusBadGateway, "GitLab did not say who you are. Try again in a moment.")
	}
	life := s.signin.lifetime
	if !tok.Expiry.IsZero() {
		// GitLab's token may end first (2h by default, docs/gitlab.md §9.1). oauth2 dates it by
		// the wall clock, so the time left is counted on that clock.
		life = min(life, time.Until(tok.Expiry))
	}
	expires := s.now().Add(life)
	sess := session{UserID: user.ID, Username: user.Username, Token: tok.AccessToken, CSRF: randomString(), Expires: expires.Unix()}
	v, err := s.signin.session.Encode(sessionCookie, sess)
	if err != nil {
		return s.fail(c, err)
	}
	c.SetCookie(s.signin.cookie(sessionCookie, v, "/", life))
	s.log.Info("signed in", zap.String("user", user.Username), zap.Int64("user_id", user.ID))
	return c.Redirect(http.StatusSeeOther, safeNext(st.Next))
}

// oauthErrorCode is the shape of the error codes of RFC 6749 §4.1.2.1.
var oauthErrorCode = regexp.MustCompile(`^[a-z_]{1,40}$`)

// signout answers POST /signout: the session cookie is dropped.
func (s *Server) signout(c *echo.Context) error {
	if sess, ok := s.signin.sessionOf(c.Request(), s.now()); ok {
		if why := s.csrfRefusal(c, sess); why != "" {
			return s.errorPage(c, http.StatusForbidden, why)
		}
	}
	c.SetCookie(s.signin.cookie(sessionCookie, "", "/", 0))
	return s.render(c, http.StatusOK, "error.html", errorPageData{Code: http.StatusOK, Title: "Signed out",
		Message: "You are signed out of gantry. You are still signed in to GitLab."})
}

// safeNext is where a sign-in may return to: a path on this site ("/pipelines/4?x#job"), never
// another site. "//evil.example" and "/\evil.example" are read by browsers as other hosts, and a
// scheme or host makes any URL leave; all of those, and anything unparsable, give "/pipelines".
func safeNext(next string) string {
	const home = "/pipelines"
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\x00\r\n\t") {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return home
	}
	return next
}

// randomString is 32 random bytes, URL-safe.
func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}
