package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
)

// routeCase is one registered route and a request that reaches it.
type routeCase struct {
	method, route, path string
}

// apiRoutes is every route under /api/v1, each with a request that names something real, so
// that with the right token it reaches its handler. All of them need a token.
var apiRoutes = []routeCase{
	{http.MethodGet, "/api/v1/pipelines", "/api/v1/pipelines"},
	{http.MethodGet, "/api/v1/pipelines/:id", "/api/v1/pipelines/4"},
	{http.MethodGet, "/api/v1/pipelines/:id/jobs/*", "/api/v1/pipelines/4/jobs/build/log"},
	{http.MethodPost, "/api/v1/pipelines/:id/jobs/*", "/api/v1/pipelines/4/jobs/test%2Funit/retry"},
	{http.MethodPost, "/api/v1/pipelines/:id/retry", "/api/v1/pipelines/4/retry"},
	{http.MethodPost, "/api/v1/pipelines/:id/cancel", "/api/v1/pipelines/4/cancel"},
	{http.MethodPost, "/api/v1/pipelines/:id/approve", "/api/v1/pipelines/4/approve"},
	{http.MethodPost, "/api/v1/pipelines/:id/decline", "/api/v1/pipelines/4/decline"},
	{http.MethodPost, "/api/v1/projects/*", "/api/v1/projects/g%2Fapp/pipelines"},
	{http.MethodGet, "/api/v1/projects/*", "/api/v1/projects/g%2Fapp/pipelines"},
	{echo.RouteAny, "/api/v1/*", "/api/v1/nothing"},
}

// pageRoutes need a token unless the pages are public.
var pageRoutes = []routeCase{
	{http.MethodGet, "/pipelines", "/pipelines"},
	{http.MethodGet, "/pipelines/:id", "/pipelines/4"},
	{http.MethodGet, "/pipelines/:id", "/pipelines/4.json"},
	{http.MethodGet, "/pipelines/:id/jobs/*", "/pipelines/4/jobs/build/log"},
}

// openRoutes never need a token: probes and the pages' assets.
var openRoutes = []routeCase{
	{http.MethodGet, "/healthz", "/healthz"},
	{http.MethodGet, "/readyz", "/readyz"},
	{http.MethodGet, "/metrics", "/metrics"},
	{http.MethodGet, "/assets/:name", "/assets/gantry.css"},
}

// authServer serves the fixture with an engine and a listing, so every route can answer, and
// with the pages private unless public says otherwise.
func authServer(public bool, tokens ...string) *echo.Echo {
	return newServer(newFixture(), func(o *Options) {
		o.Tokens, o.PublicPages, o.Engine = tokens, public, newFakeEngine()
		o.List = func(context.Context, Filter) ([]*orchestrator.Pipeline, error) {
			return []*orchestrator.Pipeline{finishedPipeline()}, nil
		}
	})
}

// doAuth runs one request with the Authorization header set to auth as is ("" leaves it out).
func doAuth(e *echo.Echo, method, path, auth string) *httptest.ResponseRecorder {
	if method == echo.RouteAny {
		method = http.MethodDelete
	}
	req := httptest.NewRequest(method, path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// TestEveryRouteIsInTheAuthTables: the tables below list every route the server registers, so
// a route added later without a row (and without its token check tested) fails here.
func TestEveryRouteIsInTheAuthTables(t *testing.T) {
	t.Parallel()
	listed := map[string]bool{}
	for _, tables := range [][]routeCase{apiRoutes, pageRoutes, openRoutes} {
		for _, r := range tables {
			listed[r.method+" "+r.route] = true
		}
	}
	for _, r := range authServer(false, "secret-token").Router().Routes() {
		if !listed[r.Method+" "+r.Path] {
			t.Errorf("route %s %s is in none of apiRoutes, pageRoutes and openRoutes: add it, with whether it needs a token", r.Method, r.Path)
		}
	}
}

// TestRoutesRefuseWithoutTheToken: every API route, and every page route while the pages are
// private, answers 401 to a request without a token, with a wrong one, or with the right one
// sent the wrong way; with the right token none of them does. A route registered without its
// token middleware (the cancel route was, once) fails here.
func TestRoutesRefuseWithoutTheToken(t *testing.T) {
	t.Parallel()
	refused := []struct{ name, auth string }{
		{"no header", ""},
		{"wrong token", "Bearer not-the-token"},
		{"the token's prefix", "Bearer secret-toke"},
		{"the token and more", "Bearer secret-token2"},
		{"empty bearer", "Bearer "},
		{"not a bearer token", "Basic secret-token"},
		{"the token alone", "secret-token"},
	}
	for _, public := range []bool{false, true} {
		e := authServer(public, "secret-token")
		guarded := apiRoutes
		if !public {
			guarded = append(append([]routeCase(nil), apiRoutes...), pageRoutes...)
		}
		for _, r := range guarded {
			for _, a := range refused {
				if rec := doAuth(e, r.method, r.path, a.auth); rec.Code != http.StatusUnauthorized {
					t.Errorf("public pages %v: %s %s with %s = %d %s, want 401", public, r.method, r.path, a.name, rec.Code, rec.Body)
				}
			}
			if rec := doAuth(e, r.method, r.path, "Bearer secret-token"); rec.Code == http.StatusUnauthorized {
				t.Errorf("public pages %v: %s %s with the token = 401, want it let in", public, r.method, r.path)
			}
		}
		open := openRoutes
		if public {
			open = append(append([]routeCase(nil), openRoutes...), pageRoutes...)
		}
		for _, r := range open {
			if rec := doAuth(e, r.method, r.path, ""); rec.Code == http.StatusUnauthorized {
				t.Errorf("public pages %v: %s %s without a token = 401, want it open", public, r.method, r.path)
			}
		}
	}
}

// TestEveryConfiguredTokenIsAccepted: with several tokens configured (a rotation: the old one
// and the new one), each of them lets a request in, whatever its place in the list.
func TestEveryConfiguredTokenIsAccepted(t *testing.T) {
	t.Parallel()
	tokens := []string{"first-token", "second-token", "third-token"}
	e := authServer(false, tokens...)
	for _, token := range tokens {
		for _, path := range []string{"/api/v1/pipelines/4", "/pipelines/4"} {
			if rec := do(e, http.MethodGet, path, token, ""); rec.Code != http.StatusOK {
				t.Errorf("GET %s with configured token %q = %d %s, want 200", path, token, rec.Code, rec.Body)
			}
		}
	}
	if rec := do(e, http.MethodGet, "/api/v1/pipelines/4", "fourth-token", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("GET with a token not configured = %d, want 401", rec.Code)
	}
}

// TestNoTokensRefusesEveryone: without a configured token, the API is closed, even to an empty
// bearer token, and a configured empty token (an unset ${VAR}) opens nothing.
func TestNoTokensRefusesEveryone(t *testing.T) {
	t.Parallel()
	for _, tokens := range [][]string{nil, {""}} {
		e := authServer(false, tokens...)
		for _, auth := range []string{"", "Bearer ", "Bearer x"} {
			if rec := doAuth(e, http.MethodGet, "/api/v1/pipelines/4", auth); rec.Code != http.StatusUnauthorized {
				t.Errorf("tokens %q: GET with Authorization %q = %d, want 401", tokens, auth, rec.Code)
			}
		}
	}
}
